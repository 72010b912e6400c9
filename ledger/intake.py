"""The ledger as scanners see it: watched addresses in, chain events out.

A scanner may ask which deposit addresses to watch, report deposits the chain shows, and report
blocks that left the chain — nothing else. What a deposit buys (the rate snapshot taken at first
sight, the state machine after it) is the ledger's and the exchanger's business, so scanners
never import either's internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .records import DepositRecord
from .status import Status
from .store import Deposit, DepositStore, NoBinding

log = logging.getLogger(__name__)


class DepositIntake:
    """The narrow "watched / record / orphan" view of a :class:`DepositStore`."""

    def __init__(self, store: DepositStore) -> None:
        self._store = store

    def watched(self, coin: str) -> set[str]:
        """Deposit addresses bound for ``coin`` (a live set; cheap to call every block)."""
        return self._store.watched(coin)

    def record(self, dep: Deposit) -> tuple[DepositRecord, bool]:
        """Record one deposit (idempotent by ``txid:n``); raises ``NoBinding`` for an address
        nobody bound. Returns (record, created)."""
        return self._store.record_deposit(dep)

    def record_all(self, deposits: Iterable[Deposit]) -> None:
        """Record what a scanned block holds; an unbound address is logged, not fatal."""
        for dep in deposits:
            try:
                _, created = self.record(dep)
            except NoBinding:
                log.error("deposit %s to %s %s seen but the address is not bound",
                          dep.key, dep.coin_type, dep.address)
                continue
            if created:
                log.info("deposit %s: %d base units to %s at height %d", dep.key, dep.value,
                         dep.address, dep.height)

    def orphan(self, coin: str, block_hashes: Iterable[str], reason: str) -> list[str]:
        """Deposits of ``coin`` from blocks that left the chain: unpaid ones are cancelled,
        ones whose payout may have gone out are held for review (logged notice=WATCH)."""
        changed = self._store.orphan_deposits(coin, block_hashes, reason)
        for key in changed:
            record = self._store.get(key)
            if record is not None and record["status"] == Status.NEEDS_REVIEW:
                log.error("notice=WATCH deposit %s was paid or is being paid but its block "
                          "left the chain: held in needs_review (%s)", key, reason)
            else:
                log.warning("deposit %s cancelled: %s", key, reason)
        return changed
