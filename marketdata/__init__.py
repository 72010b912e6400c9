"""Market data for the exchange core: klines, last price, recent deals, 24 h status, depth diffs.

The in-memory counterpart of viabtc's marketprice, fed with the matchengine's `deals` events.
It mutates no balances or orders and does no I/O.
"""

from __future__ import annotations

from common.errors import InvalidArgument
from marketdata.core import MarketData
from marketdata.depth import depth_diff

__all__ = ["InvalidArgument", "MarketData", "depth_diff"]
