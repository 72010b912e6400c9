"""Time helpers for tests: UTC timestamps, a fixture that switches the zone, and a clock the
test moves by hand.

Klines and daily status depend on the process's local zone (viabtc buckets by local time), so
the ``set_tz`` fixture (registered for every test by ``tests/conftest.py``) switches it.
``Clock`` goes where code takes ``clock=``; the test sets or adds to ``now``.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def set_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Switch the process zone (TZ + tzset) for one test and restore it afterwards."""

    def apply(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield apply
    monkeypatch.undo()
    time.tzset()


def utc(*fields: int) -> int:
    """Unix time of a UTC date given as (year, month, day[, hour, minute, second])."""
    return calendar.timegm(fields + (0,) * (6 - len(fields)))


class Clock:
    """Stands still until the test moves ``now``."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
