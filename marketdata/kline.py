"""market.kline: interval rules, bucket alignment per interval family, aggregation of base candles.

Interval rules (marketprice/mp_server.c): < 60 must divide 60 (from 1 s candles); < 3600 a
multiple of 60 dividing 3600 (1 min); < 86400 a multiple of 3600 dividing 86400 (1 h, buckets
counted from local midnight); < 604800 a multiple of 86400 (whole local days, aligned to multiples
of n days since 1970-01-01); 604800 = week from local Monday 00:00; 2592000 = calendar month.

Rows are `[time, open, close, high, low, volume, deal, market]`. Buckets before the market's first
trade are skipped; empty buckets after it are flat at the previous close with zero volume.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import timedelta

from common.decimals import CTX, fmt
from common.errors import InvalidArgument
from marketdata.candle import Series
from marketdata.feed import MarketFeed
from marketdata.localtime import EPOCH_DATE, DayCache, add_months, local_date, midnight

SEC_MAX = 7 * 86400  # 1 s candles kept and queryable (marketprice sec_max)
MIN_MAX = 365 * 86400  # 1 min candles kept and queryable (marketprice min_max)
# Rows in one market.kline reply: the newest ones (a window's start is clipped as marketprice
# clips it to retention). Deliberate difference from viabtc: a week of 1 s candles was 604,800
# rows, tens of MB of reply from one call (issue 14); a week of 30 s candles (20,161) still fits.
KLINE_MAX_ROWS = 30_000
WEEK = 7 * 86400
MONTH = 30 * 86400

_add = CTX.add


class Buckets:
    """Fixed-width buckets aligned to multiples of `width` since the epoch (1 s and 1 min families)."""

    def __init__(self, width: int) -> None:
        self.width = width

    def first(self, t: int) -> tuple[int, int]:
        """[start, end) of the bucket containing t."""
        start = t - t % self.width
        return start, start + self.width

    def after(self, start: int, end: int) -> tuple[int, int]:
        """The bucket following [start, end)."""
        return end, end + self.width


class HourBuckets:
    """`width`-hour buckets counted from each local midnight (a 23/25 h DST day ends short/long)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.days = DayCache()

    def first(self, t: int) -> tuple[int, int]:
        day = self.days.start(t)
        start = day + (t - day) // self.width * self.width
        return start, min(start + self.width, self.days.hi)

    def after(self, start: int, end: int) -> tuple[int, int]:
        return self.first(end)


class DayBuckets:
    """Calendar buckets: n local days, Monday weeks, or calendar months."""

    def __init__(self, days: int = 0, week: bool = False, month: bool = False) -> None:
        self.days, self.week, self.month = days, week, month

    def first(self, t: int) -> tuple[int, int]:
        day = local_date(t)
        if self.month:
            begin = day.replace(day=1)
            return midnight(begin), midnight(add_months(begin, 1))
        if self.week:
            begin = day - timedelta(days=day.weekday())
            return midnight(begin), midnight(begin + timedelta(days=7))
        index = (day - EPOCH_DATE).days
        begin = EPOCH_DATE + timedelta(days=index - index % self.days)
        return midnight(begin), midnight(begin + timedelta(days=self.days))

    def after(self, start: int, end: int) -> tuple[int, int]:
        nxt = self.first(end)
        if nxt[0] <= start:  # mktime put a midnight inside a DST gap before `end`: step past it
            nxt = self.first(end + 7200)
        return nxt


def plan(interval: int, start: int, now: int
         ) -> tuple[str, Buckets | HourBuckets | DayBuckets, int]:
    """Validate `interval`; return (base series name, bucketer, start clipped to retention)."""
    if interval <= 0:
        raise InvalidArgument(f"interval must be a positive number of seconds, got {interval}")
    if interval < 60:
        if 60 % interval:
            raise InvalidArgument(f"interval {interval} < 60 must divide 60")
        return "sec", Buckets(interval), max(start, now - SEC_MAX)
    if interval < 3600:
        if interval % 60 or 3600 % interval:
            raise InvalidArgument(f"interval {interval} < 3600 must be a multiple of 60 dividing 3600")
        return "min", Buckets(interval), max(start, now - now % 60 - MIN_MAX)
    if interval < 86400:
        if interval % 3600 or 86400 % interval:
            raise InvalidArgument(
                f"interval {interval} < 86400 must be a multiple of 3600 dividing 86400")
        return "hour", HourBuckets(interval), start
    if interval < WEEK:
        if interval % 86400:
            raise InvalidArgument(f"interval {interval} < 604800 must be a multiple of 86400")
        return "day", DayBuckets(days=interval // 86400), start
    if interval == WEEK:
        return "day", DayBuckets(week=True), start
    if interval == MONTH:
        return "day", DayBuckets(month=True), start
    raise InvalidArgument(
        f"interval {interval} not supported: above 518400 only 604800 (week) and 2592000 (month)")


def kline(feed: MarketFeed, start: int, end: int, interval: int, now: int) -> list[list]:
    """market.kline rows for [start, end] (end already clipped to now and >= start), at most
    the newest ``KLINE_MAX_ROWS``."""
    name, buckets, start = plan(interval, start, now)
    start = max(start, end - interval * KLINE_MAX_ROWS)  # calendar buckets: cut below
    if start > end:
        return []
    series: Series = getattr(feed, name)
    keys, data = series.keys, series.data
    count = len(keys)
    lo, hi = buckets.first(start)
    i = bisect_left(keys, lo)
    prev_close = feed.close_before(lo)
    if prev_close is None:
        # nothing traded before lo: jump straight to the bucket of the first trade
        if i == count:
            return []
        if keys[i] >= hi:
            lo, hi = buckets.first(keys[i])
    rows: list[list] = []
    market = feed.name
    while lo <= end:
        if i < count and keys[i] < hi:
            first = data[keys[i]]
            open_, close, high, low = first.open, first.close, first.high, first.low
            volume, deal = first.volume, first.deal
            i += 1
            while i < count and keys[i] < hi:
                item = data[keys[i]]
                close = item.close
                volume = _add(volume, item.volume)
                deal = _add(deal, item.deal)
                if item.high > high:
                    high = item.high
                if item.low < low:
                    low = item.low
                i += 1
            rows.append([lo, fmt(open_), fmt(close), fmt(high), fmt(low), fmt(volume), fmt(deal),
                         market])
            prev_close = close
        else:
            flat = fmt(prev_close)  # type: ignore[arg-type]  # set: the first bucket traded
            rows.append([lo, flat, flat, flat, flat, "0", "0", market])
        lo, hi = buckets.after(lo, hi)
    return rows[-KLINE_MAX_ROWS:]
