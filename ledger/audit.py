"""The operators' audit log: who did what to which deposit, and when, kept in LMDB.

Entries live in the ``audit`` named database under ``<seq:016x>`` (append-only, never
rewritten). A review decision that moves a deposit writes its entry in the same write
transaction as the move (``writer`` is passed to the store's compare-and-set), so a committed
decision always has its entry and a refused one changes nothing but its own "refused" entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.storage import loads

from .records import DepositRecord

DB = "audit"
MAX_NAME = 100  # an operator's name is a label, not a document


def entry(*, action: str, deposit: str, note: str, operator: str, remote_addr: str | None,
          at: int) -> dict[str, Any]:
    """An audit entry before its outcome is known. ``operator`` is the name the console sends
    (the admin token does not name a person); the client address is recorded beside it."""
    return {"at": at, "action": action, "deposit": deposit, "note": note,
            "who": {"operator": operator[:MAX_NAME] or "unnamed",
                    "remote_addr": remote_addr or ""},
            "outcome": "", "detail": ""}


def _put(storage: Any, txn: Any, item: dict[str, Any]) -> dict[str, Any]:
    seq = storage.next_counter(txn, "audit_seq")
    stored = {**item, "seq": seq}
    storage.put(txn, DB, f"{seq:016x}", stored)
    return stored


def writer(storage: Any, item: dict[str, Any]) -> Callable[[Any, DepositRecord], None]:
    """``also`` for DepositStore.transition/release_for_payment: the entry of a done action."""

    def write(txn: Any, updated: DepositRecord) -> None:
        _put(storage, txn, {**item, "outcome": "done",
                            "detail": f"status is now {updated['status']}"})

    return write


def append(storage: Any, item: dict[str, Any], outcome: str, detail: str) -> dict[str, Any]:
    """Record an action on its own (a refused one: nothing else is written)."""
    with storage.write() as txn:
        return _put(storage, txn, {**item, "outcome": outcome, "detail": detail})


def entries(storage: Any, *, deposit: str = "", offset: int = 0,
            limit: int = 100) -> tuple[list[dict[str, Any]], int]:
    """Newest first, optionally of one deposit key; returns (page, total matching)."""
    out: list[dict[str, Any]] = []
    total = 0
    with storage.read() as txn:
        cursor = txn.cursor(db=storage.db(DB))
        if not cursor.last():
            return [], 0
        for _, raw in cursor.iterprev():
            item = loads(raw)
            if deposit and item["deposit"] != deposit:
                continue
            if offset <= total < offset + limit:
                out.append(item)
            total += 1
    return out, total
