"""market.status and market.status_today through MarketData, with a fixed clock and explicit TZ."""

from __future__ import annotations

import pytest

from marketdata import InvalidArgument, MarketData
from tests.support.clock import utc

MARKET = "SKYBTC"


def feed(md: MarketData, *trades: tuple) -> None:
    for n, (ts, price, amount) in enumerate(trades, start=1):
        md.on_deal([ts, MARKET, 10, 20, 1, 2, price, amount, "0", "0", 2, n, "SKY", "BTC"])


def test_status_over_trailing_period(set_tz):
    set_tz("UTC0")
    t0 = utc(2024, 3, 6, 12, 0, 0)
    now = t0 + 45
    md = MarketData([MARKET], clock=lambda: now)
    feed(md, (now - 3600, "10", "1"), (now - 120, "12", "2"), (now - 30.5, "8", "0.5"))
    # window [now-100, now): only the last trade; its minute opened at the previous close 12
    assert md.status(MARKET, 100) == {
        "period": 100, "last": "8", "open": "12", "close": "8", "high": "12", "low": "8",
        "volume": "0.5", "deal": "4",
    }
    assert md.status(MARKET, 86400) == {
        "period": 86400, "last": "8", "open": "10", "close": "8", "high": "12", "low": "8",
        "volume": "3.5", "deal": "38",
    }
    # 1 s resolution at the head of the window: now-120 = t0-75 falls inside a 121 s window
    assert md.status(MARKET, 121)["volume"] == "2.5"
    assert md.status(MARKET, 119)["volume"] == "0.5"


def test_status_counts_deals_of_the_current_second_on_a_minute_boundary(set_tz):
    # viabtc's window stops before the candle keyed `now`, so deals made in the first second of
    # a minute were missing from status until the next second; here they count at once
    set_tz("UTC0")
    now = utc(2024, 3, 6, 12, 0, 0)
    md = MarketData([MARKET], clock=lambda: now)
    feed(md, (now - 30, "10", "1"), (now + 0.25, "11", "0.5"))
    assert md.status(MARKET, 86400)["volume"] == "1.5"
    assert md.status(MARKET, 86400)["close"] == "11"
    assert md.status_today(MARKET)["volume"] == "1.5"


def test_status_quiet_window_is_flat_at_previous_close(set_tz):
    set_tz("UTC0")
    now = utc(2024, 3, 6, 12, 0, 0)
    md = MarketData([MARKET, "NEWBTC"], clock=lambda: now)
    feed(md, (now - 5000, "10.50", "1"))
    assert md.status(MARKET, 600) == {
        "period": 600, "last": "10.5", "open": "10.5", "close": "10.5", "high": "10.5",
        "low": "10.5", "volume": "0", "deal": "0",
    }
    assert md.status("NEWBTC", 86400) == {
        "period": 86400, "last": "0", "open": "0", "close": "0", "high": "0", "low": "0",
        "volume": "0", "deal": "0",
    }


@pytest.mark.parametrize("period", [0, -1, 604801])
def test_status_period_range(period):
    md = MarketData([MARKET], clock=lambda: 1_700_000_000)
    with pytest.raises(InvalidArgument, match="period"):
        md.status(MARKET, period)


def test_status_limits_and_unknown_market():
    md = MarketData([MARKET], clock=lambda: 1_700_000_000)
    assert md.status(MARKET, 604800)["period"] == 604800
    assert md.status(MARKET, 1)["volume"] == "0"
    with pytest.raises(InvalidArgument, match="unknown market"):
        md.status("NOPE", 60)
    with pytest.raises(InvalidArgument, match="unknown market"):
        md.status_today("NOPE")


def test_status_today_uses_local_day_candle_and_rolling_volume(set_tz):
    set_tz("CST-8")
    midnight = utc(2024, 3, 5, 16, 0, 0)  # 2024-03-06 00:00 CST
    now = midnight + 10 * 3600  # 10:00 local, 02:00 UTC
    md = MarketData([MARKET], clock=lambda: now)
    feed(md,
         (midnight - 86400 - 3600 * 15, "40", "9"),  # two days ago local 09:00: outside 24 h
         (midnight - 3600, "50", "1"),  # yesterday 23:00 local: inside the rolling 24 h
         (midnight + 3600, "55", "2"),
         (midnight + 9 * 3600, "45", "1"))
    # today's candle opened at yesterday's close 50; volume/deal over the last 24 h, not today
    assert md.status_today(MARKET) == {
        "open": "50", "last": "45", "high": "55", "low": "45", "volume": "4", "deal": "205",
    }


def test_status_today_without_trade_today_uses_previous_close(set_tz):
    set_tz("CST-8")
    midnight = utc(2024, 3, 5, 16, 0, 0)
    now = midnight + 2 * 3600
    md = MarketData([MARKET, "NEWBTC"], clock=lambda: now)
    feed(md, (midnight - 40 * 86400, "30", "1"), (midnight - 7200, "33", "2"))
    assert md.status_today(MARKET) == {
        "open": "33", "last": "33", "high": "33", "low": "33", "volume": "2", "deal": "66",
    }
    assert md.status_today("NEWBTC") == {
        "open": "0", "last": "0", "high": "0", "low": "0", "volume": "0", "deal": "0",
    }


def test_status_today_day_boundary_follows_zone(set_tz):
    set_tz("UTC0")
    now = utc(2024, 3, 6, 2, 0, 0)
    md = MarketData([MARKET], clock=lambda: now)
    feed(md, (utc(2024, 3, 5, 20, 0, 0), "7", "1"))  # 03-05 in UTC, 03-06 04:00 in CST-8
    assert md.status_today(MARKET)["open"] == "7"
    assert md.status_today(MARKET)["volume"] == "1"

    set_tz("CST-8")
    md = MarketData([MARKET], clock=lambda: now)
    feed(md, (utc(2024, 3, 5, 15, 0, 0), "7", "1"), (utc(2024, 3, 5, 20, 0, 0), "9", "1"))
    # local day 03-06 started at 03-05 16:00 UTC: only the 9 trade is today, opened at 7
    assert md.status_today(MARKET) == {
        "open": "7", "last": "9", "high": "9", "low": "7", "volume": "2", "deal": "16",
    }
