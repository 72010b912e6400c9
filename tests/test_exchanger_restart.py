"""A restart in every non-final status: each deposit finishes exactly once afterwards.

The teller is stopped cleanly, the data directory is (where needed) put into the state a crash
would leave, and a new ``Service`` is started on it. Every test ends by checking the dummy
chain: exactly one payout per deposit, for the amount at the rate snapshotted at first sight.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from addrs.pool import AddressPool
from common.storage import Storage
from ledger.status import Status
from ledger.store import Deposit, DepositStore
from sender.base import PayoutOutput
from sender.dummy import DummySender
from tests.support.service import SKY_ADDR, TellerHarness, start_teller
from tests.support.wait import wait_until

log = logging.getLogger(__name__)

TX = "ab" * 32
KEY = f"BTC/{TX}:0"


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[TellerHarness]:
    t = start_teller(tmp_path)
    try:
        yield t
    finally:
        t.close()


def offline(t: TellerHarness) -> tuple[Storage, DepositStore, DummySender]:
    """The stopped teller's data directory, opened the way the Service opens it."""
    storage = Storage(t.data_dir)
    store = DepositStore(storage, AddressPool(storage))
    sender = DummySender(storage, coins_droplets=100_000_000, hours=100)
    return storage, store, sender


def finish_exactly_once(t: TellerHarness, sky_sent: int = 500_000) -> None:
    """The deposit reaches done with one payout of ``sky_sent`` droplets on the dummy chain."""
    t.wait_status(SKY_ADDR, ["waiting_confirm"])
    [payout] = t.wait_broadcasts(1)
    t.confirm(payout["txid"])
    t.wait_status(SKY_ADDR, ["done"])
    [record] = t.deposits()
    assert (record["sky_sent"], record["txid"]) == (sky_sent, payout["txid"])
    log.info("and a further restart changes nothing")
    t.restart()
    assert t.statuses(SKY_ADDR) == ["done"]
    assert len(t.broadcasts()) == 1


def test_restart_in_waiting_decide(harness: TellerHarness) -> None:
    t = harness
    addr = t.bind(SKY_ADDR)
    t.stop()
    log.info("record a deposit while no exchanger runs: it stays waiting_decide")
    storage, store, _ = offline(t)
    try:
        record, created = store.record_deposit(
            Deposit("BTC", addr, 100_000, height=5, tx=TX, n=0), "500")
        assert created and record["status"] == "waiting_decide"
    finally:
        storage.close()
    t.start()
    finish_exactly_once(t)


def test_restart_in_waiting_send_keeps_the_snapshotted_rate(harness: TellerHarness) -> None:
    t = harness
    t.restart('[sky_exchanger]\nsend_enabled = false\n')
    addr = t.bind(SKY_ADDR)
    t.deposit(addr, 100_000, TX)
    t.wait_status(SKY_ADDR, ["waiting_send"])
    assert t.broadcasts() == []
    log.info("restart with sending on and the rate doubled: paid once, at the old rate")
    t.restart('[sky_exchanger]\nsend_enabled = true\nsky_btc_exchange_rate = "1000"\n')
    finish_exactly_once(t, sky_sent=500_000)
    assert t.deposits()[0]["conversion_rate"] == "500"


def test_restart_with_a_persisted_unbroadcast_payout(harness: TellerHarness) -> None:
    """The crash window: payout signed and stored, never broadcast. The same bytes go out."""
    t = harness
    addr = t.bind(SKY_ADDR)
    t.stop()
    storage, store, sender = offline(t)
    try:
        store.record_deposit(Deposit("BTC", addr, 100_000, height=5, tx=TX, n=0), "500")
        store.transition(KEY, Status.WAITING_DECIDE, Status.WAITING_SEND)
        signed = sender.build([PayoutOutput(SKY_ADDR, 500_000, KEY)], "payout-1")
        store.create_payouts([("payout-1", signed)], sender.commit_built)
        assert sender.broadcasts() == []
        assert store.get(KEY)["status"] == "waiting_send"
    finally:
        storage.close()
    t.start()
    log.info("the persisted transaction is broadcast, not a new one")
    [payout] = t.wait_broadcasts(1)
    assert payout["txid"] == signed.txid
    finish_exactly_once(t)


def test_restart_in_waiting_confirm(harness: TellerHarness) -> None:
    t = harness
    addr = t.bind(SKY_ADDR)
    t.deposit(addr, 100_000, TX)
    t.wait_status(SKY_ADDR, ["waiting_confirm"])
    [before] = t.broadcasts()
    t.restart()
    log.info("after restart the open payout is still watched, not rebuilt")
    assert t.broadcasts() == [before]
    finish_exactly_once(t)


def test_restart_after_confirmation_while_stopped(harness: TellerHarness) -> None:
    """The chain confirms while teller is down: on start the deposit just finishes."""
    t = harness
    t.deposit(t.bind(SKY_ADDR), 100_000, TX)
    [payout] = t.wait_broadcasts(1)
    t.stop()
    storage, _, sender = offline(t)
    try:
        assert sender.confirm(txid=payout["txid"])
    finally:
        storage.close()
    t.start()
    t.wait_status(SKY_ADDR, ["done"])
    assert len(t.broadcasts()) == 1


def test_restart_in_needs_review_holds_until_the_operator_decides(
        harness: TellerHarness) -> None:
    t = harness
    t.deposit(t.bind(SKY_ADDR), 100_000, TX)
    [payout] = t.wait_broadcasts(1)
    assert t.service is not None
    t.service.store.orphan_deposits("BTC", ["dummy-1"], "reorged while in flight")
    t.wait_status(SKY_ADDR, ["needs_review"])
    log.info("a held deposit stays held across a restart; nothing is sent")
    t.restart()
    t.confirm(payout["txid"])
    t.service.exchanger.wake_confirmations()
    wait_until(lambda: not t.service.store.open_payouts(), message="payout closed")
    assert t.statuses(SKY_ADDR) == ["needs_review"]
    log.info("the operator confirms it was paid: done, still one payout")
    resp = t.post_json(t.admin, "/api/deposits/review", {
        "coin_type": "BTC", "deposit_id": f"{TX}:0", "action": "mark_done"})
    assert resp.status_code == 200, resp.text
    t.restart()
    assert t.statuses(SKY_ADDR) == ["done"]
    assert len(t.broadcasts()) == 1
