"""Matching semantics of the pure engine, with the exact numbers viabtc's arithmetic gives."""

from __future__ import annotations

from decimal import Decimal

import pytest

from common.decimals import fmt
from matchengine.config import from_dict
from matchengine.engine import ASK, BID, Engine, EngineError

D = Decimal
T = 1_700_000_000.0

CONFIG = {
    "assets": [{"name": "BTC", "prec_save": 12, "prec_show": 8},
               {"name": "USDT", "prec_save": 12, "prec_show": 6}],
    "markets": [{"name": "BTCUSDT", "stock": "BTC", "stock_prec": 8, "money": "USDT",
                 "money_prec": 2, "fee_prec": 4, "min_amount": "0.001"}],
}


@pytest.fixture
def engine() -> Engine:
    return Engine(from_dict(CONFIG))


def fund(engine: Engine, user: int, asset: str, amount: str) -> None:
    engine.update_balance(T, user, asset, "deposit", user * 1000 + len(engine.update_keys),
                          D(amount), {})


def bal(engine: Engine, user: int, asset: str) -> tuple[str, str]:
    return (fmt(engine.available.get((user, asset), D(0))),
            fmt(engine.frozen.get((user, asset), D(0))))


def limit(engine: Engine, user: int, side: int, amount: str, price: str,
          taker: str = "0", maker: str = "0", t: float = T):
    return engine.put_limit(t, user, "BTCUSDT", side, D(amount).quantize(D("1e-8")),
                            D(price).quantize(D("0.01")), D(taker), D(maker), "test")


def test_resting_limit_orders_freeze_exactly_what_they_may_spend(engine):
    fund(engine, 1, "BTC", "2")
    fund(engine, 2, "USDT", "1000")
    ask = limit(engine, 1, ASK, "1.5", "300")
    bid = limit(engine, 2, BID, "2", "250")
    assert bal(engine, 1, "BTC") == ("0.5", "1.5")
    assert bal(engine, 2, "USDT") == ("500", "500")
    assert ask.info()["left"] == "1.5" and bid.info()["deal_stock"] == "0"


def test_price_time_priority_at_the_makers_price_with_partial_fills(engine):
    for user in (1, 2, 3):
        fund(engine, user, "BTC", "1")
    fund(engine, 9, "USDT", "10000")
    first = limit(engine, 1, ASK, "1", "100", t=T + 1)
    second = limit(engine, 2, ASK, "1", "100", t=T + 2)
    better = limit(engine, 3, ASK, "0.5", "99", t=T + 3)
    taker = limit(engine, 9, BID, "1.2", "101", t=T + 4)
    # best price first (user 3 at 99), then the older order at 100; executed at makers' prices
    assert fmt(taker.deal_stock) == "1.2"
    assert fmt(taker.deal_money) == "119.5"  # 0.5*99 + 0.7*100
    assert better.id not in engine.markets["BTCUSDT"].orders
    assert fmt(first.left) == "0.3" and first.mtime == T + 4
    assert fmt(second.left) == "1" and second.mtime == T + 2
    assert bal(engine, 9, "USDT") == ("9880.5", "0")  # paid 119.5, nothing frozen
    assert bal(engine, 1, "USDT")[0] == "70"


def test_fees_are_charged_in_the_asset_each_side_receives(engine):
    fund(engine, 1, "BTC", "1")
    fund(engine, 2, "USDT", "1000")
    maker = limit(engine, 1, ASK, "1", "300", taker="0.002", maker="0.001")
    taker = limit(engine, 2, BID, "1", "300", taker="0.002", maker="0.001")
    assert taker.info()["deal_fee"] == "0.002" and taker.info()["left"] == "0e-8"
    assert maker.info()["deal_fee"] == "0.3"
    assert bal(engine, 2, "BTC") == ("0.998", "0")  # bid pays its taker fee in stock
    assert bal(engine, 1, "USDT") == ("299.7", "0")  # ask pays its maker fee in money


def test_a_fee_finer_than_prec_save_is_cut_and_debited_exactly_as_reported(engine):
    """Issue 14 changed this from viabtc's behaviour (the order kept the exact 14-place fee,
    0.00170566664961, while the balance was debited 0.00170566665: 3.9e-14 left the books)."""
    fund(engine, 1, "BTC", "1")
    fund(engine, 2, "USDT", "1000")
    limit(engine, 2, BID, "1", "3.01")
    taker = limit(engine, 1, ASK, "0.33333333", "3.01", taker="0.0017")
    assert fmt(taker.deal_money) == "1.0033333233"
    assert fmt(taker.deal_fee) == "0.001705666649"  # 0.00170566664961 cut to 12 places
    # 1.0033333233 - 0.001705666649 = 1.001627656651: exact, nothing truncated
    assert bal(engine, 1, "USDT") == ("1.001627656651", "0")


def test_market_buy_spends_money_and_leaves_dust(engine):
    fund(engine, 1, "BTC", "5")
    fund(engine, 2, "USDT", "100")
    limit(engine, 1, ASK, "5", "3")
    order = engine.put_market(T, 2, "BTCUSDT", BID, D("10.00000000"), D("0.002"), "")
    info = order.info()
    assert info["type"] == 2 and info["price"] == "0" and info["maker_fee"] == "0"
    assert info["deal_stock"] == "3.33333333"  # 10/3 truncated to stock_prec
    assert fmt(order.deal_money) == "9.99999999"
    assert info["left"] == "1.00e-8"  # money dust, unspent
    assert info["deal_fee"] == "0.00666666666"
    assert bal(engine, 2, "BTC") == ("3.32666666334", "0")
    assert bal(engine, 2, "USDT") == ("90.00000001", "0")
    assert 2 not in engine.markets["BTCUSDT"].users  # market orders never rest


def test_market_buy_walks_levels_and_steps_quantity_down(engine):
    fund(engine, 1, "BTC", "3")
    fund(engine, 2, "USDT", "100")
    limit(engine, 1, ASK, "1", "3")
    limit(engine, 1, ASK, "1", "7.77")
    order = engine.put_market(T, 2, "BTCUSDT", BID, D("10.00000000"), D("0"), "")
    # 1 BTC at 3, then 7/7.77 = 0.90090090 BTC (0.90090090*7.77 = 6.9999999930 <= 7)
    assert fmt(order.deal_stock) == "1.9009009"
    assert fmt(order.left) == "7.0e-9"


def test_market_sell_walks_the_bids(engine):
    fund(engine, 1, "USDT", "1000")
    fund(engine, 2, "BTC", "1")
    limit(engine, 1, BID, "0.5", "200")
    limit(engine, 1, BID, "0.5", "100")
    order = engine.put_market(T, 2, "BTCUSDT", ASK, D("0.8"), D("0.001"), "")
    assert fmt(order.deal_money) == "130" and fmt(order.deal_fee) == "0.13"
    assert bal(engine, 2, "USDT") == ("129.87", "0")
    assert bal(engine, 1, "USDT") == ("850", "20")  # paid from freeze


def test_market_order_errors_in_viabtc_order(engine):
    fund(engine, 2, "USDT", "100")
    with pytest.raises(EngineError) as err:
        engine.put_market(T, 2, "BTCUSDT", BID, D("1000"), D("0"), "")
    assert err.value.code == 10
    with pytest.raises(EngineError) as err:
        engine.put_market(T, 2, "BTCUSDT", BID, D("10"), D("0"), "")
    assert (err.value.code, err.value.message) == (12, "no enough trader")
    fund(engine, 1, "BTC", "1")
    limit(engine, 1, ASK, "1", "5000")
    with pytest.raises(EngineError) as err:  # < best ask * min_amount = 5
        engine.put_market(T, 2, "BTCUSDT", BID, D("4.99"), D("0"), "")
    assert err.value.code == 11


def test_limit_checks_balance_before_min_amount(engine):
    with pytest.raises(EngineError) as err:
        limit(engine, 1, ASK, "0.0001", "10")
    assert err.value.code == 10
    fund(engine, 1, "BTC", "1")
    with pytest.raises(EngineError) as err:
        limit(engine, 1, ASK, "0.0001", "10")
    assert (err.value.code, err.value.message) == (11, "amount too small")
    assert engine.order_id == 0


def test_cancel_unfreezes_and_checks_owner(engine):
    fund(engine, 1, "USDT", "1000")
    fund(engine, 2, "BTC", "1")
    bid = limit(engine, 1, BID, "2", "100")
    limit(engine, 2, ASK, "0.5", "100")
    assert bal(engine, 1, "USDT") == ("800", "150")
    with pytest.raises(EngineError) as err:
        engine.cancel(T, 2, "BTCUSDT", bid.id)
    assert (err.value.code, err.value.message) == (11, "user not match")
    with pytest.raises(EngineError) as err:
        engine.cancel(T, 1, "BTCUSDT", 999)
    assert (err.value.code, err.value.message) == (10, "order not found")
    cancelled = engine.cancel(T, 1, "BTCUSDT", bid.id)
    assert fmt(cancelled.left) == "1.5"
    assert bal(engine, 1, "USDT") == ("950", "0")
    assert engine.markets["BTCUSDT"].bids.count == 0


def test_balance_update_idempotency_and_overdraft(engine):
    engine.update_balance(T, 1, "BTC", "deposit", 7, D("1.5"), {})
    with pytest.raises(EngineError) as err:
        engine.update_balance(T, 1, "BTC", "deposit", 7, D("1.5"), {})
    assert (err.value.code, err.value.message) == (10, "repeat update")
    with pytest.raises(EngineError) as err:
        engine.update_balance(T, 1, "BTC", "withdraw", 8, D("-2"), {})
    assert (err.value.code, err.value.message) == (11, "balance not enough")
    engine.update_balance(T, 1, "BTC", "withdraw", 8, D("-1.5"), {})
    assert (1, "BTC") not in engine.available  # zero balances are deleted, as in viabtc


def test_events_use_viabtc_message_shapes(engine):
    events: list = []
    engine.sink = lambda topic, message: events.append((topic, message))
    fund(engine, 1, "BTC", "1")
    fund(engine, 2, "USDT", "1000")
    limit(engine, 1, ASK, "1", "300", maker="0.001")
    limit(engine, 2, BID, "0.4", "300", taker="0.002", t=T + 5)
    topics = [topic for topic, _ in events]
    assert topics.count("balances") == 2
    deal = next(m for topic, m in events if topic == "deals")
    # me_message.c prints message decimals with mpd_to_sci, not zero-stripped
    assert deal == [T + 5, "BTCUSDT", 1, 2, 1, 2, "300.00", "0.40000000", "0.1200000000000",
                    "0.00080000000", BID, 1, "BTC", "USDT"]
    orders = [m for topic, m in events if topic == "orders"]
    assert [o["event"] for o in orders] == [1, 2, 3]  # put, maker update, taker finish
    assert set(orders[0]) == {"event", "order", "stock", "money"}
