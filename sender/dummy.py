"""The dummy sender: a pretend Skycoin wallet whose "chain" lives in the data directory.

Unlike the Go teller's in-memory dummy, broadcasts survive a restart, so a restarted teller in
dummy mode sees the same chain it left and crash tests mean something: rebroadcasting a known
txid is "already known" (success), never a second payment. It starts with ``dummy.sender_coins``
SKY and ``dummy.sender_hours`` hours and answers "not enough coins" past its balance, as the Go
dummy does. Transactions are confirmed by hand through the dummy HTTP API, or at once with
``dummy.sender_autoconfirm``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from common.units import SKY_DECIMALS, format_units

from .base import (
    Balance,
    InsufficientFunds,
    PayoutOutput,
    Sender,
    SenderError,
    SignedPayout,
    TxState,
)

_PREFIX = "dummy/"


class DummySender(Sender):
    name = "dummy"
    token = "SKY"
    decimals = SKY_DECIMALS
    build_ahead = 64  # our own ledger: a build never depends on an earlier broadcast
    forgotten_can_return = False  # nothing sends a dropped transaction again but the teller

    def __init__(self, storage: Any, *, coins_droplets: int, hours: int,
                 max_outputs: int = 1, autoconfirm: bool = False) -> None:
        self.storage = storage
        self.hours = hours
        self.confirms_on_broadcast = autoconfirm
        self.max_outputs = max_outputs
        self._lock = threading.Lock()
        with storage.write() as txn:
            if storage.get(txn, "sender", _PREFIX + "balance") is None:
                storage.put(txn, "sender", _PREFIX + "balance", coins_droplets)
            if storage.get(txn, "sender", _PREFIX + "pending_indexed") is None:
                # Chains written before the unconfirmed index existed: index them once.
                for _, tx in list(storage.items(txn, "sender", _PREFIX + "tx/")):
                    if not tx["confirmed"]:
                        storage.put(txn, "sender", _PREFIX + f"pending/{tx['seq']:016x}",
                                    tx["seq"])
                storage.put(txn, "sender", _PREFIX + "pending_indexed", True)

    # -- Sender ------------------------------------------------------------------------------

    def balance(self) -> Balance:
        with self.storage.read() as txn:
            return Balance(coins=self.storage.get(txn, "sender", _PREFIX + "balance"),
                           hours=self.hours)

    def build(self, outputs: list[PayoutOutput], payout_id: str) -> SignedPayout:
        total = sum(o.amount for o in outputs)
        if total > self.balance().coins:
            raise InsufficientFunds("CreateTransaction not enough coins")
        body = {
            "inputs": [os.urandom(32).hex()],  # a fresh input: rebuilding would change the txid
            "outputs": [{"address": o.address, "coins": o.amount} for o in outputs],
        }
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
        txid = hashlib.sha256(raw.encode()).hexdigest()
        return SignedPayout(txid=txid, raw=raw, outputs=tuple(outputs))

    def broadcast(self, signed: SignedPayout) -> None:
        error = self.broadcast_many([signed])[0]
        if error is not None:
            raise error

    def broadcast_many(self, payouts: list[SignedPayout]) -> list[SenderError | None]:
        """Every payout in one commit, as a node takes a batch of transactions at once."""
        st = self.storage
        results: list[SenderError | None] = []
        with self._lock, st.write() as txn:
            balance = st.get(txn, "sender", _PREFIX + "balance")
            for signed in payouts:
                if st.get(txn, "sender", _PREFIX + "txid/" + signed.txid) is not None:
                    results.append(None)  # already known: the same bytes were sent before
                    continue
                total = sum(o.amount for o in signed.outputs)
                if total > balance:
                    results.append(InsufficientFunds("InjectTransaction not enough coins"))
                    continue
                balance -= total
                seq = st.next_counter(txn, "dummy_broadcasts")
                st.put(txn, "sender", _PREFIX + f"tx/{seq:016x}", {
                    "seq": seq, "txid": signed.txid, "confirmed": self.confirms_on_broadcast,
                    "outputs": [{"address": o.address, "coins": o.amount}
                                for o in signed.outputs],
                })
                st.put(txn, "sender", _PREFIX + "txid/" + signed.txid, seq)
                if not self.confirms_on_broadcast:
                    st.put(txn, "sender", _PREFIX + f"pending/{seq:016x}", seq)
                results.append(None)
            st.put(txn, "sender", _PREFIX + "balance", balance)
        return results

    def tx_state(self, signed: SignedPayout) -> TxState:
        with self.storage.read() as txn:
            tx = self._get_tx(txn, signed.txid)
        if tx is None:
            return TxState.UNKNOWN
        return TxState.CONFIRMED if tx["confirmed"] else TxState.PENDING

    # -- the dummy control API ----------------------------------------------------------------

    def _get_tx(self, txn: Any, txid: str) -> dict[str, Any] | None:
        seq = self.storage.get(txn, "sender", _PREFIX + "txid/" + txid)
        if seq is None:
            return None
        return self.storage.get(txn, "sender", _PREFIX + f"tx/{seq:016x}")

    def broadcasts(self, *, unconfirmed_only: bool = False) -> list[dict[str, Any]]:
        """Every broadcast in order, shaped like the Go dummy's /dummy/sender/broadcasts."""
        st = self.storage
        with st.read() as txn:
            if unconfirmed_only:  # the index keeps this proportional to what is pending
                rows = [st.get(txn, "sender", _PREFIX + f"tx/{seq:016x}")
                        for _, seq in st.items(txn, "sender", _PREFIX + "pending/")]
            else:
                rows = [tx for _, tx in st.items(txn, "sender", _PREFIX + "tx/")]
        return [{"txid": tx["txid"], "confirmed": tx["confirmed"],
                 "outputs": [{"address": o["address"],
                              "coins": format_units(o["coins"], SKY_DECIMALS)}
                             for o in tx["outputs"]]}
                for tx in rows]

    def confirm(self, *, txid: str | None = None, seq: int | None = None) -> bool:
        """Mark a broadcast confirmed; False if no such transaction."""
        st = self.storage

        def write(txn: Any) -> bool:
            number = seq
            if number is None:
                number = st.get(txn, "sender", _PREFIX + "txid/" + (txid or ""))
            if number is None:
                return False
            key = _PREFIX + f"tx/{number:016x}"
            tx = st.get(txn, "sender", key)
            if tx is None or tx.get("dropped"):
                return False
            tx["confirmed"] = True
            st.put(txn, "sender", key, tx)
            st.delete(txn, "sender", _PREFIX + f"pending/{number:016x}")
            return True

        return st.write_batched(write)  # many confirmations at once share one commit

    def drop(self, txid: str) -> bool:
        """Forget an unconfirmed broadcast, as a node evicting it from its mempool; its coins
        come back. False if no such unconfirmed transaction. Sending the same bytes again
        makes it a new broadcast."""
        st = self.storage
        with self._lock, st.write() as txn:
            seq = st.get(txn, "sender", _PREFIX + "txid/" + txid)
            tx = st.get(txn, "sender", _PREFIX + f"tx/{seq:016x}") if seq is not None else None
            if tx is None or tx["confirmed"]:
                return False
            tx["dropped"] = True
            st.put(txn, "sender", _PREFIX + f"tx/{seq:016x}", tx)
            st.delete(txn, "sender", _PREFIX + "txid/" + txid)
            st.delete(txn, "sender", _PREFIX + f"pending/{seq:016x}")
            balance = st.get(txn, "sender", _PREFIX + "balance")
            st.put(txn, "sender", _PREFIX + "balance",
                   balance + sum(o["coins"] for o in tx["outputs"]))
            return True
