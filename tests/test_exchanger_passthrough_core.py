"""Passthrough buying on a real `teller core run`: every deposit buys once and is paid what it bought.

A market maker rests asks on the core over JSON-RPC; deposits arrive through the dummy
scanner of a real teller whose ``[passthrough] venue = "core"``; the teller credits each
deposit to its core account, places one market bid per deposit and pays ``deal_stock −
deal_fee`` (truncated to max_decimals) through the dummy sender.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.core_process import CoreProcess, MarketMaker
from tests.support.service import TellerHarness, assert_json, sky_address, start_teller
from tests.support.wait import wait_until

log = logging.getLogger(__name__)

TELLER_USER = 1
FEE = Decimal("0.001")


def passthrough_config(core_url: str, extra: str = "", *, send_enabled: bool = True) -> str:
    return f"""
[sky_exchanger]
buy_method = "passthrough"
send_enabled = {str(send_enabled).lower()}
[passthrough]
venue = "core"
markets = {{ BTC = "SKYBTC" }}
minimum_volume = {{ BTC = "0.0005" }}
settle_wait = "1s"
[passthrough.core]
url = "{core_url}"
user_id = {TELLER_USER}
taker_fee = "{FEE}"
[dummy]
sender_coins = "1000000"
sender_autoconfirm = true
{extra}"""


@pytest.fixture
def maker(core: CoreProcess) -> MarketMaker:
    maker = MarketMaker(core)
    maker.fund("100000")
    return maker


@pytest.fixture
def teller(tmp_path: Path, core: CoreProcess) -> Iterator[TellerHarness]:
    harness = start_teller(tmp_path, passthrough_config(core.url))
    try:
        yield harness
    finally:
        harness.close()


def tx(i: int) -> str:
    return f"{i:064x}"


def record_of(t: TellerHarness, txid: str) -> dict:
    [record] = [r for r in t.deposits() if r["deposit_id"] == f"{txid}:0"]
    return record


def wait_done(t: TellerHarness, count: int, timeout: float = 30) -> list[dict]:
    wait_until(lambda: len(t.deposits("done")) == count, timeout,
               message=f"{count} deposit(s) done")
    return t.deposits("done")


def test_deposits_buy_on_the_core_and_are_paid_what_they_bought(
        teller: TellerHarness, core: CoreProcess, maker: MarketMaker) -> None:
    t = teller
    log.info("a book of asks at three prices; five deposits of 0.01 BTC")
    maker.ask("300", "0.0001")
    maker.ask("300", "0.0002")
    maker.ask("1000", "0.0004")
    buyer = sky_address(1)
    address = t.bind(buyer)
    for i in range(5):
        t.deposit(address, 1_000_000, tx(i))
    done = wait_done(t, 5)

    orders = core.finished_orders(TELLER_USER, "SKYBTC")
    log.info("one order per deposit on the core, each with its deposit's client id")
    assert len(orders) == 5
    by_source = {o["source"]: o for o in orders}
    assert sorted(by_source) == sorted(f"teller-{r['seq']}-1" for r in done)
    payouts = {b["txid"]: b for b in t.broadcasts()}
    assert len(payouts) == 5
    for record in done:
        order = by_source[record["passthrough"]["order"]["customer_id"]]
        bought = Decimal(order["deal_stock"]) - Decimal(order["deal_fee"])
        assert Decimal(order["deal_fee"]) == Decimal(order["deal_stock"]) * FEE
        paid = int((bought.quantize(Decimal("0.001"), "ROUND_DOWN")) * 10**6)
        log.info("deposit seq %d: order %s bought %s SKY, paid %d droplets", record["seq"],
                 order["id"], bought, paid)
        assert record["sky_sent"] == paid
        assert record["error"] == ""
        pt = record["passthrough"]
        assert pt["exchange_name"] == "core"
        assert pt["order"]["order_id"] == str(order["id"])
        assert pt["order"]["final"] is True
        assert Decimal(pt["order"]["completed_amount"]) == bought
        assert pt["sky_bought"] == int(bought * 10**6)
        assert pt["deposit_value_spent"] == int(Decimal(order["deal_money"]) * 10**8)
        assert pt["deposit_value_spent"] + pt["leftover"] == 1_000_000
        assert Decimal(pt["fee"]) == Decimal(order["deal_fee"])
        [output] = payouts[record["txid"]]["outputs"]
        assert output == {"address": buyer, "coins": format(Decimal(paid).scaleb(-6), "f")}
    log.info("the teller's core account: credited 0.05 BTC, spent what the orders spent")
    spent = sum(Decimal(o["deal_money"]) for o in orders)
    assert core.balance(TELLER_USER, "BTC") == Decimal("0.05") - spent
    assert core.balance(TELLER_USER, "SKY") == sum(
        Decimal(o["deal_stock"]) - Decimal(o["deal_fee"]) for o in orders)
    accounting = assert_json(t.get(t.admin, "/api/accounting"))
    assert accounting["received"]["BTC"] == "0.05000000"
    venue = accounting["passthrough"]["core"]["BTC"]
    assert venue["orders"] == 5
    assert Decimal(venue["spent"]) == spent
    assert Decimal(venue["bought"]) == sum(Decimal(o["deal_stock"]) - Decimal(o["deal_fee"])
                                           for o in orders)


def test_thin_book_partial_fill_is_paid_as_bought_and_leftover_recorded(
        teller: TellerHarness, core: CoreProcess, maker: MarketMaker) -> None:
    t = teller
    maker.ask("50", "0.0001")  # 0.005 BTC of asks; the deposit brings 0.01
    t.deposit(t.bind(sky_address(2)), 1_000_000, tx(1))
    [record] = wait_done(t, 1)
    pt = record["passthrough"]
    log.info("bought the whole book (50 SKY less the fee), 0.005 BTC left over")
    assert Decimal(pt["order"]["completed_amount"]) == Decimal("49.95")
    assert pt["deposit_value_spent"] == 500_000
    assert pt["leftover"] == 500_000
    assert record["sky_sent"] == 49_950_000
    [order] = core.finished_orders(TELLER_USER, "SKYBTC")
    assert Decimal(order["amount"]) - Decimal(order["deal_money"]) == Decimal("0.005")
    assert core.ok("order.book", ["SKYBTC", 1, 0, 10])["total"] == 0
    venue = assert_json(t.get(t.admin, "/api/accounting"))["passthrough"]["core"]["BTC"]
    assert venue == {"orders": 1, "spent": "0.00500000", "leftover": "0.00500000",
                     "bought": "49.950000", "fees": "0.05"}


def test_empty_book_waits_visibly_then_buys_when_asks_arrive(
        teller: TellerHarness, core: CoreProcess, maker: MarketMaker) -> None:
    t = teller
    buyer = sky_address(3)
    t.deposit(t.bind(buyer), 1_000_000, tx(1))
    log.info("no asks: the deposit waits in waiting_passthrough, /api/health says why")
    t.wait_status(buyer, ["waiting_passthrough"])

    def health_says_no_asks() -> bool:
        health = assert_json(t.get(t.public, "/api/health"))
        return any("no asks" in w for w in health["warnings"])

    wait_until(health_says_no_asks, 10, message="/api/health to show the empty book")
    health = assert_json(t.get(t.public, "/api/health"))["exchange"]["passthrough"]
    assert health["venue"] == "core" and health["reachable"] is True
    assert health["waiting_passthrough"] == 1
    assert core.finished_orders(TELLER_USER, "SKYBTC") == []
    record = record_of(t, tx(1))
    assert record["error"] == "" and "no asks" in record["last_error"]
    assert record["passthrough"]["placing_at"] == 0  # no order exists: a reorg cancels it

    log.info("asks arrive: the same deposit buys and is paid")
    maker.ask("1000", "0.0001")
    [record] = wait_done(t, 1, timeout=30)
    assert record["sky_sent"] == 99_900_000
    assert len(core.finished_orders(TELLER_USER, "SKYBTC")) == 1


def test_below_minimum_volume_is_done_with_a_clear_error(
        teller: TellerHarness, core: CoreProcess, maker: MarketMaker) -> None:
    t = teller
    maker.ask("1000", "0.0001")
    t.deposit(t.bind(sky_address(4)), 40_000, tx(1))  # 0.0004 < minimum 0.0005
    [record] = wait_done(t, 1)
    assert record["error_kind"] == "below_minimum"
    assert "below the passthrough minimum volume of 0.0005 BTC" in record["error"]
    assert record["sky_sent"] == 0 and record["txid"] == ""
    assert core.finished_orders(TELLER_USER, "SKYBTC") == []
    config = assert_json(t.get(t.public, "/api/config"))
    assert config["buy_method"] == "passthrough"
    assert config["deposits"]["btc"]["passthrough_minimum_volume"] == "0.0005"


def test_the_minimum_is_a_runtime_setting(
        teller: TellerHarness, core: CoreProcess, maker: MarketMaker) -> None:
    """An operator raises the minimum through the admin API: /api/config shows it at once and
    the next deposit under it is not bought; reset gives the file's value back."""
    t = teller
    maker.ask("1000", "0.0001")
    changed = assert_json(t.post_json(t.admin, "/api/settings", {
        "key": "passthrough.minimum_volume.BTC", "value": "0.001"}))
    assert changed["settings"]["passthrough.minimum_volume.BTC"]["source"] == "runtime"
    config = assert_json(t.get(t.public, "/api/config"))
    assert config["deposits"]["btc"]["passthrough_minimum_volume"] == "0.001"
    t.deposit(t.bind(sky_address(5)), 80_000, tx(1))  # 0.0008: over the file's, under 0.001
    [record] = wait_done(t, 1)
    assert record["error_kind"] == "below_minimum"
    assert "minimum volume of 0.001 BTC" in record["error"]
    assert core.finished_orders(TELLER_USER, "SKYBTC") == []
    refused = t.post_json(t.admin, "/api/settings", {"key": "passthrough.minimum_volume.BTC",
                                                     "value": "-1"})
    assert refused.status_code == 400
    assert_json(t.post_json(t.admin, "/api/settings/reset",
                            {"key": "passthrough.minimum_volume.BTC"}))
    config = assert_json(t.get(t.public, "/api/config"))
    assert config["deposits"]["btc"]["passthrough_minimum_volume"] == "0.0005"


def test_core_down_waits_with_backoff_and_resumes(tmp_path: Path, core: CoreProcess,
                                                  maker: MarketMaker) -> None:
    maker.ask("1000", "0.0001")
    log.info("a teller pointed at a port where nothing listens: the venue is unreachable")
    t = start_teller(tmp_path, passthrough_config("http://127.0.0.1:9"))
    try:
        buyer = sky_address(5)
        t.deposit(t.bind(buyer), 1_000_000, tx(1))
        wait_until(lambda: not assert_json(t.get(t.public, "/api/health"))
                   ["exchange"]["passthrough"]["reachable"], 10,
                   message="/api/health to show the venue down")
        assert t.statuses(buyer) == ["waiting_passthrough"]
        log.info("the operator fixes the URL: the same deposit buys once")
        t.restart(passthrough_config(core.url))
        [record] = wait_done(t, 1, timeout=30)
        assert record["sky_sent"] == 99_900_000
        assert len(core.finished_orders(TELLER_USER, "SKYBTC")) == 1
    finally:
        t.close()
