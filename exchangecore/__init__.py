"""The exchange core composed: engine service + history + market data (+ RPC server).

`matchengine` knows nothing of market data; this package wires them together (market data
follows the engine's `deals` events and answers the `market.*` reads), so everything that runs a
core — `teller core run`, tests, benchmarks — gets the same service. The WebSocket gateway is
composed here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from marketdata import MarketData
from matchengine.config import CoreConfig
from matchengine.service import CoreService, now


def open_core(config: CoreConfig, data_dir: str | Path,
              clock: Callable[[], float] = now) -> CoreService:
    """Recover the core in `data_dir` and start its threads, with market data attached."""
    market = MarketData(markets=[m.name for m in config.markets], clock=time.time)
    return CoreService(config, data_dir, clock=clock, market=market)


__all__ = ["open_core"]
