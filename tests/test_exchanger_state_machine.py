"""The deposit state machine on a real LMDB with the dummy sender, no HTTP, no threads.

Each test drives ``Exchanger.step()`` by hand with a controllable clock, so every transition
is observed exactly: replays pay once, two outputs of a tx are two deposits, sends are
pipelined, a sold-out deposit does not block smaller ones, and every status change is a
compare-and-set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from addrs.pool import AddressPool
from common.storage import Storage
from exchanger.processor import Exchanger, ExchangerSettings
from ledger.status import Status, TransitionNotAllowed
from ledger.store import Conflict, Deposit, DepositStore, NoBinding
from sender.base import InsufficientFunds, NodeUnavailable, PayoutOutput
from sender.dummy import DummySender
from tests.support.service import BTC_ADDRESSES, SKY_ADDR, sky_address

log = logging.getLogger(__name__)

TX = "ab" * 32
SKY = 1_000_000  # droplets


@dataclass
class Machine:
    storage: Storage
    pool: AddressPool
    store: DepositStore
    sender: DummySender
    exchanger: Exchanger
    now: list[float]

    def bind(self, skyaddr: str = SKY_ADDR) -> str:
        return self.store.bind("BTC", skyaddr)["address"]

    def record(self, address: str, value: int, tx: str = TX, n: int = 0,
               rate: str = "500") -> tuple[dict, bool]:
        return self.store.record_deposit(
            Deposit("BTC", address, value, height=1, tx=tx, n=n, block_hash="block-1"), rate)

    def status(self, tx: str = TX, n: int = 0) -> str:
        return self.store.get(f"BTC/{tx}:{n}")["status"]

    def step(self) -> bool:
        return self.exchanger.step()

    def confirm_all(self) -> None:
        for tx in self.sender.broadcasts():
            self.sender.confirm(txid=tx["txid"])
        self.exchanger.wake_confirmations()
        self.step()


def make_machine(path: Path, *, coins: int = 100 * SKY, send_enabled: bool = True,
                 max_outputs: int = 1, max_decimals: int = 3,
                 autoconfirm: bool = False) -> Machine:
    storage = Storage(path)
    pool = AddressPool(storage)
    pool.add("BTC", BTC_ADDRESSES)
    now = [1_000_000.0]
    store = DepositStore(storage, pool, clock=lambda: now[0])
    sender = DummySender(storage, coins_droplets=coins, hours=100, max_outputs=max_outputs,
                         autoconfirm=autoconfirm)
    settings = ExchangerSettings(max_decimals=max_decimals, send_enabled=send_enabled,
                                 check_wait=3600.0, retry_max_wait=60.0,
                                 confirm_wake_window=0.0)  # every step sees every wake
    exchanger = Exchanger(store, sender, settings, clock=lambda: now[0])
    return Machine(storage, pool, store, sender, exchanger, now)


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    m = make_machine(tmp_path / "db")
    try:
        yield m
    finally:
        m.storage.close()


def test_a_deposit_goes_through_every_status(machine: Machine) -> None:
    m = machine
    addr = m.bind()
    record, created = m.record(addr, 100_000)
    assert created and record["status"] == "waiting_decide" and record["seq"] == 1
    assert record["conversion_rate"] == "500" and record["deposit_id"] == f"{TX}:0"
    log.info("one pass: decided, paid, broadcast")
    assert m.step()
    assert m.status() == "waiting_confirm"
    [tx] = m.sender.broadcasts()
    assert tx["outputs"] == [{"address": SKY_ADDR, "coins": "0.500000"}]
    record = m.store.get(f"BTC/{TX}:0")
    assert (record["txid"], record["sky_sent"]) == (tx["txid"], 500_000)
    log.info("not confirmed yet: nothing moves")
    m.exchanger.wake_confirmations()
    assert not m.step()
    m.confirm_all()
    assert m.status() == "done"
    assert m.store.open_payouts() == []


def test_replayed_deposit_is_recorded_once_and_paid_once(machine: Machine) -> None:
    m = machine
    addr = m.bind()
    first, created = m.record(addr, 100_000)
    again, created_again = m.record(addr, 100_000, rate="1000")
    assert created and not created_again and again == first
    m.step()
    m.step()
    log.info("replayed while in flight and after done: never a second payout")
    assert not m.record(addr, 100_000)[1]
    m.step()
    m.confirm_all()
    assert not m.record(addr, 100_000)[1]
    m.step()
    assert m.status() == "done"
    assert len(m.sender.broadcasts()) == 1
    assert len(m.store.all_deposits()) == 1


def test_rate_is_snapshotted_at_first_sight(machine: Machine) -> None:
    m = machine
    addr = m.bind()
    m.record(addr, 100_000_000, rate="2/3")
    log.info("the config rate changes; the scanner sees the deposit again")
    record, _ = m.record(addr, 100_000_000, rate="1000")
    assert record["conversion_rate"] == "2/3"
    m.step()
    assert m.store.get(f"BTC/{TX}:0")["sky_sent"] == 666_000


def test_amount_is_truncated_to_max_decimals_in_droplets(machine: Machine) -> None:
    m = machine
    m.record(m.bind(), 12_345_678, rate="512")
    m.step()
    assert m.store.get(f"BTC/{TX}:0")["sky_sent"] == 63_209_000
    assert m.sender.broadcasts()[0]["outputs"][0]["coins"] == "63.209000"


def test_zero_amount_is_done_with_an_error_and_nothing_sent(machine: Machine) -> None:
    m = machine
    m.record(m.bind(), 199)  # 0.00000199 BTC * 500 = 0.000995 SKY -> 0 at 3 decimals
    m.step()
    record = m.store.get(f"BTC/{TX}:0")
    assert (record["status"], record["error"], record["error_kind"]) == \
        ("done", "Skycoin send amount is 0", "zero_amount")
    assert (record["txid"], record["sky_sent"]) == ("", 0)
    assert m.sender.broadcasts() == []


def test_two_outputs_of_one_tx_are_two_deposits(machine: Machine) -> None:
    m = machine
    a, b = m.bind(SKY_ADDR), m.bind(sky_address(1))
    log.info("one transaction pays two watched addresses at vout 0 and 3")
    assert m.record(a, 100_000, n=0)[1]
    assert m.record(b, 200_000, n=3)[1]
    assert {r["deposit_id"] for r in m.store.all_deposits()} == {f"{TX}:0", f"{TX}:3"}
    m.step()
    paid = sorted((o["address"], o["coins"]) for tx in m.sender.broadcasts()
                  for o in tx["outputs"])
    assert paid == sorted([(SKY_ADDR, "0.500000"), (sky_address(1), "1.000000")])


def test_sends_are_pipelined(machine: Machine) -> None:
    m = machine
    for i in range(3):
        m.record(m.bind(sky_address(i)), 100_000, tx=f"{i:064x}")
    log.info("one pass pays all three without waiting for any confirmation")
    m.step()
    assert [r["status"] for r in m.store.all_deposits()] == ["waiting_confirm"] * 3
    assert len(m.store.open_payouts()) == 3
    assert len({tx["txid"] for tx in m.sender.broadcasts()}) == 3
    m.confirm_all()
    assert [r["status"] for r in m.store.all_deposits()] == ["done"] * 3


def test_batched_payout_with_max_outputs(tmp_path: Path) -> None:
    m = make_machine(tmp_path / "db", max_outputs=3)
    try:
        for i in range(4):
            m.record(m.bind(sky_address(i)), 100_000, tx=f"{i:064x}")
        m.step()
        assert [len(tx["outputs"]) for tx in m.sender.broadcasts()] == [3, 1]
        assert len({r["txid"] for r in m.store.all_deposits()}) == 2
        m.confirm_all()
        assert {r["status"] for r in m.store.all_deposits()} == {"done"}
    finally:
        m.storage.close()


def test_sold_out_does_not_block_smaller_deposits(tmp_path: Path) -> None:
    m = make_machine(tmp_path / "db", coins=10 * SKY)
    try:
        big = m.bind(sky_address(1))
        log.info("first in line: 0.1 BTC buys 50 SKY; the wallet holds 10")
        m.record(big, 10_000_000, tx="01" * 32)
        for i in range(2, 5):
            m.record(m.bind(sky_address(i)), 100_000, tx=f"{i:064x}")
        m.step()
        log.info("the three 0.5 SKY deposits behind it are paid, in order")
        assert [tx["outputs"][0]["address"] for tx in m.sender.broadcasts()] == \
            [sky_address(2), sky_address(3), sky_address(4)]
        held = m.store.get(f"BTC/{'01' * 32}:0")
        assert held["status"] == "waiting_send" and held["payout_id"] == ""
        assert held["attempts"] == 1 and held["last_error"].startswith("sold out")
        assert held["next_attempt_at"] > m.now[0]
        assert "sold out" in m.exchanger.sender_error
        log.info("retried with backoff, never paid while unaffordable")
        m.now[0] += 61
        m.step()
        assert m.store.get(f"BTC/{'01' * 32}:0")["attempts"] == 2
        assert len(m.sender.broadcasts()) == 3
    finally:
        m.storage.close()


def test_send_disabled_keeps_deposits_waiting(tmp_path: Path) -> None:
    m = make_machine(tmp_path / "db", send_enabled=False)
    try:
        m.record(m.bind(), 100_000)
        m.step()
        m.step()
        assert m.status() == "waiting_send"
        assert m.sender.broadcasts() == []
    finally:
        m.storage.close()


def test_every_transition_is_compare_and_set(machine: Machine) -> None:
    m = machine
    m.record(m.bind(), 100_000)
    key = f"BTC/{TX}:0"
    before = m.store.get(key)
    log.info("wrong expected status: Conflict, nothing written")
    with pytest.raises(Conflict, match="is waiting_decide, expected waiting_send"):
        m.store.transition(key, Status.WAITING_SEND, Status.WAITING_CONFIRM)
    log.info("right expected status, forbidden move: TransitionNotAllowed, nothing written")
    with pytest.raises(TransitionNotAllowed,
                       match="transition not allowed: waiting_decide -> waiting_confirm"):
        m.store.transition(key, Status.WAITING_DECIDE, Status.WAITING_CONFIRM)
    with pytest.raises(TransitionNotAllowed):
        m.store.transition(key, Status.WAITING_DECIDE, Status.DONE)
    assert m.store.get(key) == before
    with pytest.raises(Conflict, match="does not exist"):
        m.store.transition("BTC/nope:0", Status.WAITING_DECIDE, Status.WAITING_SEND)
    m.step()
    m.confirm_all()
    for new in (Status.WAITING_SEND, Status.WAITING_DECIDE, Status.WAITING_CONFIRM):
        with pytest.raises(TransitionNotAllowed):
            m.store.transition(key, Status.DONE, new)
    assert m.status() == "done"
    log.info("the status index agrees with the records")
    counts = m.store.counts()
    assert sum(n for (_, status), n in counts.items() if status == "done") == 1
    assert sum(counts.values()) == 1


def test_deposit_to_an_unbound_address_is_refused(machine: Machine) -> None:
    with pytest.raises(NoBinding):
        machine.record(BTC_ADDRESSES[0], 100_000)
    assert machine.store.all_deposits() == []


def test_watched_set_follows_binds(machine: Machine) -> None:
    m = machine
    assert m.store.watched("BTC") == set()
    a = m.bind()
    assert m.store.watched("BTC") == {a}
    b = m.bind(sky_address(1))
    assert m.store.watched("BTC") == {a, b}


def test_reorg_cancels_unpaid_and_holds_paid_deposits(machine: Machine) -> None:
    m = machine
    unpaid, paid = m.bind(sky_address(1)), m.bind(sky_address(2))
    m.record(paid, 100_000, tx="02" * 32)
    m.step()
    m.record(unpaid, 100_000, tx="01" * 32)
    changed = m.store.orphan_deposits("BTC", ["block-1"], "block-1 left the chain")
    assert sorted(changed) == [f"BTC/{'01' * 32}:0", f"BTC/{'02' * 32}:0"]
    assert m.status("01" * 32) == "cancelled"
    assert m.status("02" * 32) == "needs_review"
    log.info("the chain brings the unpaid one back: waiting_decide again, then paid once")
    record, created = m.record(unpaid, 100_000, tx="01" * 32)
    assert created and record["status"] == "waiting_decide" and record["error"] == ""
    m.step()
    assert m.status("01" * 32) == "waiting_confirm"
    assert len(m.sender.broadcasts()) == 2


class _NodeDownSender(DummySender):
    """The dummy wallet behind a node that stops answering: build fails until it is back."""

    down = False
    builds = 0

    def build(self, outputs, payout_id):  # type: ignore[no-untyped-def]
        self.builds += 1
        if self.down:
            raise NodeUnavailable("skycoin node 127.0.0.1:6420 unreachable")
        return super().build(outputs, payout_id)


def test_node_outage_stops_the_send_pass_and_loses_nothing(tmp_path: Path) -> None:
    m = make_machine(tmp_path / "db")
    sender = _NodeDownSender(m.storage, coins_droplets=100 * SKY, hours=100)
    m.exchanger.sender = sender
    try:
        addresses = [m.bind() for _ in range(3)]
        for i, address in enumerate(addresses):
            m.record(address, 100_000, tx=f"{i:064x}")
        log.info("node down: one build attempt per pass, not one timeout per deposit")
        sender.down = True
        m.step()
        assert sender.builds == 1
        records = [m.store.get(f"BTC/{i:064x}:0") for i in range(3)]
        assert [r["status"] for r in records] == ["waiting_send"] * 3
        assert "unreachable" in records[0]["last_error"] and m.exchanger.sender_error
        log.info("node back: every deposit is paid once")
        sender.down = False
        m.now[0] += 3600
        m.step()
        assert len(sender.broadcasts()) == 3
        assert [m.status(tx=f"{i:064x}") for i in range(3)] == ["waiting_confirm"] * 3
    finally:
        m.storage.close()


def test_payouts_built_ahead_share_their_commits(tmp_path: Path) -> None:
    """The dummy chain takes many payouts at once: the pass costs the same commits for 2 or 8."""
    commits = []
    for count in (2, 8):
        m = make_machine(tmp_path / f"db{count}")
        try:
            for i in range(count):
                m.record(m.bind(sky_address(i)), 100_000, tx=f"{i:064x}")
            before = m.storage.version()
            m.step()
            commits.append(m.storage.version() - before)
            assert [r["status"] for r in m.store.all_deposits()] == ["waiting_confirm"] * count
            assert len({tx["txid"] for tx in m.sender.broadcasts()}) == count
        finally:
            m.storage.close()
    assert commits[0] == commits[1], commits


def test_a_stale_payout_in_a_batch_is_skipped_alone(machine: Machine) -> None:
    m = machine
    keys = []
    for i in range(2):
        m.record(m.bind(sky_address(i)), 100_000, tx=f"{i:064x}")
        keys.append(f"BTC/{i:064x}:0")
    m.exchanger.decide()
    built = [(f"payout-{i}", m.sender.build([PayoutOutput(sky_address(i), 500_000, key)],
                                            f"payout-{i}"))
             for i, key in enumerate(keys)]
    log.info("an operator finishes the first deposit between build and persist")
    m.store.transition(keys[0], Status.WAITING_SEND, Status.DONE, {"error": "by hand"})
    persisted = m.store.create_payouts(built, m.sender.commit_built)
    assert [payout_id for payout_id, _ in persisted] == ["payout-1"]
    assert m.store.payout("payout-0") is None
    assert m.store.get(keys[0])["payout_id"] == ""
    assert m.store.get(keys[1])["payout_id"] == "payout-1"


def test_dummy_broadcast_many_answers_for_each_payout(tmp_path: Path) -> None:
    m = make_machine(tmp_path / "db", coins=1 * SKY)
    try:
        payouts = [m.sender.build([PayoutOutput(sky_address(i), SKY // 2, f"BTC/x{i}")],
                                  f"p{i}") for i in range(3)]
        results = m.sender.broadcast_many(payouts)
        assert results[:2] == [None, None] and isinstance(results[2], InsufficientFunds)
        assert m.sender.balance().coins == 0
        log.info("the same bytes again are 'already known': no second debit")
        assert m.sender.broadcast_many(payouts[:1]) == [None]
        assert len(m.sender.broadcasts()) == 2
    finally:
        m.storage.close()


def test_autoconfirm_finishes_without_a_confirm_call(tmp_path: Path) -> None:
    m = make_machine(tmp_path / "db", autoconfirm=True)
    try:
        m.record(m.bind(), 100_000)
        m.step()  # decided, paid, broadcast: the chain confirmed it at once
        assert m.sender.broadcasts(unconfirmed_only=True) == []
        m.step()
        assert m.status() == "done"
    finally:
        m.storage.close()


def test_unconfirmed_listing_follows_confirmations_and_indexes_old_chains(
        tmp_path: Path) -> None:
    m = make_machine(tmp_path / "db")
    try:
        for i in range(3):
            m.record(m.bind(sky_address(i)), 100_000, tx=f"{i:064x}")
        m.step()
        first, *rest = m.sender.broadcasts()
        m.sender.confirm(txid=first["txid"])
        assert [b["txid"] for b in m.sender.broadcasts(unconfirmed_only=True)] == \
            [b["txid"] for b in rest]
        log.info("a chain written before the index existed is indexed on start")
        with m.storage.write() as txn:
            for key, _ in list(m.storage.items(txn, "sender", "dummy/pending")):
                m.storage.delete(txn, "sender", key)
        assert m.sender.broadcasts(unconfirmed_only=True) == []
        reopened = DummySender(m.storage, coins_droplets=100 * SKY, hours=100)
        assert [b["txid"] for b in reopened.broadcasts(unconfirmed_only=True)] == \
            [b["txid"] for b in rest]
    finally:
        m.storage.close()


def test_a_wake_with_a_txid_checks_that_payout_only(machine: Machine) -> None:
    m = machine
    for i in range(3):
        m.record(m.bind(sky_address(i)), 100_000, tx=f"{i:064x}")
    m.step()
    txids = [b["txid"] for b in m.sender.broadcasts()]
    for txid in txids:
        m.sender.confirm(txid=txid)
    m.exchanger.wake_confirmations(txids[1])
    m.step()
    assert [m.status(tx=f"{i:064x}") for i in range(3)] == \
        ["waiting_confirm", "done", "waiting_confirm"]
    log.info("a wake without a txid (or one this process does not know) checks them all")
    m.exchanger.wake_confirmations("ff" * 32)
    m.step()
    assert [m.status(tx=f"{i:064x}") for i in range(3)] == ["done"] * 3


def test_a_replay_does_not_undo_an_operator_cancel(machine: Machine) -> None:
    """Only a reorg's cancel is undone by the chain bringing the deposit back."""
    m = machine
    key = f"BTC/{TX}:0"
    address = m.bind()
    m.record(address, 100_000)
    m.step()
    [payout] = m.sender.broadcasts()
    m.store.orphan_deposits("BTC", ["block-1"], "block-1 left the chain")
    assert m.status() == "needs_review"
    log.info("the operator cancels the held deposit (as POST /api/deposits/review does)")
    m.store.transition(key, Status.NEEDS_REVIEW, Status.CANCELLED,
                       {"error": "paid out of band", "error_kind": "cancelled_by_operator"})
    log.info("the block comes back and the scanner reports the deposit again")
    record, created = m.record(address, 100_000)
    assert not created and record["status"] == "cancelled"
    assert record["error_kind"] == "cancelled_by_operator"
    m.sender.confirm(txid=payout["txid"])
    m.exchanger.wake_confirmations()
    m.step()
    assert m.status() == "cancelled"
    assert len(m.sender.broadcasts()) == 1


class _StopsMidBatchSender(DummySender):
    """A node that takes the first ``accept`` payouts of a batch, then stops answering: with
    ``short`` it answers only for the ones it took (no error for the rest)."""

    accept: int | None = None
    short = False

    def broadcast_many(self, payouts):  # type: ignore[no-untyped-def]
        if self.accept is None:
            return super().broadcast_many(payouts)
        results = super().broadcast_many(payouts[:self.accept])
        return results if self.short else [*results, NodeUnavailable("node unreachable")]


@pytest.mark.parametrize("short", [False, True])
def test_payouts_not_tried_in_a_batch_wait_and_go_out_once(tmp_path: Path, short: bool) -> None:
    m = make_machine(tmp_path / "db")
    sender = _StopsMidBatchSender(m.storage, coins_droplets=100 * SKY, hours=100)
    m.exchanger.sender = sender
    txs = [f"{i:064x}" for i in range(3)]
    try:
        for i, tx in enumerate(txs):
            m.record(m.bind(sky_address(i)), 100_000, tx=tx)
        sender.accept, sender.short = 1, short
        m.step()
        assert [m.status(tx=tx) for tx in txs] == ["waiting_confirm", "waiting_send",
                                                   "waiting_send"]
        assert len(sender.broadcasts()) == 1
        held = [m.store.payout(m.store.get(f"BTC/{tx}:0")["payout_id"]) for tx in txs[1:]]
        assert [p["status"] for p in held] == ["signed", "signed"]
        assert all(p["attempts"] == 1 and p["last_error"] for p in held)
        log.info("the node is back: the persisted bytes go out, each once")
        sender.accept = None
        m.now[0] += 3600
        m.step()
        assert [m.status(tx=tx) for tx in txs] == ["waiting_confirm"] * 3
        assert sorted(b["txid"] for b in sender.broadcasts()) == \
            sorted(m.store.get(f"BTC/{tx}:0")["txid"] for tx in txs)
        m.confirm_all()
        assert [m.status(tx=tx) for tx in txs] == ["done"] * 3
        assert len(sender.broadcasts()) == 3
    finally:
        m.storage.close()
