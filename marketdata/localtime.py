"""Local-timezone calendar arithmetic, the way viabtc's marketprice does it.

Days start at local midnight (`localtime` + `mktime`), weeks on Monday, months on the 1st. All
results are integer Unix seconds. The zone is whatever the process uses (TZ / tzset), read at call
time; `DayCache` remembers the current day so the per-deal path calls no libc at all.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

EPOCH_DATE = date(1970, 1, 1)


def midnight(day: date) -> int:
    """Unix time of local midnight starting `day` (mktime normalises DST gaps)."""
    return int(time.mktime((day.year, day.month, day.day, 0, 0, 0, 0, 0, -1)))


def local_date(ts: int) -> date:
    """The local calendar date containing Unix time `ts`."""
    tm = time.localtime(ts)
    return date(tm.tm_year, tm.tm_mon, tm.tm_mday)


def day_bounds(ts: int) -> tuple[int, int]:
    """[start, end) of the local day containing `ts` (23, 24 or 25 hours long)."""
    day = local_date(ts)
    return midnight(day), midnight(day + timedelta(days=1))


def day_start(ts: int) -> int:
    """Local midnight at or before `ts`."""
    return midnight(local_date(ts))


def add_months(day: date, months: int) -> date:
    """First day of the month `months` after the month of `day`."""
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


class DayCache:
    """Remembers the bounds of the last local day seen, so consecutive deals reuse them."""

    __slots__ = ("lo", "hi")

    def __init__(self) -> None:
        self.lo = 1
        self.hi = 0

    def start(self, ts: int) -> int:
        """Local midnight at or before `ts` (cached while `ts` stays in the same day)."""
        if not self.lo <= ts < self.hi:
            self.lo, self.hi = day_bounds(ts)
        return self.lo
