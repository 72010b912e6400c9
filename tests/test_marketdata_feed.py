"""Feeding MarketData with deals: last price, market.deals, replay, validation, decimals, speed."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from common.decimals import fmt
from marketdata import InvalidArgument, MarketData

MARKET = "SKYBTC"
NOW = 1_709_726_400  # 2024-03-06 12:00 UTC, a whole hour


def deal(ts: float, price: str, amount: str, deal_id: int, side: int = 2,
         market: str = MARKET) -> list:
    return [ts, market, 10, 20, 1, 2, price, amount, "0.1", "0.2", side, deal_id, "SKY", "BTC"]


def snapshot(md: MarketData, market: str = MARKET) -> tuple:
    return (md.last(market), md.deals(market, 10000, 0), md.kline(market, 1, NOW, 60),
            md.kline(market, 1, NOW, 1), md.status(market, 86400), md.status_today(market))


def test_last_before_and_after_trades():
    md = MarketData([MARKET], clock=lambda: NOW)
    assert md.last(MARKET) == "0"
    md.on_deal(deal(NOW - 10, "8000.0", "1", 1))
    assert md.last(MARKET) == "8000.0"  # market.last is not zero-stripped
    assert md.deals(MARKET, 1, 0)[0]["price"] == "8000"  # deals are
    with pytest.raises(InvalidArgument, match="unknown market"):
        md.last("NOPE")


def test_deals_newest_first_with_last_id_and_limit():
    md = MarketData([MARKET], clock=lambda: NOW)
    for n in range(1, 6):
        md.on_deal(deal(NOW - 100 + n + 0.25, f"{n}.50", "0.10", n * 10, side=1 + n % 2))
    result = md.deals(MARKET, 3, 0)
    assert result == [
        {"id": 50, "time": NOW - 94.75, "price": "5.5", "amount": "0.1", "type": "buy"},
        {"id": 40, "time": NOW - 95.75, "price": "4.5", "amount": "0.1", "type": "sell"},
        {"id": 30, "time": NOW - 96.75, "price": "3.5", "amount": "0.1", "type": "buy"},
    ]
    assert [d["id"] for d in md.deals(MARKET, 100, 20)] == [50, 40, 30]
    assert md.deals(MARKET, 100, 50) == []
    assert md.deals(MARKET, 10000, 0)[-1] == {
        "id": 10, "time": NOW - 98.75, "price": "1.5", "amount": "0.1", "type": "buy"}


@pytest.mark.parametrize("limit,last_id,message", [
    (0, 0, "limit"), (10001, 0, "limit"), (-5, 0, "limit"), (10, -1, "last_id"),
    (True, 0, "integer"), (10, "0", "integer"),
])
def test_deals_argument_ranges(limit, last_id, message):
    md = MarketData([MARKET], clock=lambda: NOW)
    with pytest.raises(InvalidArgument, match=message):
        md.deals(MARKET, limit, last_id)


def test_deals_list_is_capped_at_10000():
    md = MarketData([MARKET], clock=lambda: NOW)
    for n in range(1, 10051):
        md.on_deal(deal(NOW - 20000 + n, "1", "1", n))
    result = md.deals(MARKET, 10000, 0)
    assert len(result) == 10000
    assert result[0]["id"] == 10050 and result[-1]["id"] == 51
    # candles keep every trade even though the list forgot the oldest
    assert md.status(MARKET, 86400)["volume"] == "10050"


def test_replaying_the_same_deals_changes_nothing():
    md = MarketData([MARKET], clock=lambda: NOW)
    trades = [deal(NOW - 3000 + n * 7.5, str(100 + n % 7), "0.3", n, side=1 + n % 2)
              for n in range(1, 200)]
    for d in trades:
        md.on_deal(d)
    before = snapshot(md)
    for d in trades:
        md.on_deal(d)
    md.on_deal(deal(NOW - 1, "999", "5", 150))  # an old id with other content is ignored too
    assert snapshot(md) == before


def test_ids_are_tracked_per_market():
    md = MarketData([MARKET], clock=lambda: NOW)
    md.on_deal(deal(NOW - 5, "1", "1", 7))
    md.on_deal(deal(NOW - 4, "2", "1", 5, market="ETHBTC"))  # created on the fly
    assert md.markets() == [MARKET, "ETHBTC"]
    assert md.last("ETHBTC") == "2"
    md.on_deal(deal(NOW - 3, "3", "1", 6))  # id 6 <= 7 for SKYBTC: replay
    assert md.last(MARKET) == "1"


def test_add_market_is_idempotent_and_checked():
    md = MarketData(["A", "B"], clock=lambda: NOW)
    md.add_market("A")
    md.add_market("C")
    assert md.markets() == ["A", "B", "C"]
    for bad in ("", "X" * 31, None, 5):
        with pytest.raises(InvalidArgument, match="market name"):
            md.add_market(bad)


@pytest.mark.parametrize("bad,message", [
    ([NOW, MARKET, 1, 2], "14 fields"),
    ("not a list", "14 fields"),
    (deal(NOW, "abc", "1", 1), "price is not a decimal"),
    (deal(NOW, "-1", "1", 1), "positive"),
    (deal(NOW, "0", "1", 1), "positive"),
    (deal(NOW, "NaN", "1", 1), "positive"),
    (deal(NOW, "Infinity", "1", 1), "positive"),
    (deal(NOW, "1", "0", 1), "amount"),
    (deal(NOW, 1.5, "1", 1), "decimal string"),
    (deal(NOW, "1", "1", 0), "deal id"),
    (deal(NOW, "1", "1", "3"), "deal id"),
    (deal(NOW, "1", "1", 1, side=3), "taker side"),
    (deal(NOW, "1", "1", 1, side=True), "taker side"),
    (deal("now", "1", "1", 1), "deal time"),
    (deal(0, "1", "1", 1), "deal time"),
    (deal(float("inf"), "1", "1", 1), "deal time"),
    (deal(NOW, "1", "1", 1, market=5), "market name"),
])
def test_malformed_deal_is_rejected_and_changes_nothing(bad, message):
    md = MarketData([MARKET], clock=lambda: NOW)
    md.on_deal(deal(NOW - 60, "5", "1", 1))
    before = snapshot(md)
    with pytest.raises(InvalidArgument, match=message):
        md.on_deal(bad)
    assert snapshot(md) == before
    assert md.markets() == [MARKET]


def test_decimal_arithmetic_is_34_digits_round_down():
    md = MarketData([MARKET], clock=lambda: NOW)
    # 0.666...6 (34 digits) * 8 = 5.3333...3328: 35 digits; ROUND_DOWN keeps ...332
    md.on_deal(deal(NOW - 5, "0.6666666666666666666666666666666666", "8", 1))
    assert md.status(MARKET, 60)["deal"] == "5.333333333333333333333333333333332"
    for n in range(2, 5):
        md.on_deal(deal(NOW - 5, "1", "0.1", n))
    assert md.status(MARKET, 60)["volume"] == "8.3"


def test_fmt_follows_rstripzero():
    assert fmt(Decimal("1.2300")) == "1.23"
    assert fmt(Decimal("100")) == "100"
    assert fmt(Decimal("100.000")) == "100"
    assert fmt(Decimal("0.000")) == "0"
    assert fmt(Decimal("0E-8")) == "0e-8"  # an exponent blocks stripping, lower-case as mpd
    assert fmt(Decimal("0.00000001")) == "1e-8"
    assert fmt(Decimal("1.50E+3")) == "1.50e+3"


def test_on_deal_is_cheap():
    md = MarketData([MARKET], clock=lambda: NOW)
    trades = [deal(NOW - 50000 + n * 0.37, f"{100 + n % 50}.5", "0.125", n, side=1 + n % 2)
              for n in range(1, 20001)]
    started = time.perf_counter()
    for d in trades:
        md.on_deal(d)
    per_deal = (time.perf_counter() - started) / len(trades)
    print(f"on_deal: {per_deal * 1e6:.1f} us per deal")
    assert per_deal < 100e-6  # aim is < 20 us; the bound leaves room for a loaded CI machine
