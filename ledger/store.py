"""Bindings, deposits and payouts in LMDB; every status change is a compare-and-set.

This module is the only writer of deposit records. Each public method is one write
transaction that re-reads the record, checks the status it expects, and writes the new one
(``transition``): a deposit replayed by a scanner, a copy that travelled through a queue, or a
second worker can never move a deposit twice. Payout records hold the signed transaction and
its txid; they are written *before* anything is broadcast (see ``exchanger.processor``).

Record shapes keep the Go teller's ``DepositInfo`` JSON field names (the admin API returns them
as they are), with new fields for what the Go teller lacked: ``error_kind``, ``payout_id``,
``attempts``, ``next_attempt_at``, ``last_error``, ``block_hash``, ``review_reason``,
``created_at``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from addrs.pool import AddressPool
from sender.base import SignedPayout

from .records import Binding, DepositChanges, DepositRecord, PayoutChanges, PayoutRecord
from .status import Status, check_transition

if TYPE_CHECKING:
    from common.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deposit:
    """A deposit as a scanner reports it: value in the coin's base units."""

    coin_type: str
    address: str
    value: int
    height: int
    tx: str
    n: int
    block_hash: str = ""

    @property
    def deposit_id(self) -> str:
        """``txid:n`` with the real output index (log index for ERC-20)."""
        return f"{self.tx}:{self.n}"

    @property
    def key(self) -> str:
        return deposit_key(self.coin_type, self.deposit_id)


def deposit_key(coin_type: str, deposit_id: str) -> str:
    return f"{coin_type}/{deposit_id}"


class BindError(Exception):
    """A bind that cannot be done; the message is shown to the buyer."""


class PoolEmpty(BindError):
    def __init__(self) -> None:
        super().__init__("Deposit address pool is empty")


class BindLimitReached(BindError):
    def __init__(self) -> None:
        super().__init__("The maximum number of addresses have been assigned to this SKY address")


class NoBinding(ValueError):
    """A deposit to an address nobody bound."""


class Conflict(RuntimeError):
    """The record was not in the status the caller expected (someone else moved it)."""


# (key, expected status, statuses to take in turn, record -> fields to change): apply_moves
Move = tuple[str, Status, list[Status], Callable[[DepositRecord], dict[str, Any]]]


class DepositStore:
    def __init__(self, storage: Storage, pool: AddressPool,
                 clock: Callable[[], float] = time.time,
                 rate_for: Callable[[str], str] | None = None) -> None:
        self.storage = storage
        self.pool = pool
        self.clock = clock
        # The rate a new deposit of a coin is recorded with (snapshotted at first sight).
        self.rate_for = rate_for
        self.on_change: Callable[[], None] = lambda: None  # wakes the exchanger
        self._watch: dict[str, set[str]] = {}
        self._watch_lock = threading.Lock()
        # receive address -> (storage version, status entries): see statuses_for
        self._status_cache: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    def now(self) -> int:
        return int(self.clock())

    # -- bindings --------------------------------------------------------------------------

    def bind(self, coin: str, sky_address: str, *, pool_coin: str | None = None,
             buy_method: str = "direct", max_bound: int = 0) -> Binding:
        """Take the next pool address for ``coin`` and bind it to ``sky_address``, atomically.

        The bound-address limit, the pool hand-out, the binding and the watch-set entry are one
        transaction: concurrent binds cannot exceed ``max_bound`` or lose an address.
        """
        st = self.storage
        pool_coin = pool_coin or coin
        with st.write() as txn:
            bound = st.count(txn, "sky_index", f"{sky_address}/")
            if max_bound > 0 and bound >= max_bound:
                raise BindLimitReached()
            address = self.pool.take(txn, pool_coin)
            if address is None:
                raise PoolEmpty()
            key = f"{coin}/{address}"
            if st.get(txn, "bindings", key) is not None:  # defensive: pools never repeat
                raise BindError(f"deposit address {address} is already bound")
            binding: Binding = {
                "sky_address": sky_address, "address": address, "coin_type": coin,
                "buy_method": buy_method, "bound_at": self.now(), "slot": bound,
            }
            st.put(txn, "bindings", key, binding)
            st.put(txn, "sky_index", f"{sky_address}/{bound:08x}", key)
        with self._watch_lock:
            if coin in self._watch:
                self._watch[coin].add(address)
        return binding

    def binding(self, coin: str, address: str) -> Binding | None:
        with self.storage.read() as txn:
            binding: Binding | None = self.storage.get(txn, "bindings", f"{coin}/{address}")
            return binding

    def bindings_of(self, sky_address: str) -> list[Binding]:
        st = self.storage
        with st.read() as txn:
            return [st.get(txn, "bindings", k)
                    for _, k in st.items(txn, "sky_index", f"{sky_address}/")]

    def watched(self, coin: str) -> set[str]:
        """The deposit addresses of ``coin`` being watched (every bound address).

        Kept in memory for scanners (a set lookup per output); bind() adds to it after commit.
        """
        with self._watch_lock:
            if coin not in self._watch:
                with self.storage.read() as txn:
                    self._watch[coin] = {b["address"] for _, b in
                                         self.storage.items(txn, "bindings", f"{coin}/")}
            return self._watch[coin]

    def bound_addresses(self, coin: str) -> list[str]:
        with self.storage.read() as txn:
            return [b["address"] for _, b in self.storage.items(txn, "bindings", f"{coin}/")]

    # -- deposits --------------------------------------------------------------------------

    def record_deposit(self, dep: Deposit, rate: str | None = None) -> tuple[DepositRecord, bool]:
        """Record a confirmed deposit once; return (record, created).

        ``rate`` defaults to ``rate_for(coin)`` at the moment of recording: the snapshot.

        Replays of the same ``txid:n`` return the stored record unchanged (the rate snapshotted
        at first sight stays). A deposit that a reorg had cancelled comes back to
        ``waiting_decide`` when the chain includes it again; one an operator cancelled stays
        cancelled (it may carry a payout that went out).
        """
        st = self.storage
        key = dep.key
        if rate is None:
            if self.rate_for is None:
                raise ValueError("DepositStore has no rate_for: pass the rate")
            rate = self.rate_for(dep.coin_type)

        def write(txn: Any) -> tuple[DepositRecord, bool]:
            existing: DepositRecord | None = st.get(txn, "deposits", key)
            if existing is not None:
                if existing["status"] != Status.CANCELLED or \
                        existing.get("error_kind") != "reorged":
                    return existing, False
                return self._transition(txn, existing, Status.CANCELLED, Status.WAITING_DECIDE, {
                    "error": "", "error_kind": "", "block_hash": dep.block_hash,
                    "deposit": {**existing["deposit"], "height": dep.height},
                }), True
            binding: Binding | None = st.get(txn, "bindings", f"{dep.coin_type}/{dep.address}")
            if binding is None:
                raise NoBinding(f"no binding for {dep.coin_type} address {dep.address}")
            seq = st.next_counter(txn, "deposit_seq")
            now = self.now()
            record: DepositRecord = {
                "seq": seq, "updated_at": now, "created_at": now,
                "status": str(Status.WAITING_DECIDE),
                "coin_type": dep.coin_type, "sky_address": binding["sky_address"],
                "buy_method": binding.get("buy_method", "direct"),
                "deposit_address": dep.address, "deposit_id": dep.deposit_id,
                "txid": "", "conversion_rate": rate, "deposit_value": dep.value,
                "sky_sent": 0,
                "passthrough": {
                    "exchange_name": "", "sky_bought": 0, "deposit_value_spent": 0,
                    "requested_amount": "",
                    "order": {"customer_id": "", "order_id": "", "completed_amount": "",
                              "price": "", "status": "", "final": False, "original": ""},
                },
                "error": "", "error_kind": "",
                "deposit": {"coin_type": dep.coin_type, "address": dep.address,
                            "value": dep.value, "height": dep.height, "tx": dep.tx,
                            "n": dep.n, "processed": False},  # Go's value
                "block_hash": dep.block_hash, "payout_id": "", "attempts": 0,
                "next_attempt_at": 0, "last_error": "", "review_reason": "",
            }
            check_transition(None, Status.WAITING_DECIDE)
            self._count(txn, dep.coin_type, Status.WAITING_DECIDE, 1)
            st.put(txn, "deposits", key, record)
            st.put(txn, "deposits_by_status", f"{record['status']}/{seq:016x}", key)
            st.put(txn, "deposits_by_address",
                   f"{dep.coin_type}/{dep.address}/{seq:016x}", key)
            return record, True

        # Concurrent deposits (scanner threads, dummy API requests) share one commit.
        result, created = st.write_batched(write)
        if created:
            self.on_change()
        return result, created

    def get(self, key: str) -> DepositRecord | None:
        with self.storage.read() as txn:
            record: DepositRecord | None = self.storage.get(txn, "deposits", key)
            return record

    def transition(self, key: str, expected: Status, new: Status,
                   changes: DepositChanges | None = None,
                   also: Callable[[Any, DepositRecord], None] | None = None) -> DepositRecord:
        """Compare-and-set one deposit from ``expected`` to ``new`` (raises Conflict).

        ``also(txn, updated)`` writes what must commit with the move (an audit entry).
        """
        with self.storage.write() as txn:
            record: DepositRecord | None = self.storage.get(txn, "deposits", key)
            if record is None:
                raise Conflict(f"deposit {key} does not exist")
            updated = self._transition(txn, record, expected, new, changes or {})
            if also is not None:
                also(txn, updated)
            return updated

    def _transition(self, txn: Any, record: DepositRecord, expected: Status, new: Status,
                    changes: DepositChanges) -> DepositRecord:
        st = self.storage
        old = Status(record["status"])
        if old != expected:
            raise Conflict(f"deposit {record['coin_type']}/{record['deposit_id']} is {old}, "
                           f"expected {expected}")
        check_transition(old, new)
        key = deposit_key(record["coin_type"], record["deposit_id"])
        seq = record["seq"]
        updated: DepositRecord = {**record, **changes, "status": str(new),
                                  "updated_at": self.now()}
        self._count(txn, record["coin_type"], old, -1)
        self._count(txn, record["coin_type"], new, 1)
        if bool(updated.get("error")) != bool(record.get("error")):
            self._count(txn, "*", "errored", 1 if updated.get("error") else -1)
        st.delete(txn, "deposits_by_status", f"{old}/{seq:016x}")
        st.put(txn, "deposits_by_status", f"{new}/{seq:016x}", key)
        st.put(txn, "deposits", key, updated)
        return updated

    def transition_many(self, keys: Iterable[str], expected: Status, new: Status) -> list[str]:
        """Compare-and-set several deposits in one transaction; returns the keys that moved.

        Each record is still re-read and checked on its own: one that is no longer in
        ``expected`` is skipped, not an error.
        """
        moved = []
        with self.storage.write() as txn:
            for key in keys:
                record: DepositRecord | None = self.storage.get(txn, "deposits", key)
                if record is None or record["status"] != expected:
                    continue
                self._transition(txn, record, expected, new, {})
                moved.append(key)
        return moved

    def apply_moves(self, moves: Iterable[Move]) -> list[DepositRecord]:
        """Several compare-and-set moves in one transaction; returns the updated records.

        A move is (key, expected, path, changes): the record must be in ``expected``; it then
        takes each status of ``path`` in turn (every step checked against the transition
        table; an empty path changes fields only) with ``changes(record)`` applied — a function
        of the record re-read inside this transaction, so nested objects such as
        ``passthrough`` are merged into the current value, never a stale copy. A record no
        longer in ``expected`` is skipped, not an error.
        """
        updated = []
        st = self.storage
        with st.write() as txn:
            for key, expected, path, changes in moves:
                record = st.get(txn, "deposits", key)
                if record is None or record["status"] != expected:
                    continue
                fields = changes(record)
                if not path:
                    record = {**record, **fields}
                    st.put(txn, "deposits", key, record)
                current = expected
                for step in path:
                    # the move's fields are record fields built from this re-read record
                    record = self._transition(txn, record, current, step, fields)  # type: ignore[arg-type]
                    current, fields = step, {}
                updated.append(record)
        return updated

    def release_for_payment(self, key: str, changes: DepositChanges,
                            also: Callable[[Any, DepositRecord], None] | None = None,
                            ) -> DepositRecord:
        """Operator "retry": a held deposit becomes payable again, with a new payout later.

        Refused (Conflict) while its old payout is open — signed or broadcast, it may still
        confirm (a deposit reorged after payout is held with its payout open) — or confirmed:
        a second payout would pay the buyer twice. Checked in the same transaction as the move.
        """
        st = self.storage
        with st.write() as txn:
            record: DepositRecord | None = st.get(txn, "deposits", key)
            if record is None:
                raise Conflict(f"deposit {key} does not exist")
            payout_id = record.get("payout_id")
            payout: PayoutRecord | None = st.get(txn, "payouts", payout_id) if payout_id else None
            if payout is not None and payout["status"] != "needs_review":
                raise Conflict(
                    f"payout {payout_id} (txid {payout['signed']['txid']}) is "
                    f"{payout['status']}: it paid or may still pay this deposit; use mark_done "
                    "once it confirms, or wait until it is held as dead")
            updated = self._transition(txn, record, Status.NEEDS_REVIEW, Status.WAITING_SEND, {
                **changes, "payout_id": "", "txid": "", "sky_sent": 0, "attempts": 0,
                "next_attempt_at": 0})
            if also is not None:  # as in transition: commits with the move
                also(txn, updated)
            return updated

    def update_fields(self, key: str, expected: Status, changes: DepositChanges) -> DepositRecord:
        """Change bookkeeping fields (retry counters, errors) without changing the status."""
        with self.storage.write() as txn:
            record: DepositRecord | None = self.storage.get(txn, "deposits", key)
            if record is None or record["status"] != expected:
                raise Conflict(f"deposit {key} is not {expected}")
            updated: DepositRecord = {**record, **changes}
            self.storage.put(txn, "deposits", key, updated)
            return updated

    def _count(self, txn: Any, coin: str, status: str, delta: int) -> None:
        key = f"count/{coin}/{status}"
        self.storage.put(txn, "meta", key, (self.storage.get(txn, "meta", key) or 0) + delta)

    def counts(self) -> dict[tuple[str, str], int]:
        """Deposits per (coin, status), kept up to date in every transaction: O(1) to read."""
        with self.storage.read() as txn:
            out = {}
            for key, value in self.storage.items(txn, "meta", "count/"):
                _, coin, status = key.split("/", 2)
                if coin != "*":
                    out[(coin, status)] = value
            return out

    def error_count(self) -> int:
        """Deposits with ``error`` set (the Go teller's deposit_error_count)."""
        with self.storage.read() as txn:
            return self.storage.get(txn, "meta", "count/*/errored") or 0

    def keys_in_status(self, status: Status, limit: int | None = None) -> list[str]:
        with self.storage.read() as txn:
            keys = []
            for _, key in self.storage.items(txn, "deposits_by_status", f"{status}/"):
                keys.append(key)
                if limit is not None and len(keys) >= limit:
                    break
            return keys

    def in_status(self, status: Status, limit: int | None = None) -> list[DepositRecord]:
        st = self.storage
        with st.read() as txn:
            out: list[DepositRecord] = []
            for _, key in st.items(txn, "deposits_by_status", f"{status}/"):
                out.append(st.get(txn, "deposits", key))
                if limit is not None and len(out) >= limit:
                    break
            return out

    def all_deposits(self, status: Status | None = None) -> list[DepositRecord]:
        """Deposits in creation (seq) order, optionally of one status."""
        if status is not None:
            return self.in_status(status)
        with self.storage.read() as txn:
            records: list[DepositRecord] = [r for _, r in self.storage.items(txn, "deposits")]
        return sorted(records, key=lambda r: r["seq"])

    def errored(self) -> list[DepositRecord]:
        return [r for r in self.all_deposits() if r.get("error")]

    def deposits_of_address(self, coin: str, address: str,
                            txn: Any = None) -> list[DepositRecord]:
        st = self.storage
        if txn is None:
            with st.read() as txn:
                return self.deposits_of_address(coin, address, txn)
        return [st.get(txn, "deposits", key)
                for _, key in st.items(txn, "deposits_by_address", f"{coin}/{address}/")]

    def statuses_for(self, sky_address: str) -> list[dict[str, Any]]:
        """The public /api/status list for a receive address, with a stable ``seq``.

        Each binding owns a slot: ``waiting_deposit`` until its first deposit, which then takes
        the slot over; later deposits to the same address append. Entries only ever append, so
        ``seq`` (the position) never changes for a buyer (the Go teller renumbered by
        ``updated_at``). Answers are cached per address until the next commit to the database
        (wallets poll this endpoint; a cached answer is never older than the last write).
        """
        version = self.storage.version()
        cached = self._status_cache.get(sky_address)
        if cached is None or cached[0] != version:
            cached = (version, self._compute_statuses(sky_address))
            if len(self._status_cache) > 10_000:
                self._status_cache.clear()
            self._status_cache[sky_address] = cached
        now = self.now()
        return [{**entry, "updated_at": now} if entry["updated_at"] is None else dict(entry)
                for entry in cached[1]]

    def payout_txids(self, sky_address: str) -> list[dict[str, Any]]:
        """``seq`` -> payout txid for the /api/status entries that have one (the buyer page)."""
        return [{"seq": e["seq"], "txid": e["txid"]}
                for e in self._compute_statuses(sky_address, with_txid=True) if e.get("txid")]

    def _compute_statuses(self, sky_address: str,
                          with_txid: bool = False) -> list[dict[str, Any]]:
        """Status entries in slot order; ``updated_at`` None for waiting_deposit (it is "now")."""
        st = self.storage
        entries: list[tuple[tuple[int, int], dict[str, Any]]] = []
        with st.read() as txn:
            for _, bkey in st.items(txn, "sky_index", f"{sky_address}/"):
                binding = st.get(txn, "bindings", bkey)
                deposits = self.deposits_of_address(binding["coin_type"], binding["address"], txn)
                if not deposits:
                    entries.append(((binding["bound_at"], 0), {
                        "coin_type": binding["coin_type"],
                        "status": str(Status.WAITING_DEPOSIT), "updated_at": None,
                    }))
                for i, dep in enumerate(deposits):
                    order = (binding["bound_at"], 0) if i == 0 else (dep["created_at"], dep["seq"])
                    entry = {"coin_type": dep["coin_type"], "status": dep["status"],
                             "updated_at": dep["updated_at"]}
                    if with_txid:
                        entry["txid"] = dep.get("txid", "")
                    entries.append((order, entry))
        entries.sort(key=lambda e: e[0])
        return [{"seq": i, **entry} for i, (_, entry) in enumerate(entries)]

    # -- payouts ---------------------------------------------------------------------------

    def create_payouts(self, built: list[tuple[str, SignedPayout]],
                       commit_built: Callable[[Storage, Any, SignedPayout], None],
                       ) -> list[tuple[str, SignedPayout]]:
        """Persist signed payouts and attach them to their deposits, in one commit, before any
        of them is broadcast; returns the ones persisted.

        Every deposit of a payout must still be ``waiting_send`` without a payout; otherwise
        that payout is skipped (its signed transaction is then simply never sent) and logged.
        ``commit_built(storage, txn, signed)`` records backend state (an ERC-20 nonce) in the
        same transaction; if it raises, nothing is written.
        """
        st = self.storage
        persisted: list[tuple[str, SignedPayout]] = []
        with st.write() as txn:
            for payout_id, signed in built:
                records: list[DepositRecord | None] = [st.get(txn, "deposits", out.deposit_key)
                                                       for out in signed.outputs]
                stale = [out.deposit_key for out, record in zip(signed.outputs, records,
                                                                strict=True)
                         if not self._payable(record)]
                if stale:
                    log.warning("payout %s discarded before broadcast: deposit %s is no longer "
                                "payable", payout_id, stale[0])
                    continue
                payout: PayoutRecord = {
                    "id": payout_id, "status": "signed", "created_at": self.now(),
                    "broadcast_at": 0, "attempts": 0, "next_attempt_at": 0, "last_error": "",
                    "deposit_keys": [o.deposit_key for o in signed.outputs],
                    "signed": signed.to_json(),
                }
                st.put(txn, "payouts", payout_id, payout)
                st.put(txn, "payouts_open", payout_id, "signed")
                for out, record in zip(signed.outputs, records, strict=True):
                    # not None: every record passed the stale check above
                    record.update({"payout_id": payout_id,  # type: ignore[union-attr]
                                   "txid": signed.txid, "sky_sent": out.amount, "last_error": ""})
                    st.put(txn, "deposits", out.deposit_key, record)
                commit_built(st, txn, signed)
                persisted.append((payout_id, signed))
        return persisted

    @staticmethod
    def _payable(record: DepositRecord | None) -> bool:
        return (record is not None and record["status"] == Status.WAITING_SEND
                and not record.get("payout_id"))

    def payout(self, payout_id: str) -> PayoutRecord | None:
        with self.storage.read() as txn:
            payout: PayoutRecord | None = self.storage.get(txn, "payouts", payout_id)
            return payout

    def open_payouts(self, status: str | None = None) -> list[PayoutRecord]:
        """Payouts not yet confirmed (optionally only "signed" or only "broadcast")."""
        st = self.storage
        with st.read() as txn:
            return [st.get(txn, "payouts", pid) for pid, state in st.items(txn, "payouts_open")
                    if status is None or state == status]

    def open_payout_count(self) -> int:
        with self.storage.read() as txn:
            return self.storage.count(txn, "payouts_open")

    def update_payout(self, payout_id: str, changes: PayoutChanges) -> PayoutRecord:
        with self.storage.write() as txn:
            payout: PayoutRecord = self.storage.get(txn, "payouts", payout_id)
            # PayoutChanges holds a subset of PayoutRecord's keys; mypy accepts only a partial
            # PayoutRecord (every key optional) as the argument of update().
            payout.update(changes)  # type: ignore[typeddict-item]
            self.storage.put(txn, "payouts", payout_id, payout)
            return payout

    def mark_broadcast(self, payout_ids: str | Iterable[str]) -> None:
        """The node accepted these payouts: their deposits move to ``waiting_confirm``."""
        st = self.storage
        with st.write() as txn:
            for payout_id in [payout_ids] if isinstance(payout_ids, str) else payout_ids:
                payout = st.get(txn, "payouts", payout_id)
                if payout["status"] != "signed":
                    continue
                payout.update({"status": "broadcast", "broadcast_at": self.now(),
                               "last_error": ""})
                st.put(txn, "payouts", payout_id, payout)
                st.put(txn, "payouts_open", payout_id, "broadcast")
                for key in payout["deposit_keys"]:
                    record = st.get(txn, "deposits", key)
                    if record["status"] == Status.WAITING_SEND and \
                            record["payout_id"] == payout_id:
                        self._transition(txn, record, Status.WAITING_SEND,
                                         Status.WAITING_CONFIRM, {})

    def add_candidate(self, payout_id: str, signed: SignedPayout) -> None:
        """Persist a replacement transaction for a broadcast payout, before it is broadcast.

        The payout then has several candidates spending one nonce (or the same inputs): at
        most one can be mined, and whichever confirms completes the payout.
        """
        st = self.storage
        with st.write() as txn:
            payout = st.get(txn, "payouts", payout_id)
            if payout is None or payout["status"] != "broadcast":
                raise Conflict(f"payout {payout_id} is not waiting for confirmation")
            payout["candidates"] = [*payout.get("candidates", []), signed.to_json()]
            payout["replaced_at"] = self.now()
            st.put(txn, "payouts", payout_id, payout)
            for key in payout["deposit_keys"]:
                record = st.get(txn, "deposits", key)
                if record.get("payout_id") == payout_id:
                    record["replacement_txids"] = [*record.get("replacement_txids", []),
                                                   signed.txid]
                    st.put(txn, "deposits", key, record)

    def mark_confirmed(self, confirmed: dict[str, str]) -> None:
        """These payouts are confirmed on chain (payout id -> the txid that confirmed):
        their deposits are ``done``, with ``txid`` the transaction that paid them."""
        with self.storage.write() as txn:
            for payout_id, txid in confirmed.items():
                self._close_payout(txn, payout_id, "confirmed", Status.DONE,
                                   {"txid": txid})

    def mark_needs_review(self, payout_id: str, reason: str) -> None:
        """The payout is provably dead or failed: hold its deposits for an operator."""
        with self.storage.write() as txn:
            self._close_payout(txn, payout_id, "needs_review", Status.NEEDS_REVIEW,
                               {"review_reason": reason, "last_error": reason})

    def _close_payout(self, txn: Any, payout_id: str, payout_status: str, new: Status,
                      changes: DepositChanges) -> None:
        st = self.storage
        payout = st.get(txn, "payouts", payout_id)
        if payout is None or st.get(txn, "payouts_open", payout_id) is None:
            return
        payout.update({"status": payout_status, "closed_at": self.now(), **changes})
        st.put(txn, "payouts", payout_id, payout)
        st.delete(txn, "payouts_open", payout_id)
        for key in payout["deposit_keys"]:
            record = st.get(txn, "deposits", key)
            if record.get("payout_id") != payout_id:
                continue
            for expected in (Status.WAITING_CONFIRM, Status.WAITING_SEND):
                if record["status"] == expected:
                    self._transition(txn, record, expected, new, changes)
                    break

    # -- reorgs ----------------------------------------------------------------------------

    def orphan_deposits(self, coin: str, block_hashes: Iterable[str], reason: str) -> list[str]:
        """Deposits recorded from blocks that left the chain.

        Unpaid ones are ``cancelled``; ones whose payout may have gone out are held in
        ``needs_review``. Returns the keys that changed.
        """
        hashes = set(block_hashes)
        changed = []
        st = self.storage
        with st.write() as txn:
            for key, record in list(st.items(txn, "deposits", f"{coin}/")):
                if record.get("block_hash") not in hashes:
                    continue
                status = Status(record["status"])
                if status in _ORDER_STATUSES and order_may_exist(record):
                    # The venue's money is (or may be) spent on this deposit's order.
                    self._transition(txn, record, status, Status.NEEDS_REVIEW, {
                        "review_reason": reason, "error_kind": "reorged_after_order"})
                    changed.append(key)
                elif status in (Status.WAITING_DECIDE, Status.WAITING_PASSTHROUGH) or (
                        status == Status.WAITING_SEND and not record.get("payout_id")):
                    self._transition(txn, record, status, Status.CANCELLED, {
                        "error": reason, "error_kind": "reorged"})
                    changed.append(key)
                elif status in (Status.WAITING_SEND, Status.WAITING_CONFIRM, Status.DONE):
                    self._transition(txn, record, status, Status.NEEDS_REVIEW, {
                        "review_reason": reason, "error_kind": "reorged_after_payout"})
                    changed.append(key)
        return changed


# Statuses in which a passthrough order may exist before any payout does.
_ORDER_STATUSES = (Status.WAITING_PASSTHROUGH, Status.WAITING_PASSTHROUGH_ORDER_COMPLETE,
                   Status.WAITING_SEND)


def order_may_exist(record: dict[str, Any]) -> bool:
    """A passthrough order is placed, or may be: its id is recorded, or the intent was
    persisted for a ``place`` whose outcome is not known (``placing_at`` set)."""
    if record.get("payout_id"):
        return False  # a payout exists: the payout rules decide (reorged_after_payout)
    passthrough = record.get("passthrough") or {}
    return bool(passthrough.get("order", {}).get("order_id") or passthrough.get("placing_at"))
