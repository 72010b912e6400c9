"""The core's durable event stream for gateways in other processes (`teller core ws`).

Core side (`[ws] events_addr`, loopback only: the stream carries every user's orders and
balances and has no authentication): a WebSocket server at that address; each text frame is
one committed batch, `[[topic, message], ...]`, topics `orders`, `deals`, `balances` in
viabtc's Kafka shapes (exchange-core.md §5.8). A consumer that falls `limit` frames behind
is disconnected (1008) instead of being buffered without bound.

Gateway side: `follow(url, gateway)` keeps a connection open, reconnecting with a short
back-off; after every (re)connect the gateway resyncs (events in the gap are gone).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)


class _Consumer:
    __slots__ = ("ws", "queue", "wake", "closed")

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closed = False


class EventStream:
    """Fan-out of committed batches to connected gateways (runs in the gateway's loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.consumers: set[_Consumer] = set()
        self._server: Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await serve(self._handle, host, port, compression=None,
                                   max_size=4096, close_timeout=2)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def publish(self, events: list[tuple[str, Any]]) -> None:
        if not self.consumers:
            return
        data = json.dumps(events, separators=(",", ":")).encode()
        for consumer in list(self.consumers):
            if consumer.closed:
                continue
            if len(consumer.queue) >= self.limit:
                consumer.closed = True
                consumer.queue.clear()
                consumer.wake.set()
                log.warning("event-stream consumer %s fell behind; disconnected",
                            consumer.ws.remote_address)
                asyncio.get_running_loop().create_task(
                    consumer.ws.close(1008, "event stream consumer too slow"))
                continue
            consumer.queue.append(data)
            consumer.wake.set()

    async def _handle(self, ws: ServerConnection) -> None:
        consumer = _Consumer(ws)
        self.consumers.add(consumer)
        try:
            while not consumer.closed:
                await consumer.wake.wait()
                consumer.wake.clear()
                while consumer.queue and not consumer.closed:
                    await ws.send(consumer.queue.popleft(), text=True)
        except ConnectionClosed:
            pass
        finally:
            self.consumers.discard(consumer)


async def follow(url: str, gateway: Any) -> None:
    """Feed `gateway.hub` from the core's event stream at `url`, forever."""
    delay = 0.2
    while True:
        try:
            async with connect(url, compression=None, max_size=None, open_timeout=5) as ws:
                log.info("following the core's event stream at %s", url)
                delay = 0.2
                gateway.lost_events("event stream connected")
                gateway.following = True
                try:
                    async for frame in ws:
                        gateway.hub.on_events(json.loads(frame))
                finally:
                    gateway.following = False
        except asyncio.CancelledError:
            raise
        except (OSError, ConnectionClosed, TimeoutError) as exc:
            log.warning("core event stream at %s unavailable (%s); retrying", url, exc)
        except Exception:
            log.exception("core event stream at %s failed; retrying notice=WATCH", url)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
