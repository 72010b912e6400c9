"""The exchange core composed: engine service + history + market data + RPC + WebSocket.

`matchengine` knows nothing of market data or push; this package wires them together (market
data follows the engine's `deals` events and answers the `market.*` reads; the WebSocket
gateway follows the durable event batches), so everything that runs a core — `teller core run`,
tests, benchmarks — gets the same service. `CoreNode` starts the parts in order and stops them
the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from marketdata import MarketData
from matchengine.config import CoreConfig, WsConfig
from matchengine.rpcserver import RpcServer
from matchengine.service import CoreService, now


def open_core(config: CoreConfig, data_dir: str | Path,
              clock: Callable[[], float] = now) -> CoreService:
    """Recover the core in `data_dir` and start its threads, with market data attached (on the
    same clock, so deal times and market-data windows agree, also under a test's clock)."""
    market = MarketData(markets=[m.name for m in config.markets], clock=clock)
    return CoreService(config, data_dir, clock=clock, market=market)


class ListenError(OSError):
    """A listening socket could not be opened; the message names the server and address."""

    def __init__(self, what: str, addr: str, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        message = (f"cannot listen on {addr}: {reason}" if what == "JSON-RPC" else
                   f"cannot start the WebSocket server on {addr}: {reason}")
        super().__init__(exc.errno, message)
        self.what = what


class CoreNode:
    """One running exchange core: the recovered service, its JSON-RPC server on ``host:port``
    and, when ``ws`` asks for it, the WebSocket gateway (and event stream) in this process."""

    def __init__(self, config: CoreConfig, data_dir: str | Path, host: str, port: int,
                 ws: WsConfig) -> None:
        self.service = open_core(config, data_dir)  # RecoveryError: nothing was started
        try:
            self.server = RpcServer(self.service, host, port)
        except OSError as exc:
            self.service.stop()
            raise ListenError("JSON-RPC", f"{host}:{port}", exc) from None
        self.gateway: Any = None
        if ws.addr or ws.events_addr:
            from wsgateway import in_process  # only a core that pushes loads websockets

            try:
                self.gateway = in_process(self.service, ws)
            except OSError as exc:
                self.server.stop()
                self.service.stop()
                raise ListenError("WebSocket", ws.addr or ws.events_addr, exc) from None
            self.server.metrics_sources.append(self.gateway.metrics_text)

    def serve_forever(self) -> None:
        """Serve JSON-RPC in this thread (the gateway runs in its own) until interrupted."""
        self.server.serve_forever()

    def stop(self) -> None:
        """Stop push first, then drain and commit the queued requests."""
        if self.gateway is not None:
            self.gateway.stop()
        self.service.stop()


__all__ = ["CoreNode", "ListenError", "open_core"]
