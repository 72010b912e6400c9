"""market.kline through MarketData: interval rules, bucket maths per family, candle semantics.

Times are built with calendar.timegm (UTC) and shifted by the zone offset set through TZ, so each
expectation says which local wall-clock time it stands for.
"""

from __future__ import annotations

import pytest

from marketdata import InvalidArgument, MarketData
from tests.support.clock import utc

MARKET = "SKYBTC"


def deal(ts: float, price: str, amount: str, deal_id: int, side: int = 2,
         market: str = MARKET) -> list:
    return [ts, market, 10, 20, 1, 2, price, amount, "0", "0", side, deal_id, "SKY", "BTC"]


def feed(md: MarketData, *trades: tuple) -> None:
    for n, (ts, price, amount) in enumerate(trades, start=1):
        md.on_deal(deal(ts, price, amount, n))


def row(t: int, o: str, c: str, h: str, lo: str, v: str, d: str) -> list:
    return [t, o, c, h, lo, v, d, MARKET]


# -- interval rules and parameter checks ------------------------------------------------------

ACCEPTED = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800,
            3600, 7200, 10800, 14400, 21600, 28800, 43200, 86400, 172800, 259200, 518400,
            604800, 2592000]
REJECTED = [0, -60, 7, 45, 59, 90, 150, 3660, 5400, 7200 * 5, 93600, 86400 * 7 + 1,
            604800 * 2, 86400 * 31, 2592000 + 86400]


@pytest.mark.parametrize("interval", ACCEPTED)
def test_accepted_intervals(interval):
    md = MarketData([MARKET], clock=lambda: 1_700_000_000)
    assert md.kline(MARKET, 1, 1_700_000_000, interval) == []


@pytest.mark.parametrize("interval", REJECTED)
def test_rejected_intervals(interval):
    md = MarketData([MARKET], clock=lambda: 1_700_000_000)
    with pytest.raises(InvalidArgument, match="interval"):
        md.kline(MARKET, 1, 1_700_000_000, interval)


def test_start_end_and_market_checks():
    now = 1_700_000_000
    md = MarketData([MARKET], clock=lambda: now)
    with pytest.raises(InvalidArgument, match="start must be > 0"):
        md.kline(MARKET, 0, now, 60)
    with pytest.raises(InvalidArgument, match="start <= end"):
        md.kline(MARKET, now - 10, now - 20, 60)
    with pytest.raises(InvalidArgument, match="start <= end"):
        md.kline(MARKET, now + 10, now + 100, 60)  # end clipped to now, so start > end
    with pytest.raises(InvalidArgument, match="unknown market"):
        md.kline("NOPE", 1, now, 60)
    with pytest.raises(InvalidArgument, match="integer"):
        md.kline(MARKET, 1.5, now, 60)
    assert md.kline(MARKET, now - 100, now + 10**9, 60) == []  # end beyond now is clipped


# -- families ---------------------------------------------------------------------------------

def test_second_family_buckets_and_flat_candles(set_tz):
    set_tz("UTC0")
    t = utc(2024, 3, 6, 10, 0, 0)
    md = MarketData([MARKET], clock=lambda: t + 20)
    feed(md, (t + 0.25, "10", "1"), (t + 7.5, "12", "2"), (t + 8, "9", "0.5"))
    assert md.kline(MARKET, t, t + 19, 5) == [
        row(t, "10", "10", "10", "10", "1", "10"),
        # opens at the previous close 10; high/low include it
        row(t + 5, "10", "9", "12", "9", "2.5", "28.5"),
        row(t + 10, "9", "9", "9", "9", "0", "0"),
        row(t + 15, "9", "9", "9", "9", "0", "0"),
    ]
    # unaligned start is floored to the interval; end is inclusive of a bucket's start
    assert [r[0] for r in md.kline(MARKET, t + 3, t + 10, 5)] == [t, t + 5, t + 10]


def test_minute_family_skips_buckets_before_first_trade(set_tz):
    set_tz("CST-8")
    t = utc(2024, 3, 6, 2, 0, 0)  # a whole hour
    md = MarketData([MARKET], clock=lambda: t + 3600)
    feed(md, (t + 930, "100", "1"), (t + 1000, "104", "1"), (t + 2800, "98", "2"))
    rows = md.kline(MARKET, t - 86400, t + 3600, 900)  # a day of nothing before the first trade
    assert rows == [
        row(t + 900, "100", "104", "104", "100", "2", "204"),
        row(t + 1800, "104", "104", "104", "104", "0", "0"),
        row(t + 2700, "104", "98", "104", "98", "2", "196"),
        row(t + 3600, "98", "98", "98", "98", "0", "0"),
    ]


def test_open_is_previous_close_and_first_candle_opens_at_own_price(set_tz):
    set_tz("UTC0")
    m = utc(2024, 3, 6, 12, 0, 0)
    md = MarketData([MARKET], clock=lambda: m + 600)
    assert md.last(MARKET) == "0"
    feed(md, (m + 5, "10", "1"), (m + 130, "20", "1"), (m + 185, "5", "1"))
    assert md.kline(MARKET, m, m + 240, 60) == [
        row(m, "10", "10", "10", "10", "1", "10"),  # new market: opens at its own price, not 0
        row(m + 60, "10", "10", "10", "10", "0", "0"),
        row(m + 120, "10", "20", "20", "10", "1", "20"),
        row(m + 180, "20", "5", "20", "5", "1", "5"),
        row(m + 240, "5", "5", "5", "5", "0", "0"),
    ]


def test_row_shape_and_types(set_tz):
    set_tz("UTC0")
    m = utc(2024, 3, 6, 12, 0, 0)
    md = MarketData([MARKET], clock=lambda: m + 60)
    feed(md, (m + 1.5, "0.00012300", "1000.10"))
    (only,) = md.kline(MARKET, m, m + 60, 3600 * 24)
    assert len(only) == 8 and type(only[0]) is int and only[0] == utc(2024, 3, 6)
    # [time, open, close, high, low, volume (stock), deal (money), market]
    assert only[1:] == ["0.000123", "0.000123", "0.000123", "0.000123", "1000.1", "0.1230123",
                        MARKET]


def test_hour_family_aligned_to_local_midnight_in_half_hour_zone(set_tz):
    set_tz("IST-5:30")
    midnight = utc(2024, 3, 5, 18, 30, 0)  # 2024-03-06 00:00 IST
    md = MarketData([MARKET], clock=lambda: midnight + 86400)
    feed(md, (midnight + 4200, "1", "1"),  # 01:10 local
         (midnight + 13800, "3", "1"),  # 03:50 local
         (midnight + 14400, "2", "1"))  # 04:00 local
    assert md.kline(MARKET, midnight + 100, midnight + 5 * 3600, 7200) == [
        row(midnight, "1", "1", "1", "1", "1", "1"),
        row(midnight + 7200, "1", "3", "3", "1", "1", "3"),
        row(midnight + 14400, "3", "2", "3", "2", "1", "2"),
    ]
    hourly = md.kline(MARKET, midnight, midnight + 4 * 3600, 3600)
    assert [r[0] for r in hourly] == [midnight + h * 3600 for h in range(1, 5)]
    assert hourly[2] == row(midnight + 3 * 3600, "1", "3", "3", "1", "1", "3")


def test_day_family_uses_local_midnight(set_tz):
    set_tz("CST-8")
    day = utc(2024, 3, 5, 16, 0, 0)  # 2024-03-06 00:00 CST
    md = MarketData([MARKET], clock=lambda: day + 5 * 86400)
    feed(md, (day + 3600, "10", "1"),  # 03-06 01:00 local (still 03-05 in UTC)
         (day + 2 * 86400 + 100, "12", "2"))
    assert md.kline(MARKET, day - 86400 * 3, day + 2 * 86400 + 5, 86400) == [
        row(day, "10", "10", "10", "10", "1", "10"),
        row(day + 86400, "10", "10", "10", "10", "0", "0"),
        row(day + 2 * 86400, "10", "12", "12", "10", "2", "24"),
    ]
    # 5-day buckets: multiples of 5 local days since 1970-01-01; 2024-03-06 is day 19788,
    # 19788 % 5 == 3, so its bucket starts on 2024-03-03 and the 03-08 trade opens the next one
    assert md.kline(MARKET, day + 86400, day + 4 * 86400, 5 * 86400) == [
        row(day - 3 * 86400, "10", "10", "10", "10", "1", "10"),
        row(day + 2 * 86400, "10", "12", "12", "10", "2", "24"),
    ]
    assert md.kline(MARKET, day, day, 3 * 86400) == [  # 19788 % 3 == 0
        row(day, "10", "12", "12", "10", "3", "34"),
    ]


def test_week_is_monday_aligned(set_tz):
    set_tz("CST-8")
    monday = utc(2024, 3, 3, 16, 0, 0)  # 2024-03-04 00:00 CST, a Monday
    md = MarketData([MARKET], clock=lambda: monday + 30 * 86400)
    feed(md, (monday - 3600, "5", "1"),  # Sunday 23:00 local: previous week
         (monday + 2 * 86400, "6", "1"),  # Wednesday
         (monday + 8 * 86400, "4", "1"))  # next Tuesday
    assert md.kline(MARKET, monday + 3 * 86400, monday + 8 * 86400, 604800) == [
        row(monday, "5", "6", "6", "5", "1", "6"),
        row(monday + 604800, "6", "4", "6", "4", "1", "4"),
    ]
    first = md.kline(MARKET, monday - 86400, monday, 604800)[0]
    assert first[0] == monday - 604800 and first[1:5] == ["5", "5", "5", "5"]


def test_month_is_calendar_month(set_tz):
    set_tz("CST-8")
    jan = utc(2023, 12, 31, 16, 0, 0)  # 2024-01-01 00:00 CST
    feb = utc(2024, 1, 31, 16, 0, 0)
    mar = utc(2024, 2, 29, 16, 0, 0)  # leap year
    apr = utc(2024, 3, 31, 16, 0, 0)
    md = MarketData([MARKET], clock=lambda: apr + 5 * 86400)
    feed(md, (feb - 60, "7", "1"),  # Jan 31 23:59 local
         (feb + 60, "8", "1"),  # Feb 1 00:01 local
         (mar + 14 * 86400, "6", "3"))
    assert md.kline(MARKET, jan + 10 * 86400, apr + 86400, 2592000) == [
        row(jan, "7", "7", "7", "7", "1", "7"),
        row(feb, "7", "8", "8", "7", "1", "8"),
        row(mar, "8", "6", "8", "6", "3", "18"),
        row(apr, "6", "6", "6", "6", "0", "0"),
    ]


def test_day_buckets_across_dst_start(set_tz):
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3")
    sat = utc(2024, 3, 29, 23, 0, 0)  # 2024-03-30 00:00 CET
    sun = utc(2024, 3, 30, 23, 0, 0)  # 2024-03-31 00:00 CET, a 23-hour day
    mon = utc(2024, 3, 31, 22, 0, 0)  # 2024-04-01 00:00 CEST
    md = MarketData([MARKET], clock=lambda: mon + 86400)
    feed(md, (sat + 60, "1", "1"), (sun + 22 * 3600 + 1800, "2", "1"), (mon + 30, "3", "1"))
    assert [r[0] for r in md.kline(MARKET, sat, mon + 3600, 86400)] == [sat, sun, mon]
    halves = md.kline(MARKET, sun, mon, 43200)
    # the short day is cut into [00:00, 12:00 local) and [12:00, next midnight)
    assert [r[0] for r in halves] == [sun, sun + 43200, mon]
    assert halves[1][2] == "2"


def test_second_family_start_clipped_and_previous_close_survives_trim(set_tz):
    set_tz("UTC0")
    now = utc(2024, 3, 6, 12, 0, 0)
    md = MarketData([MARKET], clock=lambda: now)
    feed(md, (now - 8 * 86400, "7", "1"))  # older than the 1 s retention
    md.trim()
    assert md.kline(MARKET, now - 90, now, 30) == [
        row(now - 90, "7", "7", "7", "7", "0", "0"),
        row(now - 60, "7", "7", "7", "7", "0", "0"),
        row(now - 30, "7", "7", "7", "7", "0", "0"),
        row(now, "7", "7", "7", "7", "0", "0"),
    ]
    rows = md.kline(MARKET, 1, now, 30)  # start clipped to now - 7 days
    assert rows[0][0] == now - 7 * 86400 and len(rows) == 7 * 86400 // 30 + 1
    daily = md.kline(MARKET, 1, now, 86400)
    assert daily[0] == row(utc(2024, 2, 27), "7", "7", "7", "7", "1", "7")


def test_trim_keeps_minutes_for_a_year_and_hours_forever(set_tz):
    set_tz("UTC0")
    now = utc(2024, 3, 6, 12, 0, 0)
    md = MarketData([MARKET], clock=lambda: now)
    feed(md, (now - 400 * 86400, "3", "1"), (now - 10 * 86400, "4", "1"), (now - 100, "5", "1"))
    md.trim()
    feed_ = md._feeds[MARKET]
    assert feed_.sec.keys == [now - 100]
    assert feed_.min.keys == [now - 10 * 86400, now - 120]
    assert len(feed_.hour.keys) == 3 and len(feed_.day.keys) == 3
    # an hourly kline still opens its first bucket after the trim at the right previous close
    rows = md.kline(MARKET, now - 11 * 86400, now, 3600)
    assert rows[0][1:5] == ["3", "3", "3", "3"]
