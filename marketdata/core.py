"""MarketData: the in-memory market-data service the exchange core feeds with its deals.

It owns what viabtc's marketprice owns (klines, last price, recent deals, 24 h status) and the
checks on market.* parameters that are about ranges rather than JSON types. It never touches
balances or orders and does no I/O; the caller serialises access (one thread, or its own lock).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable

from common.decimals import parse_positive, sci
from common.errors import InvalidArgument
from marketdata import depth, kline, status
from marketdata.feed import DEALS_MAX, SIDE_ASK, SIDE_BID, MarketFeed
from marketdata.localtime import DayCache, day_start

log = logging.getLogger(__name__)

TRIM_EVERY = 3600  # seconds between retention trims, like marketprice's clear timer
MARKET_NAME_MAX = 30


def _require_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be an integer")
    return value


class MarketData:
    """Klines, last price, recent deals and status per market, built from `deals` events."""

    def __init__(self, markets: Iterable[str] = (), clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._days = DayCache()
        self._feeds: dict[str, MarketFeed] = {}
        self._next_trim = 0.0
        for name in markets:
            self.add_market(name)

    # -- feeding -------------------------------------------------------------------------------

    def add_market(self, name: str) -> None:
        """Know `name` (no trades yet: last "0", no candles). Adding it again is a no-op."""
        if not isinstance(name, str) or not name or len(name.encode()) > MARKET_NAME_MAX:
            raise InvalidArgument(f"market name must be 1..{MARKET_NAME_MAX} bytes: {name!r}")
        if name not in self._feeds:
            self._feeds[name] = MarketFeed(name, self._days)

    def on_deal(self, deal: list) -> None:
        """Apply one viabtc `deals` message; a replayed id (<= the market's last) is ignored.

        `[time, market, ask_order_id, bid_order_id, ask_user_id, bid_user_id, price, amount,
        ask_fee, bid_fee, taker_side, deal_id, stock, money]`. A malformed message raises
        InvalidArgument and changes nothing.
        """
        if not isinstance(deal, list | tuple) or len(deal) < 12:
            raise InvalidArgument("deal must be a list of 14 fields")
        ts, market, price_text, amount_text = deal[0], deal[1], deal[6], deal[7]
        side, deal_id = deal[10], deal[11]
        if type(deal_id) is not int or deal_id <= 0:
            raise InvalidArgument(f"deal id must be a positive integer: {deal_id!r}")
        if type(ts) not in (float, int) or not (0 < ts < math.inf):
            raise InvalidArgument(f"deal time must be a positive number: {ts!r}")
        if type(side) is not int or side not in (SIDE_ASK, SIDE_BID):
            raise InvalidArgument(f"taker side must be 1 (ask) or 2 (bid): {side!r}")
        try:
            price = parse_positive(price_text, "deal price")
            amount = parse_positive(amount_text, "deal amount")
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        feed = self._feeds.get(market) if isinstance(market, str) else None
        if feed is None:
            self.add_market(market)  # as marketprice does for an unknown market
            feed = self._feeds[market]
        elif deal_id <= feed.last_id:
            return  # idempotent replay
        feed.apply(ts, price, amount, side, deal_id)
        if ts >= self._next_trim:
            self.trim()
            self._next_trim = max(self._next_trim, ts + TRIM_EVERY)

    def trim(self, now: float | None = None) -> None:
        """Drop 1 s candles older than 7 days and 1 min candles older than 365 days.

        Cut-offs fall on 1 min / local 1 h boundaries so the coarser series still answer exactly
        for the removed span. Runs by itself at most hourly from on_deal.
        """
        now = int(self._clock() if now is None else now)
        sec_cut = (now - kline.SEC_MAX) // 60 * 60
        min_point = now - kline.MIN_MAX
        min_cut = min_point - (min_point - day_start(min_point)) % 3600
        dropped = 0
        for feed in self._feeds.values():
            dropped += feed.sec.trim(sec_cut) + feed.min.trim(min_cut)
        self._next_trim = now + TRIM_EVERY
        if dropped:
            log.debug("trimmed %d old candles", dropped)

    # -- queries ---------------------------------------------------------------------------------

    def _feed(self, market: str) -> MarketFeed:
        feed = self._feeds.get(market) if isinstance(market, str) else None
        if feed is None:
            raise InvalidArgument(f"unknown market: {market!r}")
        return feed

    def markets(self) -> list[str]:
        """Known market names, in the order they were added."""
        return list(self._feeds)

    def last(self, market: str) -> str:
        """market.last: the last trade price as parsed (not zero-stripped), "0" before any trade."""
        feed = self._feed(market)
        return "0" if feed.last is None else sci(feed.last)

    def deals(self, market: str, limit: int, last_id: int) -> list[dict]:
        """market.deals: up to `limit` (1..10000) deals with id > last_id, newest first."""
        feed = self._feed(market)
        limit = _require_int(limit, "limit")
        last_id = _require_int(last_id, "last_id")
        if not 1 <= limit <= DEALS_MAX:
            raise InvalidArgument(f"limit must be 1..{DEALS_MAX}, got {limit}")
        if last_id < 0:
            raise InvalidArgument(f"last_id must be >= 0, got {last_id}")
        return feed.recent_deals(limit, last_id)

    def kline(self, market: str, start: int, end: int, interval: int) -> list[list]:
        """market.kline: `[time, open, close, high, low, volume, deal, market]` rows."""
        feed = self._feed(market)
        start = _require_int(start, "start")
        end = _require_int(end, "end")
        interval = _require_int(interval, "interval")
        if start <= 0:
            raise InvalidArgument(f"start must be > 0, got {start}")
        now = int(self._clock())
        end = min(end, now)
        if end <= 0 or start > end:
            raise InvalidArgument(f"need 0 < start <= end (end clipped to now {now}), "
                                  f"got start {start}, end {end}")
        return kline.kline(feed, start, end, interval, now)

    def status(self, market: str, period: int) -> dict:
        """market.status over the trailing `period` seconds (1..604800)."""
        feed = self._feed(market)
        period = _require_int(period, "period")
        if not 1 <= period <= kline.SEC_MAX:
            raise InvalidArgument(f"period must be 1..{kline.SEC_MAX}, got {period}")
        return status.status(feed, period, int(self._clock()))

    def status_today(self, market: str) -> dict:
        """market.status_today: today's open/high/low/last, rolling 24 h volume and deal."""
        return status.status_today(self._feed(market), int(self._clock()))

    @staticmethod
    def depth_diff(old: dict, new: dict, limit: int | None = None) -> dict:
        """The depth.update diff between two order.depth results (see marketdata.depth)."""
        return depth.depth_diff(old, new, limit)
