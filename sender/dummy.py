"""The dummy sender: a pretend Skycoin wallet whose "chain" lives in the data directory.

Unlike the Go teller's in-memory dummy, broadcasts survive a restart, so a restarted teller in
dummy mode sees the same chain it left and crash tests mean something: rebroadcasting a known
txid is "already known" (success), never a second payment. It starts with ``dummy.sender_coins``
SKY and ``dummy.sender_hours`` hours and answers "not enough coins" past its balance, as the Go
dummy does. Transactions are confirmed by hand through the dummy HTTP API.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Any

from exchanger.amounts import SKY_DECIMALS, format_units

from .base import Balance, InsufficientFunds, PayoutOutput, Sender, SignedPayout, TxState

_PREFIX = "dummy/"


class DummySender(Sender):
    name = "dummy"
    token = "SKY"
    decimals = SKY_DECIMALS

    def __init__(self, storage: Any, *, coins_droplets: int, hours: int,
                 max_outputs: int = 1) -> None:
        self.storage = storage
        self.hours = hours
        self.max_outputs = max_outputs
        self._lock = threading.Lock()
        with storage.write() as txn:
            if storage.get(txn, "sender", _PREFIX + "balance") is None:
                storage.put(txn, "sender", _PREFIX + "balance", coins_droplets)

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
        st = self.storage
        with self._lock, st.write() as txn:
            if st.get(txn, "sender", _PREFIX + "txid/" + signed.txid) is not None:
                return  # already known: the same bytes were sent before
            balance = st.get(txn, "sender", _PREFIX + "balance")
            total = sum(o.amount for o in signed.outputs)
            if total > balance:
                raise InsufficientFunds("InjectTransaction not enough coins")
            seq = st.next_counter(txn, "dummy_broadcasts")
            st.put(txn, "sender", _PREFIX + "balance", balance - total)
            st.put(txn, "sender", _PREFIX + f"tx/{seq:016x}", {
                "seq": seq, "txid": signed.txid, "confirmed": False,
                "outputs": [{"address": o.address, "coins": o.amount} for o in signed.outputs],
            })
            st.put(txn, "sender", _PREFIX + "txid/" + signed.txid, seq)

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
        with self.storage.read() as txn:
            rows = [tx for _, tx in self.storage.items(txn, "sender", _PREFIX + "tx/")
                    if not (unconfirmed_only and tx["confirmed"])]
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
            if tx is None:
                return False
            tx["confirmed"] = True
            st.put(txn, "sender", key, tx)
            return True

        return st.write_batched(write)  # many confirmations at once share one commit
