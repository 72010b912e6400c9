"""Candles and the time-keyed candle series they live in.

A `Candle` is viabtc's `kline_info`: open, close, high, low, volume (stock), deal (money). A
`Series` is one of marketprice's four base series (1 s, 1 min, 1 h, 1 day): a dict from bucket
start to candle plus the sorted list of bucket starts, so range queries are a bisect and a walk.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import Decimal

from common.decimals import CTX, ZERO

_add = CTX.add


class Candle:
    """One bucket's prices and totals. A fresh candle is flat at its open with zero volume."""

    __slots__ = ("open", "close", "high", "low", "volume", "deal")

    def __init__(self, open_price: Decimal) -> None:
        self.open = open_price
        self.close = open_price
        self.high = open_price
        self.low = open_price
        self.volume = ZERO
        self.deal = ZERO

    def update(self, price: Decimal, amount: Decimal, money: Decimal) -> None:
        """Apply one trade (kline_info_update)."""
        self.close = price
        self.volume = _add(self.volume, amount)
        self.deal = _add(self.deal, money)
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price

    def merge(self, other: Candle) -> None:
        """Fold a later candle into this one (kline_info_merge)."""
        self.close = other.close
        self.volume = _add(self.volume, other.volume)
        self.deal = _add(self.deal, other.deal)
        if other.high > self.high:
            self.high = other.high
        if other.low < self.low:
            self.low = other.low

    def copy(self) -> Candle:
        """An independent candle with the same values (queries never alias stored candles)."""
        twin = Candle(self.open)
        twin.close = self.close
        twin.high = self.high
        twin.low = self.low
        twin.volume = self.volume
        twin.deal = self.deal
        return twin


class Series:
    """Candles keyed by bucket start; `floor` is where the series is known complete after a trim.

    `floor` None means nothing was ever trimmed, so the series holds every trade fed to it.
    """

    __slots__ = ("width", "keys", "data", "floor")

    def __init__(self, width: int) -> None:
        self.width = width
        self.keys: list[int] = []
        self.data: dict[int, Candle] = {}
        self.floor: int | None = None

    def candle_for(self, key: int, open_price: Decimal) -> Candle:
        """The candle at `key`, created at `open_price` when the bucket is new."""
        candle = self.data.get(key)
        if candle is None:
            candle = self.data[key] = Candle(open_price)
            keys = self.keys
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        return candle

    def aggregate(self, lo: int, hi: int) -> Candle | None:
        """Merge of the candles with lo <= key < hi, or None when there are none."""
        keys = self.keys
        i = bisect_left(keys, lo)
        result = None
        data = self.data
        while i < len(keys) and keys[i] < hi:
            item = data[keys[i]]
            if result is None:
                result = item.copy()
            else:
                result.merge(item)
            i += 1
        return result

    def last_before(self, t: int) -> Candle | None:
        """The latest candle whose whole bucket ends at or before `t` (key + width <= t)."""
        i = bisect_left(self.keys, t - self.width + 1)
        return self.data[self.keys[i - 1]] if i else None

    def trim(self, cutoff: int) -> int:
        """Drop candles with key < cutoff; returns how many went. The series is complete >= cutoff."""
        i = bisect_left(self.keys, cutoff)
        if i:
            for key in self.keys[:i]:
                del self.data[key]
            del self.keys[:i]
        if self.floor is None or cutoff > self.floor:
            self.floor = cutoff
        return i
