"""The deposit statuses and the one table of transitions allowed between them.

Statuses are stored by name, so renaming one needs a storage migration. The Go teller's
vocabulary is kept (it is the public API); two statuses are new: ``cancelled`` (a chain
reorganisation removed the deposit before it was paid) and ``needs_review`` (an operator must
decide: a paid deposit vanished in a reorg, or a payout transaction is provably dead).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    # Bound, nothing seen yet. Synthesised for /api/status, never stored.
    WAITING_DEPOSIT = "waiting_deposit"
    # Recorded with the rate snapshotted; the buy method has not acted yet.
    WAITING_DECIDE = "waiting_decide"
    # Passthrough: order parameters prepared, no order placed yet.
    WAITING_PASSTHROUGH = "waiting_passthrough"
    # Passthrough: order placed, polling until it is final.
    WAITING_PASSTHROUGH_ORDER_COMPLETE = "waiting_passthrough_order_complete"
    # Ready to pay. With ``payout_id`` set, the signed payout is persisted and must be
    # (re-)broadcast as is, never rebuilt.
    WAITING_SEND = "waiting_send"
    # Payout broadcast; waiting for its confirmations.
    WAITING_CONFIRM = "waiting_confirm"
    # Final: paid and confirmed, or terminated with ``error`` set.
    DONE = "done"
    # Final unless the chain brings the deposit back: removed by a reorg before payment.
    CANCELLED = "cancelled"
    # Held for an operator; nothing happens automatically.
    NEEDS_REVIEW = "needs_review"


STORED_STATUSES = tuple(s for s in Status if s is not Status.WAITING_DEPOSIT)

# (from, to) pairs, grouped by reason. ``None`` is "no record yet".
ALLOWED_TRANSITIONS: frozenset[tuple[Status | None, Status]] = frozenset({
    # A scanner records a confirmed deposit.
    (None, Status.WAITING_DECIDE),
    # Buy methods decide.
    (Status.WAITING_DECIDE, Status.WAITING_SEND),
    (Status.WAITING_DECIDE, Status.WAITING_PASSTHROUGH),
    (Status.WAITING_PASSTHROUGH, Status.WAITING_PASSTHROUGH_ORDER_COMPLETE),
    (Status.WAITING_PASSTHROUGH_ORDER_COMPLETE, Status.WAITING_SEND),
    (Status.WAITING_PASSTHROUGH_ORDER_COMPLETE, Status.DONE),
    # Passthrough ends without buying: below the minimum volume, or too small for the venue.
    (Status.WAITING_PASSTHROUGH, Status.DONE),
    # An order that ended with nothing filled: a new attempt (new client id) may be placed.
    (Status.WAITING_PASSTHROUGH_ORDER_COMPLETE, Status.WAITING_PASSTHROUGH),
    # Paying: a zero amount ends at once, otherwise broadcast then confirm.
    (Status.WAITING_SEND, Status.DONE),
    (Status.WAITING_SEND, Status.WAITING_CONFIRM),
    (Status.WAITING_CONFIRM, Status.DONE),
    # A reorg removes a deposit that nobody has paid yet; the chain may bring it back.
    (Status.WAITING_DECIDE, Status.CANCELLED),
    (Status.WAITING_SEND, Status.CANCELLED),
    (Status.CANCELLED, Status.WAITING_DECIDE),
    # ... a passthrough deposit whose order was never placed (no intent persisted) is cancelled
    # too; one whose order is or may be placed spent the venue's money: an operator decides.
    (Status.WAITING_PASSTHROUGH, Status.CANCELLED),
    (Status.WAITING_PASSTHROUGH, Status.NEEDS_REVIEW),
    (Status.WAITING_PASSTHROUGH_ORDER_COMPLETE, Status.NEEDS_REVIEW),
    # Something an operator must look at: a payout that may have gone out, or did.
    (Status.WAITING_SEND, Status.NEEDS_REVIEW),
    (Status.WAITING_CONFIRM, Status.NEEDS_REVIEW),
    (Status.DONE, Status.NEEDS_REVIEW),
    # Operator decisions on a held deposit.
    (Status.NEEDS_REVIEW, Status.DONE),
    (Status.NEEDS_REVIEW, Status.WAITING_SEND),
    (Status.NEEDS_REVIEW, Status.CANCELLED),
})


class TransitionNotAllowed(ValueError):
    def __init__(self, old: Status | None, new: Status) -> None:
        super().__init__(f"transition not allowed: {old or 'none'} -> {new}")
        self.old, self.new = old, new


def check_transition(old: Status | None, new: Status) -> None:
    if (old, new) not in ALLOWED_TRANSITIONS:
        raise TransitionNotAllowed(old, new)

