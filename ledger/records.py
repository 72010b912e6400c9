"""The shapes of the ledger's stored records: bindings, deposits and payouts.

They are TypedDicts, not classes: a record is a plain dict at run time, stored as JSON in LMDB
and returned as it is by the admin API, so the data directory and the wire format stay what
they were while mypy checks every field name and type. Field names keep the Go teller's
``DepositInfo`` JSON names; ``ledger.store`` is the only writer.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Binding(TypedDict):
    """``bindings/<COIN>/<deposit address>``: a pool address handed to a receive address."""

    sky_address: str
    address: str
    coin_type: str
    buy_method: str
    bound_at: int
    slot: int  # position among the receive address's bindings (its /api/status slot)


class DepositInfo(TypedDict):
    """The deposit as the chain showed it (the Go teller's ``Deposit`` object)."""

    coin_type: str
    address: str
    value: int  # base units of the deposited coin
    height: int
    tx: str
    n: int
    processed: bool


class PassthroughOrder(TypedDict):
    customer_id: str
    order_id: str
    completed_amount: str
    price: str
    status: str
    final: bool
    original: str


class Passthrough(TypedDict):
    exchange_name: str
    sky_bought: int
    deposit_value_spent: int
    requested_amount: str
    order: PassthroughOrder
    # What the Go teller lacked, set once a passthrough deposit has an intent:
    market: NotRequired[str]
    attempt: NotRequired[int]
    placing_at: NotRequired[int]  # when the current attempt may have been sent (0: recorded)
    fee: NotRequired[str]  # token fee paid, whole tokens
    leftover: NotRequired[int]  # deposit base units not spent by the order
    previous_orders: NotRequired[list[dict[str, Any]]]


class DepositRecord(TypedDict):
    """``deposits/<COIN>/<txid>:<n>``: one deposit and what paying it has reached."""

    seq: int
    created_at: int
    updated_at: int
    status: str  # a ledger.status.Status value
    coin_type: str
    sky_address: str
    buy_method: str
    deposit_address: str
    deposit_id: str  # "<txid>:<n>"
    txid: str  # the payout transaction that paid it ("" until signed)
    conversion_rate: str  # the rate snapshotted at first sight
    deposit_value: int
    sky_sent: int
    passthrough: Passthrough
    error: str
    error_kind: str
    deposit: DepositInfo
    block_hash: str
    payout_id: str
    attempts: int
    next_attempt_at: int
    last_error: str
    review_reason: str
    # Set only by some paths: an operator's review, a fee-bumped replacement payout.
    review_note: NotRequired[str]
    replacement_txids: NotRequired[list[str]]


class DepositChanges(TypedDict, total=False):
    """The fields a transition or a bookkeeping update may change (``status`` and
    ``updated_at`` are the store's own)."""

    txid: str
    sky_sent: int
    passthrough: Passthrough
    error: str
    error_kind: str
    deposit: DepositInfo
    block_hash: str
    payout_id: str
    attempts: int
    next_attempt_at: int
    last_error: str
    review_reason: str
    review_note: str


class PayoutRecord(TypedDict):
    """``payouts/<payout id>``: a signed payout transaction, persisted before its broadcast."""

    id: str
    status: str  # signed -> broadcast -> confirmed | needs_review
    created_at: int
    broadcast_at: int
    attempts: int
    next_attempt_at: int
    last_error: str
    deposit_keys: list[str]
    signed: dict[str, Any]  # SignedPayout.to_json() (the sender's shape)
    # Replacements (same nonce or inputs, higher fee), newest last.
    candidates: NotRequired[list[dict[str, Any]]]
    replaced_at: NotRequired[int]
    # Set when the payout closes: the txid that confirmed it, or why it is held.
    closed_at: NotRequired[int]
    txid: NotRequired[str]
    review_reason: NotRequired[str]


class PayoutChanges(TypedDict, total=False):
    """The bookkeeping fields ``DepositStore.update_payout`` may change."""

    attempts: int
    next_attempt_at: int
    last_error: str
    replaced_at: int

