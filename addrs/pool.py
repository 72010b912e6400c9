"""Deposit-address pools in LMDB: load, allocate in order, report what is left.

An address enters a coin's pool once (from the configured file at start-up, or from
``teller tool addaddresses`` at any time, even while the teller runs) and is handed out at most
once, in the order it was added. ``take`` runs inside the caller's write transaction so that
taking an address, binding it and starting to watch it commit together: a failed bind never
consumes an address, and two concurrent binds can never get the same one.

Keys: ``addr_free`` holds ``<COIN>/<seq:016x> -> address`` (the free list, in hand-out order);
``addr_known`` holds ``<COIN>/<address> -> {"seq", "used"}`` (every address ever loaded).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddResult:
    added: int  # new addresses appended to the free list
    already_known: int  # addresses that were loaded before (free or used): left as they are


class AddressPool:
    """All coins' pools in one storage environment."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage

    def add(self, coin: str, addresses: Iterable[str], txn: Any = None) -> AddResult:
        """Append addresses not seen before to ``coin``'s free list, in the given order."""
        if txn is None:
            with self.storage.write() as txn:
                return self.add(coin, addresses, txn)
        st = self.storage
        added = known = 0
        for address in addresses:
            known_key = f"{coin}/{address}"
            if st.get(txn, "addr_known", known_key) is not None:
                known += 1
                continue
            seq = st.next_counter(txn, f"addr_seq/{coin}")
            st.put(txn, "addr_known", known_key, {"seq": seq, "used": False})
            st.put(txn, "addr_free", f"{coin}/{seq:016x}", address)
            added += 1
        if added:
            self._adjust_free(txn, coin, added)
        return AddResult(added, known)

    def _adjust_free(self, txn: Any, coin: str, delta: int) -> None:
        key = f"addr_free_count/{coin}"
        self.storage.put(txn, "meta", key, (self.storage.get(txn, "meta", key) or 0) + delta)

    def take(self, txn: Any, coin: str) -> str | None:
        """Remove and return the next free address of ``coin`` (None when the pool is empty)."""
        st = self.storage
        prefix = f"{coin}/"
        for key, address in st.items(txn, "addr_free", prefix):
            st.delete(txn, "addr_free", key)
            known_key = f"{coin}/{address}"
            entry = st.get(txn, "addr_known", known_key) or {}
            entry["used"] = True
            st.put(txn, "addr_known", known_key, entry)
            self._adjust_free(txn, coin, -1)
            return address
        return None

    def remaining(self, coin: str, txn: Any = None) -> int:
        if txn is None:
            with self.storage.read() as txn:
                return self.remaining(coin, txn)
        return self.storage.get(txn, "meta", f"addr_free_count/{coin}") or 0

    def used(self, coin: str) -> set[str]:
        """Every address of ``coin`` already handed out."""
        with self.storage.read() as txn:
            return {key.split("/", 1)[1]
                    for key, entry in self.storage.items(txn, "addr_known", f"{coin}/")
                    if entry.get("used")}

    def known(self, coin: str, address: str) -> dict[str, Any] | None:
        with self.storage.read() as txn:
            return self.storage.get(txn, "addr_known", f"{coin}/{address}")
