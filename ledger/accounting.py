"""What the teller received and sent, from the deposit records (``/api/accounting``).

Counted from the records themselves, not from counters, so the figures always agree with
``/api/deposits``: a deposit a reorg cancelled was never received; a payout counts as sent once
it may have gone out (broadcast, confirmed, or held for review with a transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypedDict

from common.units import format_units

from .status import Status
from .store import DepositStore

# Deposits whose payout has (or may have) gone out: what "sent" counts.
_SENT_STATUSES = {Status.WAITING_CONFIRM, Status.DONE}


class Accounting(TypedDict):
    received: dict[str, str]  # coin -> whole coins received
    sent: str  # whole payout tokens sent
    sent_token: str


def accounting(store: DepositStore, coin_decimals: Callable[[str], int],
               sent_decimals: int, sent_token: str,
               coins: Iterable[str] = ("BTC", "ETH", "SKY")) -> Accounting:
    """The Go teller's accounting shape: ``received`` per coin (every coin in ``coins`` listed,
    zero or not), ``sent`` in whole payout tokens, and ``sent_token``."""
    received: dict[str, int] = {coin: 0 for coin in coins}
    sent = 0
    for record in store.all_deposits():
        status = Status(record["status"])
        if status == Status.CANCELLED:
            continue  # removed from the chain by a reorg: never received
        coin = record["coin_type"]
        received[coin] = received.get(coin, 0) + record["deposit_value"]
        if status in _SENT_STATUSES or (status == Status.NEEDS_REVIEW and record.get("txid")):
            sent += record["sky_sent"]
    return {
        "received": {coin: format_units(value, coin_decimals(coin))
                     for coin, value in sorted(received.items())},
        "sent": format_units(sent, sent_decimals),
        "sent_token": sent_token,
    }
