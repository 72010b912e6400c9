"""Per-market state fed from `deals` events: last price, the four base candle series, recent deals.

This is marketprice's `market_update` (mp_message.c) without Redis: every deal updates the 1 s,
1 min, 1 h and 1 day candles, then `last`, then prepends itself to a list of at most 10000 deals.
A new bucket opens at the previous trade price (viabtc commit a777f6d); a market's very first
bucket opens at that first trade's own price (fixes viabtc's open-at-0, hazard 8).

Bucket keys: 1 s = int(time); 1 min = UTC minute (all zone offsets are whole minutes); 1 h and
1 day are counted from local midnight, so hour buckets tile local days even in half-hour zones.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from common.decimals import CTX, fmt
from marketdata.candle import Series
from marketdata.localtime import DayCache

DEALS_MAX = 10000
SIDE_ASK = 1
SIDE_BID = 2

_mul = CTX.multiply


class MarketFeed:
    """Everything marketprice keeps for one market, in memory."""

    __slots__ = ("name", "last", "last_id", "sec", "min", "hour", "day", "deals", "_days")

    def __init__(self, name: str, days: DayCache) -> None:
        self.name = name
        self.last: Decimal | None = None
        self.last_id = 0
        self.sec = Series(1)
        self.min = Series(60)
        self.hour = Series(3600)
        self.day = Series(86400)
        # (id, time, price, amount, type), newest first
        self.deals: deque[tuple[int, float, str, str, str]] = deque(maxlen=DEALS_MAX)
        self._days = days

    def apply(self, ts: float, price: Decimal, amount: Decimal, side: int, deal_id: int) -> None:
        """Fold one validated deal into the series, `last` and the deals list."""
        open_price = self.last if self.last is not None else price
        money = _mul(price, amount)
        sec_key = int(ts)
        day_key = self._days.start(sec_key)
        self._bump(self.sec, sec_key, open_price, price, amount, money)
        self._bump(self.min, sec_key - sec_key % 60, open_price, price, amount, money)
        self._bump(self.hour, sec_key - (sec_key - day_key) % 3600, open_price, price, amount,
                   money)
        self._bump(self.day, day_key, open_price, price, amount, money)
        self.last = price
        self.last_id = deal_id
        self.deals.appendleft(
            (deal_id, float(ts), fmt(price), fmt(amount), "sell" if side == SIDE_ASK else "buy")
        )

    @staticmethod
    def _bump(series: Series, key: int, open_price: Decimal, price: Decimal, amount: Decimal,
              money: Decimal) -> None:
        candle = series.data.get(key)
        if candle is None:
            floor = series.floor
            if floor is not None and key < floor:
                return  # never re-open a bucket that retention already dropped
            candle = series.candle_for(key, open_price)
        candle.update(price, amount, money)

    def close_before(self, t: int) -> Decimal | None:
        """Price of the last trade strictly before `t`, or None if there was none.

        Exact when `t` falls on a boundary of the finest series still complete at `t` (every
        caller's `t` does: kline bucket starts, now - period, local midnight). Falls back from
        1 s to 1 min to 1 h as trimming removed the finer history; 1 h is never trimmed.
        """
        for series in (self.sec, self.min, self.hour):
            floor = series.floor
            if floor is not None and t < floor:
                continue  # this series no longer reaches back to t
            candle = series.last_before(t)
            if candle is not None:
                return candle.close
            if floor is None:
                return None  # complete since the first trade and nothing before t
            t = floor  # nothing in [floor, t): the answer is the close before floor
        return None

    def recent_deals(self, limit: int, last_id: int) -> list[dict]:
        """market.deals: newest first, ids > last_id, at most `limit`."""
        result: list[dict] = []
        for deal_id, ts, price, amount, kind in self.deals:
            if deal_id <= last_id or len(result) == limit:
                break
            result.append({"id": deal_id, "time": ts, "price": price, "amount": amount,
                           "type": kind})
        return result
