"""The operator's decision on a deposit held in ``needs_review``: mark_done, retry or cancel.

An operator asserts something only they can check (the payout reached the buyer; the old payout
can never confirm; the deposit must not be paid). ``retry`` is the one that can pay twice, so it
asks the chain first (``Exchanger.retry_refusal``) and the ledger refuses it while the old
payout is open or confirmed. Every decision is a compare-and-set from ``needs_review``.
"""

from __future__ import annotations

import logging

from ledger import audit
from ledger.records import DepositChanges, DepositRecord
from ledger.status import Status
from ledger.store import Conflict, deposit_key

from .processor import Exchanger

log = logging.getLogger(__name__)

REVIEW_ACTIONS = {
    # action: (target status, what the operator asserts)
    "mark_done": (Status.DONE, "the payout reached the buyer (checked on chain)"),
    "retry": (Status.WAITING_SEND, "the old payout transaction can never confirm; pay again"),
    "cancel": (Status.CANCELLED, "the deposit will not be paid"),
}


class ReviewError(Exception):
    """A review that cannot be applied; ``status`` is the HTTP answer, the message its text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def review_deposit(exchanger: Exchanger, coin: str, deposit_id: str, action: str,
                   note: str, *, operator: str = "",
                   remote_addr: str | None = None) -> DepositRecord:
    """Apply ``action`` to the deposit ``coin/deposit_id``; return the updated record.

    Every decision is recorded in the audit log (``ledger.audit``): an applied one in the same
    write transaction as the move, a refused one (409) on its own. ``operator`` is the name
    the operator gave; the client address is kept beside it.
    """
    if action not in REVIEW_ACTIONS:
        raise ReviewError(400, "Invalid action: use one of " + ", ".join(sorted(REVIEW_ACTIONS)))
    store = exchanger.store
    key = deposit_key(coin, deposit_id)
    record = store.get(key)
    if record is None:
        raise ReviewError(404, "Deposit not found")
    target, meaning = REVIEW_ACTIONS[action]
    changes: DepositChanges = {"review_reason": "", "last_error": "",
                               "review_note": f"{action}: {note}".strip()}
    if action == "cancel":
        changes.update({"error": note or "cancelled by operator",
                        "error_kind": "cancelled_by_operator"})
    entry = audit.entry(action=action, deposit=key, note=note, operator=operator,
                        remote_addr=remote_addr, at=store.now())
    write_audit = audit.writer(store.storage, entry)  # commits with the move
    try:
        if action == "retry":
            refusal = passthrough_retry_refusal(record) or \
                exchanger.retry_refusal(record.get("payout_id") or "")
            if refusal:
                audit.append(store.storage, entry, "refused", refusal)
                raise ReviewError(409, refusal)
            updated = store.release_for_payment(key, changes, write_audit)
        else:
            updated = store.transition(key, Status.NEEDS_REVIEW, target, changes, write_audit)
    except Conflict as exc:
        audit.append(store.storage, entry, "refused", str(exc))
        raise ReviewError(409, str(exc)) from None
    log.warning("operator review of %s: %s (%s) note=%r", key, action, meaning, note)
    exchanger.wake()
    return updated


def passthrough_retry_refusal(record: DepositRecord) -> str:
    """Why "retry" (pay what was bought) cannot apply to a passthrough deposit; "" when it can.

    Retry pays ``passthrough.sky_bought``, so it needs a final order on record. An order that
    may exist but was never recorded (a reorg while its outcome was unknown) must be looked up
    on the venue first: paying nothing, or buying again, could both be wrong.
    """
    if record.get("buy_method") != "passthrough":
        return ""
    order = (record.get("passthrough") or {}).get("order") or {}
    if order.get("final"):
        return ""
    return (f"the passthrough order of this deposit (client id {order.get('customer_id')!r}) is "
            "not recorded as final: look it up on the venue, then use mark_done or cancel")
