"""The gateway process part: an asyncio loop in its own thread serving both dialects.

    gateway = Gateway(config.ws, lambda loop: LocalCore(service, loop))
    service.subscribe_durable(EVENT_TOPICS, gateway.feed)   # the core's durable events
    gateway.start()                                          # binds, or raises OSError

`feed` is called in the core's writer/committer thread and only appends to a bounded hand-over
queue (one loop wake-up per burst); matching never waits for the gateway. If the queue
overflows (the loop cannot keep up), the batch is dropped and the gateway resyncs: public
subscribers get clean snapshots, connections with order subscriptions are closed (code 1013)
so their clients re-query. Limits per `[ws]`: connections in all and per IP (refused at the
handshake with HTTP 503), subscriptions per connection, message size (over `max_message` an
error reply, over 4x the connection is closed with 1009), the outbound queue (a connection
whose queue is full is closed with 1008: a slow client is dropped, never buffered without
bound), idle timeout (no message from the client), ping/pong (dead peers).

Standalone (`teller core ws`): the core is a `RemoteCore` and the events come from the core's
event stream (`[ws] events_addr`, wsgateway.events); on every (re)connect of that stream the
gateway resyncs, since events in the gap are lost.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import OPEN

from common.netaddr import is_loopback, split_hostport
from matchengine.config import WsConfig
from matchengine.errors import CoreError
from wsgateway.auth import Authenticator
from wsgateway.connmix import CONNMIX
from wsgateway.core import Core, call
from wsgateway.frames import text_frame
from wsgateway.hub import CLOCK_INTERVAL, Hub
from wsgateway.viabtc import VIABTC

log = logging.getLogger(__name__)

EVENT_TOPICS = ("orders", "deals", "balances")
INBOX_MAX = 200_000  # events waiting for the loop before the gateway gives up and resyncs
PATHS = {"/": VIABTC, "/connmix": CONNMIX}
WRITE_LIMIT = 32768  # bytes in a socket's user-space buffer before messages queue up


class Conn:
    """One client connection: who it is, what it subscribed to, what waits to be sent."""

    __slots__ = ("ws", "ip", "dialect", "user", "source", "subs", "queue", "wake", "cap",
                 "closed", "gateway", "out")

    def __init__(self, ws: ServerConnection, ip: str, dialect: Any, cap: int,
                 gateway: Gateway) -> None:
        self.ws = ws
        self.ip = ip
        self.dialect = dialect
        self.user: int | None = None
        self.source = ""
        self.subs: dict[str, set] = {}
        self.queue: deque[bytes] = deque()
        self.out: list[bytes] | None = None  # frames of this loop iteration, not yet written
        self.wake = asyncio.Event()
        self.cap = cap
        self.closed = False
        self.gateway = gateway

    def enqueue(self, payload: bytes) -> None:
        """Send one message (a reply): framed here."""
        self.send_frame(text_frame(payload))

    def send_frame(self, frame: bytes) -> None:
        """Collect the frames of this loop iteration: pushes of several topics (a market's
        depth and deals usually refresh together) then cost one socket write, not one each."""
        if self.closed:
            return
        if self.out is None:
            self.out = [frame]
            self.gateway.to_flush(self)
        else:
            self.out.append(frame)

    def flush(self) -> None:
        """Write at once while the socket keeps up; queue behind a full socket buffer; drop
        the connection when the queue is full."""
        frames, self.out = self.out, None
        if self.closed or not frames:
            return
        ws = self.ws
        if (not self.queue and ws.protocol.state is OPEN
                and ws.transport.get_write_buffer_size() < WRITE_LIMIT):
            ws.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
            return
        for frame in frames:
            self._queue(frame)

    def _queue(self, frame: bytes) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.cap:
            self.gateway.slow_dropped += 1
            log.info("closing %s: slow consumer, %d messages queued", self.ip, len(self.queue))
            self.close(1008, "slow consumer: outbound queue full")
            return
        self.queue.append(frame)
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        """Stop sending and receiving; the handshake of the close runs in the background."""
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        self.wake.set()
        self.gateway.hub.drop(self)
        asyncio.get_running_loop().create_task(self.ws.close(code, reason))

    async def writer(self) -> None:
        """Empties the queue as the socket buffer drains (the library's flow control)."""
        ws, queue = self.ws, self.queue
        try:
            while not self.closed:
                await self.wake.wait()
                self.wake.clear()
                while queue and not self.closed and ws.protocol.state is OPEN:
                    if ws.transport.get_write_buffer_size() >= WRITE_LIMIT:
                        await ws.drain()  # until the buffer is below the low-water mark
                        continue
                    ws.transport.write(queue.popleft())
        except (ConnectionClosed, OSError):  # drain() re-raises the transport's error
            pass


class Gateway:
    def __init__(self, config: WsConfig, core_factory: Callable[[asyncio.AbstractEventLoop], Core],
                 events_url: str | None = None) -> None:
        self.config = config
        self.core_factory = core_factory
        self.events_url = events_url
        self.loop = new_event_loop()
        self.core: Core = core_factory(self.loop)
        self.hub = Hub(self.core, push_interval=config.push_interval)
        self.auth = Authenticator(config.auth_url, config.auth_timeout,
                                  config.auth_cache_seconds, self.loop, sign_url=config.sign_url)
        self.markets: dict[str, tuple[str, str]] = {}
        self.assets: set[str] = set()
        self.conns: set[Conn] = set()
        self.per_ip: dict[str, int] = {}
        self.slow_dropped = 0
        self.resyncs = 0  # times core events were lost and subscribers re-sent full state
        self.fanout_seconds = 0.0  # loop time spent writing pushes, and its worst round
        self.fanout_rounds = 0
        self.fanout_max = 0.0
        self.port = 0
        self.events_port = 0
        self.following = False  # standalone: connected to the core's event stream right now
        self._inbox: deque[list] = deque()
        self._inbox_count = 0
        self._inbox_lock = threading.Lock()
        self._inbox_woken = False
        self._overflow = False
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._stream: Any = None  # wsgateway.events.EventStream (the core side), if any
        self._stopped: asyncio.Event | None = None
        self._flush: list[Conn] = []

    def to_flush(self, conn: Conn) -> None:
        """Write `conn`'s collected frames once the current loop iteration's work is done."""
        if not self._flush:
            self.loop.call_soon(self._flush_all)
        self._flush.append(conn)

    def _flush_all(self) -> None:
        started = time.monotonic()
        conns, self._flush = self._flush, []
        for conn in conns:
            conn.flush()
        took = time.monotonic() - started
        self.fanout_seconds += took
        self.fanout_rounds += 1
        self.fanout_max = max(self.fanout_max, took)

    def metrics_text(self) -> str:
        """Prometheus lines for the core's GET /metrics (read from the HTTP thread: every
        value is one int or float)."""
        rows = [
            ("core_ws_connections", "gauge", "Open WebSocket connections.", len(self.conns)),
            ("core_ws_topics", "gauge", "Push topics with subscribers.", len(self.hub.topics)),
            ("core_ws_pushes_total", "counter", "Messages queued to connections.",
             self.hub.pushes),
            ("core_ws_slow_consumers_dropped_total", "counter",
             "Connections closed because their outbound queue was full.", self.slow_dropped),
            ("core_ws_resyncs_total", "counter",
             "Times core events were lost and subscribers got the full state again.",
             self.resyncs),
            ("core_ws_fanout_seconds_max", "gauge",
             "Longest single write-out of queued pushes since start.",
             f"{self.fanout_max:.6f}"),
        ]
        lines: list[str] = []
        for name, kind, help_text, value in rows:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        lines += ["# HELP core_ws_fanout_seconds Event-loop time writing queued messages (pushes, "
                  "replies).",
                  "# TYPE core_ws_fanout_seconds summary",
                  f"core_ws_fanout_seconds_sum {self.fanout_seconds:.6f}",
                  f"core_ws_fanout_seconds_count {self.fanout_rounds}"]
        return "\n".join(lines) + "\n"

    # -- any thread --------------------------------------------------------------------------

    def feed(self, events: list[tuple[str, Any]]) -> None:
        """Durable core events (core thread): hand over, never block."""
        with self._inbox_lock:
            if self._inbox_count + len(events) > INBOX_MAX:
                self._overflow = True
                return
            self._inbox.append(events)
            self._inbox_count += len(events)
            if self._inbox_woken:
                return
            self._inbox_woken = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the gateway stopped
            pass

    def start(self, timeout: float = 30.0) -> None:
        """Bind and serve in a thread; raises OSError if an address cannot be bound."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._main(started))
            except BaseException as exc:  # noqa: B036 - reported to start()
                failure.append(exc)
                started.set()
            finally:
                self.loop.close()

        self._thread = threading.Thread(target=run, name="ws-gateway", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise OSError("WebSocket gateway did not start in time")
        if failure:
            raise failure[0]

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._stopped is None:
            return
        try:
            self.loop.call_soon_threadsafe(self._stopped.set)
        except RuntimeError:
            pass
        self._thread.join(timeout)

    # -- loop --------------------------------------------------------------------------------

    async def _main(self, started: threading.Event) -> None:
        self._stopped = asyncio.Event()
        cfg = self.config
        tasks: list[asyncio.Task] = []
        if cfg.events_addr:
            from wsgateway.events import EventStream

            host, port = split_hostport(cfg.events_addr)
            self._stream = EventStream(cfg.out_queue * 16)
            self.events_port = await self._stream.start(host, port)
        if cfg.addr:
            await self._load_names(wait=self.events_url is not None)
            host, port = split_hostport(cfg.addr)
            self._server = await serve(
                self._handle, host, port, process_request=self._admit, compression=None,
                max_size=cfg.max_message * 4, max_queue=64, write_limit=WRITE_LIMIT,
                ping_interval=cfg.ping_interval or None, ping_timeout=cfg.ping_timeout,
                close_timeout=2)
            self.port = self._server.sockets[0].getsockname()[1]
            if not cfg.taker_fee and not is_loopback(host):
                log.warning("orders entered over the WebSocket at %s pay the fee rates their "
                            "clients send: set [ws] taker_fee and maker_fee notice=WATCH",
                            cfg.addr)
            tasks.append(asyncio.create_task(self._clock()))
            if self.events_url:
                from wsgateway.events import follow

                tasks.append(asyncio.create_task(follow(self.events_url, self)))
        started.set()
        await self._stopped.wait()
        for task in tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._stream is not None:
            await self._stream.stop()
        self.auth.close()
        close = getattr(self.core, "close", None)
        if close is not None:
            close()

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_INTERVAL)
            if self.events_url is None or self.following:  # a core that is down: no re-reads
                self.hub.tick()

    async def _load_names(self, wait: bool) -> None:
        """Markets and assets from the core (a remote core may start after the gateway)."""
        while True:
            try:
                markets = await call(self.core, "market.list", [])
                assets = await call(self.core, "asset.list", [])
                break
            except CoreError as exc:
                if not wait:
                    raise OSError(f"cannot read markets from the core: {exc}") from None
                log.warning("waiting for the core: %s", exc)
                await asyncio.sleep(1)
        self.markets = {m["name"]: (m["stock"], m["money"]) for m in markets}
        self.assets = {a["name"] for a in assets}

    def _drain(self) -> None:
        with self._inbox_lock:
            batches = list(self._inbox)
            self._inbox.clear()
            self._inbox_count = 0
            self._inbox_woken = False
            overflow, self._overflow = self._overflow, False
        for events in batches:
            if self._stream is not None:
                self._stream.publish(events)
            self.hub.on_events(events)
        if overflow:
            self.lost_events("the hand-over queue overflowed")

    def lost_events(self, why: str) -> None:
        """Events were lost: resync public state, close connections that follow orders."""
        log.warning("WebSocket gateway lost core events (%s): resyncing notice=WATCH", why)
        self.resyncs += 1
        for conn in list(self.conns):
            if "order" in conn.subs:
                conn.close(1013, "events lost: reconnect and re-query")
        self.hub.resync()

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse before the upgrade: unknown path, too many connections (in all, per IP).
        `GET /metrics` (plain HTTP) answers the gateway's Prometheus lines to loopback peers,
        so a standalone `teller core ws`, which has no HTTP port, can be monitored."""
        path = request.path.partition("?")[0]
        if path == "/metrics" and is_loopback(_ip(connection)):
            response = connection.respond(200, self.metrics_text())
            del response.headers["Content-Type"]  # a multi-dict: replace, not append
            response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
            return response
        if path not in PATHS:
            return connection.respond(404, "unknown path: use / (viabtc) or /connmix\n")
        ip = _ip(connection)
        if len(self.conns) >= self.config.max_connections:
            return _refuse(connection, "too many connections\n")
        if self.per_ip.get(ip, 0) >= self.config.max_connections_per_ip:
            return _refuse(connection, "too many connections from this address\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path.partition("?")[0] if ws.request else "/"
        ip = _ip(ws)
        cfg = self.config
        if (len(self.conns) >= cfg.max_connections
                or self.per_ip.get(ip, 0) >= cfg.max_connections_per_ip):
            await ws.close(1013, "too many connections")  # raced past _admit
            return
        conn = Conn(ws, ip, PATHS[path], cfg.out_queue, self)
        self.conns.add(conn)
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        writer = asyncio.create_task(conn.writer())
        try:
            while not conn.closed:
                try:
                    message = await asyncio.wait_for(ws.recv(), cfg.idle_timeout)
                except TimeoutError:
                    conn.close(1000, "idle timeout")
                    break
                if conn.closed:
                    break
                if len(message) > cfg.max_message:
                    conn.enqueue(conn.dialect.error(CoreError(
                        1, f"invalid argument: message over {cfg.max_message} bytes")))
                    continue
                await conn.dialect.handle(self, conn, message)
        except ConnectionClosed:
            pass
        finally:
            if not conn.closed:
                conn.closed = True
                self.hub.drop(conn)
            conn.wake.set()
            self.conns.discard(conn)
            left = self.per_ip.get(ip, 1) - 1
            if left:
                self.per_ip[ip] = left
            else:
                self.per_ip.pop(ip, None)
            await writer


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (a dependency on CPython off Windows, as it is for ccxt),
    else the standard loop. uvloop's transports write from C: the push fan-out to 1,000
    connections is most of the gateway's work, and with uvloop bench/ws.py's p50 fell from
    16-18 to 12-13 ms in interleaved runs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _refuse(connection: ServerConnection, text: str) -> Response:
    response = connection.respond(503, text)
    response.headers = Headers([*response.headers.raw_items(), ("Retry-After", "1")])
    return response


def _ip(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if address else "?"


def in_process(service: Any, config: WsConfig) -> Gateway:
    """A started gateway fed by `service` (a CoreService) in this process; raises OSError."""
    from wsgateway.core import LocalCore

    gateway = Gateway(config, lambda loop: LocalCore(service, loop))
    service.subscribe_durable(EVENT_TOPICS, gateway.feed)
    gateway.start()
    return gateway


def standalone(config: WsConfig, core_url: str, events_url: str) -> Gateway:
    """A started gateway for the core at `core_url` (HTTP JSON-RPC), following its event
    stream at `events_url`; raises OSError."""
    from wsgateway.core import RemoteCore

    gateway = Gateway(config, lambda loop: RemoteCore(core_url, loop), events_url=events_url)
    gateway.start(timeout=600)
    return gateway
