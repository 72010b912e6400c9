"""The passthrough stages step by step: real LMDB, a real `teller core run`, a hand-driven clock.

``Exchanger.step()`` is called by hand, so each persisted wait is observed exactly: an empty
SKYBTC book holds BTC deposits (backoff persisted, no order on the core) while an ETH deposit
buys on SKYETH and is paid — one market's empty book never blocks another's. Run twice: with
the core venue's batched placing (one JSON-RPC batch per pass) and one ``place`` per order
(the path every venue without ``place_many`` takes).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from addrs.pool import AddressPool
from common.storage import Storage
from common.units import COIN_DECIMALS
from exchanger.passthrough import PassthroughBuyer, PassthroughSettings
from exchanger.processor import Exchanger, ExchangerSettings
from exchanger.venues.core import CoreVenue
from ledger.store import Deposit, DepositStore
from matchengine.client import HttpClient
from sender.dummy import DummySender
from tests.support.core_process import CoreProcess, MarketMaker
from tests.support.service import BTC_ADDRESSES, ETH_ADDRESSES, SKY_ADDR

log = logging.getLogger(__name__)

TELLER_USER = 7


class OneByOne(CoreVenue):
    """The core venue without its batch: every order through ``place``."""

    place_many = None  # type: ignore[assignment]


@pytest.mark.parametrize("venue_class", [CoreVenue, OneByOne])
def test_an_empty_book_waits_without_blocking_another_market(
        tmp_path: Path, core: CoreProcess, venue_class: type[CoreVenue]) -> None:
    user = TELLER_USER
    storage = Storage(tmp_path / "data")
    try:
        pool = AddressPool(storage)
        pool.add("BTC", BTC_ADDRESSES)
        pool.add("ETH", ETH_ADDRESSES)
        now = [1_000_000.0]
        store = DepositStore(storage, pool, clock=lambda: now[0])
        sender = DummySender(storage, coins_droplets=10**12, hours=100, autoconfirm=True)
        venue = venue_class(HttpClient(core.url), user_id=user, taker_fee=Decimal("0.001"))
        buyer = PassthroughBuyer(
            store, venue, PassthroughSettings(markets={"BTC": "SKYBTC", "ETH": "SKYETH"},
                                              retry_max_wait=60.0),
            coin_decimals=COIN_DECIMALS.__getitem__, token_decimals=6, clock=lambda: now[0])
        exchanger = Exchanger(store, sender, ExchangerSettings(check_wait=3600.0),
                              clock=lambda: now[0], buyer=buyer)
        btc = store.bind("BTC", SKY_ADDR, buy_method="passthrough")["address"]
        eth = store.bind("ETH", SKY_ADDR, buy_method="passthrough")["address"]
        market_maker = MarketMaker(core, user=200 + user, market="SKYETH")
        market_maker.fund("1000")
        market_maker.ask("1000", "0.0001")
        for i in range(2):
            store.record_deposit(Deposit("BTC", btc, 1_000_000, 1, f"{i:064x}", 0, "b1"), "1")
        store.record_deposit(Deposit("ETH", eth, 10**16, 1, "e" * 64, 0, "b1"), "1")

        log.info("one pass: the ETH deposit buys; the BTC ones find no asks and wait")
        exchanger.step()
        eth_record = store.get(f"ETH/{'e' * 64}:0")
        assert eth_record["status"] in ("waiting_confirm", "done")
        assert eth_record["sky_sent"] == 99_900_000
        btc_records = [store.get(f"BTC/{i:064x}:0") for i in range(2)]
        for record in btc_records:
            assert record["status"] == "waiting_passthrough"
            assert "no asks" in record["last_error"]
            assert record["attempts"] == 1 and record["next_attempt_at"] > now[0]
            assert record["passthrough"]["placing_at"] == 0
        assert core.finished_orders(user, "SKYBTC") == []

        log.info("asks arrive, but the wait is not over: nothing is asked of the core")
        btc_maker = MarketMaker(core, user=300 + user)
        btc_maker.fund("1000")
        btc_maker.ask("1000", "0.0001")
        exchanger.step()
        assert core.finished_orders(user, "SKYBTC") == []
        log.info("the wait is over: both BTC deposits buy, once each, and are paid")
        now[0] += 60
        exchanger.step()
        exchanger.step()
        for i in range(2):
            record = store.get(f"BTC/{i:064x}:0")
            assert record["status"] in ("waiting_confirm", "done"), record
            assert record["sky_sent"] == 99_900_000
            assert record["attempts"] == 0 and record["last_error"] == ""
        orders = core.finished_orders(user, "SKYBTC")
        assert sorted(o["source"] for o in orders) == ["teller-1-1", "teller-2-1"]
        assert buyer.health()["reachable"] is True
    finally:
        storage.close()


def test_a_passthrough_deposit_on_a_teller_without_a_venue_waits(tmp_path: Path) -> None:
    """Bound for passthrough, then the operator removed [passthrough]: the deposit is never paid
    at a fixed rate (the buyer was promised the market); direct deposits still go."""
    storage = Storage(tmp_path / "data")
    try:
        pool = AddressPool(storage)
        pool.add("BTC", BTC_ADDRESSES)
        now = [1_000_000.0]
        store = DepositStore(storage, pool, clock=lambda: now[0])
        sender = DummySender(storage, coins_droplets=10**12, hours=100, autoconfirm=True)
        exchanger = Exchanger(store, sender, ExchangerSettings(check_wait=3600.0),
                              clock=lambda: now[0])
        held = store.bind("BTC", SKY_ADDR, buy_method="passthrough")["address"]
        direct = store.bind("BTC", SKY_ADDR)["address"]
        store.record_deposit(Deposit("BTC", held, 100_000, 1, "a" * 64, 0, "b1"), "500")
        store.record_deposit(Deposit("BTC", direct, 100_000, 1, "b" * 64, 0, "b1"), "500")
        exchanger.step()
        record = store.get(f"BTC/{'a' * 64}:0")
        assert record["status"] == "waiting_decide" and record["sky_sent"] == 0
        assert "no [passthrough] venue is configured" in record["last_error"]
        assert store.get(f"BTC/{'b' * 64}:0")["sky_sent"] == 500_000
    finally:
        storage.close()
