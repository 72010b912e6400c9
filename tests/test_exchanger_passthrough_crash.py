"""SIGKILL the teller at each passthrough boundary: one order per deposit on the core, one payout.

The teller (`teller run`) and the core (`teller core run`) are real processes. The teller kills
itself at a named failpoint; the test checks from its data directory that it died where
intended (the marker file, the records' statuses), counts the orders on the core, restarts
the teller and waits until every deposit is done:

- ``after_passthrough_intent_persisted``: the intent is on disk, no order was placed. After
  the restart the order is looked up, not found, and placed once ``settle_wait`` has passed;
- ``after_passthrough_order_placed``: the core has the orders, the teller's records do not.
  After the restart each is found by its client id (the order's ``source``), never placed
  again;
- ``after_passthrough_order_recorded``: the orders are recorded; the restart only pays.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.storage import Storage
from tests.support.core_process import CoreProcess, MarketMaker
from tests.support.process import TellerProcess
from tests.support.wait import wait_until
from tests.test_exchanger_crash import BUYER, btc_addresses

log = logging.getLogger(__name__)

pytestmark = pytest.mark.slow
TELLER_USER = 1


@pytest.fixture
def teller_proc(tmp_path: Path, core: CoreProcess) -> Iterator[TellerProcess]:
    proc = TellerProcess(tmp_path / "teller", btc_addresses(10), config={
        "sky_exchanger": {"buy_method": "passthrough"},
        "passthrough": {"venue": "core", "settle_wait": "1s"},
        "passthrough.markets": {"BTC": "SKYBTC"},
        "passthrough.core": {"url": core.url, "user_id": TELLER_USER, "taker_fee": "0.001"},
        "dummy": {"sender_autoconfirm": True},
    })
    yield proc
    proc.kill()


def records(proc: TellerProcess) -> list[dict[str, Any]]:
    """Deposit records straight from LMDB (only while the teller is down)."""
    with Storage(proc.dir) as storage, storage.read() as txn:
        return [record for _, record in storage.items(txn, "deposits")]


def tx(i: int) -> str:
    return f"{i:064x}"


def finish_and_check(proc: TellerProcess, core: CoreProcess, count: int) -> None:
    """Restart, wait for every deposit to be done; one order and one payout each."""
    proc.start()
    wait_until(lambda: len(proc.deposits("done")) == count, timeout=30,
               message=f"{count} deposits done")
    done = proc.deposits("done")
    orders = core.finished_orders(TELLER_USER, "SKYBTC")
    log.info("%d orders on the core for %d deposits", len(orders), count)
    assert len(orders) == count
    assert sorted(o["source"] for o in orders) == \
        sorted(r["passthrough"]["order"]["customer_id"] for r in done)
    broadcasts = proc.broadcasts()
    assert len(broadcasts) == count
    assert sorted(b["txid"] for b in broadcasts) == sorted(r["txid"] for r in done)
    for record in done:
        assert record["error"] == ""
        assert record["sky_sent"] == 99_900_000  # 0.01 BTC at 0.0001 = 100 SKY, less 0.1%
        order = next(o for o in orders
                     if o["source"] == record["passthrough"]["order"]["customer_id"])
        assert record["passthrough"]["order"]["order_id"] == str(order["id"])


def test_crash_after_the_intent_is_persisted_places_once_after_the_restart(
        teller_proc: TellerProcess, core: CoreProcess) -> None:
    maker = MarketMaker(core)
    maker.fund("100000")
    maker.ask("10000", "0.0001")
    teller_proc.start(failpoints="after_passthrough_intent_persisted")
    teller_proc.deposit(teller_proc.bind(BUYER), 1_000_000, tx(1))
    assert teller_proc.wait_exit() == -9, teller_proc.log_tail()
    assert (teller_proc.dir / "failpoint-after_passthrough_intent_persisted").exists()
    [record] = records(teller_proc)
    assert record["status"] == "waiting_passthrough"
    assert record["passthrough"]["placing_at"] > 0
    assert core.finished_orders(TELLER_USER, "SKYBTC") == []
    finish_and_check(teller_proc, core, 1)


@pytest.mark.parametrize("failpoint, status_at_crash", [
    ("after_passthrough_order_placed", "waiting_passthrough"),  # the core has it, we do not
    ("after_passthrough_order_recorded", "waiting_send"),
])
def test_crash_around_placing_orders_buys_and_pays_each_deposit_once(
        teller_proc: TellerProcess, core: CoreProcess, failpoint: str,
        status_at_crash: str) -> None:
    count = 3
    log.info("an empty book: %d deposits wait, then asks arrive and one pass places them all",
             count)
    teller_proc.start(failpoints=failpoint)
    address = teller_proc.bind(BUYER)
    for i in range(count):
        teller_proc.deposit(address, 1_000_000, tx(i))
    wait_until(lambda: len(teller_proc.deposits("waiting_passthrough")) == count, timeout=10,
               message="every deposit waiting_passthrough")
    maker = MarketMaker(core)
    maker.fund("100000")
    maker.ask("10000", "0.0001")
    assert teller_proc.wait_exit(timeout=30) == -9, teller_proc.log_tail()
    assert (teller_proc.dir / f"failpoint-{failpoint}").exists(), "the crash path did not run"

    log.info("dead at %s: the orders are on the core; the records say %s", failpoint,
             status_at_crash)
    # The pass that died placed the deposits that were due (their waits may end in different
    # seconds): the others are still waiting_passthrough with no order.
    on_disk = {r["passthrough"]["order"]["customer_id"]: r for r in records(teller_proc)}
    orders = core.finished_orders(TELLER_USER, "SKYBTC")
    assert 1 <= len(orders) <= count
    placed = {o["source"]: o for o in orders}
    for cid, record in on_disk.items():
        if cid not in placed:
            assert record["status"] == "waiting_passthrough"
            assert record["passthrough"]["order"]["order_id"] == ""
        elif status_at_crash == "waiting_passthrough":
            assert record["status"] == "waiting_passthrough"
            assert record["passthrough"]["order"]["order_id"] == ""  # never recorded
            assert record["passthrough"]["placing_at"] > 0
        else:
            assert record["status"] == "waiting_send"
            assert record["passthrough"]["order"]["order_id"] == str(placed[cid]["id"])
    finish_and_check(teller_proc, core, count)


def test_a_place_that_times_out_is_found_not_placed_twice(tmp_path: Path,
                                                          core: CoreProcess) -> None:
    """The core is frozen (SIGSTOP) while the teller places: the request times out on the
    teller's side but stays in the core's socket buffer, and lands when the core resumes. The
    teller must find that order, not place a second one."""
    maker = MarketMaker(core)
    maker.fund("100000")
    maker.ask("10000", "0.0001")
    proc = TellerProcess(tmp_path / "teller", btc_addresses(10), config={
        "sky_exchanger": {"buy_method": "passthrough"},
        "passthrough": {"venue": "core", "settle_wait": "30s"},
        "passthrough.markets": {"BTC": "SKYBTC"},
        "passthrough.core": {"url": core.url, "user_id": TELLER_USER, "timeout": "1s"},
        "dummy": {"sender_autoconfirm": True},
    })
    try:
        proc.start()
        address = proc.bind(BUYER)
        log.info("a first deposit buys normally (the venue is prepared)")
        proc.deposit(address, 1_000_000, tx(0))
        wait_until(lambda: len(proc.deposits("done")) == 1, timeout=15, message="first done")
        assert core.proc is not None
        core.proc.send_signal(signal.SIGSTOP)
        try:
            proc.deposit(address, 1_000_000, tx(1))

            def timed_out() -> bool:
                return any("placing the order failed" in r["last_error"]
                           for r in proc.deposits("waiting_passthrough"))

            wait_until(timed_out, timeout=15, message="the place to time out")
            [record] = proc.deposits("waiting_passthrough")
            assert record["passthrough"]["placing_at"] > 0
        finally:
            core.proc.send_signal(signal.SIGCONT)
        log.info("the core resumes: the timed-out request lands; the teller finds it")
        wait_until(lambda: len(proc.deposits("done")) == 2, timeout=40, message="both done")
        orders = core.finished_orders(TELLER_USER, "SKYBTC")
        assert len(orders) == 2, orders
        assert sorted(r["passthrough"]["order"]["order_id"] for r in proc.deposits("done")) == \
            sorted(str(o["id"]) for o in orders)
        assert len(proc.broadcasts()) == 2
        assert "found on the core by its client id" in proc.log_path.read_text()
    finally:
        proc.kill()
