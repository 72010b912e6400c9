"""What the teller received and sent, from the deposit records (``/api/accounting``).

Counted from the records themselves, not from counters, so the figures always agree with
``/api/deposits``: a deposit a reorg cancelled was never received; a payout counts as sent once
it may have gone out (broadcast, confirmed, or held for review with a transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from common.units import format_units

from .records import DepositRecord
from .status import Status
from .store import DepositStore

# Deposits whose payout has (or may have) gone out: what "sent" counts.
_SENT_STATUSES = {Status.WAITING_CONFIRM, Status.DONE}


class Accounting(TypedDict):
    received: dict[str, str]  # coin -> whole coins received
    sent: str  # whole payout tokens sent
    sent_token: str
    passthrough: NotRequired[dict[str, Any]]  # venue -> coin -> orders, spent, bought, ...


def accounting(store: DepositStore, coin_decimals: Callable[[str], int],
               sent_decimals: int, sent_token: str,
               coins: Iterable[str] = ("BTC", "ETH", "SKY")) -> Accounting:
    """The Go teller's accounting shape: ``received`` per coin (every coin in ``coins`` listed,
    zero or not), ``sent`` in whole payout tokens, and ``sent_token``."""
    received: dict[str, int] = {coin: 0 for coin in coins}
    sent = 0
    venues: dict[str, dict[str, dict[str, Any]]] = {}
    for record in store.all_deposits():
        status = Status(record["status"])
        _add_passthrough(venues, record)  # an order spent the venue's money, reorg or not
        if status == Status.CANCELLED:
            continue  # removed from the chain by a reorg: never received
        coin = record["coin_type"]
        received[coin] = received.get(coin, 0) + record["deposit_value"]
        if status in _SENT_STATUSES or (status == Status.NEEDS_REVIEW and record.get("txid")):
            sent += record["sky_sent"]
    out: Accounting = {
        "received": {coin: format_units(value, coin_decimals(coin))
                     for coin, value in sorted(received.items())},
        "sent": format_units(sent, sent_decimals),
        "sent_token": sent_token,
    }
    if venues:
        out["passthrough"] = {
            venue: {coin: {"orders": t["orders"],
                           "spent": format_units(t["spent"], coin_decimals(coin)),
                           "leftover": format_units(t["leftover"], coin_decimals(coin)),
                           "bought": format_units(t["bought"], sent_decimals),
                           "fees": format(t["fees"].normalize(), "f")}
                    for coin, t in sorted(coins_.items())}
            for venue, coins_ in sorted(venues.items())}
    return out


def _add_passthrough(venues: dict[str, dict[str, dict[str, Any]]],
                     record: DepositRecord) -> None:
    """Per venue and coin: coin spent and left over, token bought (after fees, base units of
    the payout token) and fees (in the token), over every order recorded as final."""
    pt = record.get("passthrough") or {}
    if not pt.get("order", {}).get("final"):
        return
    totals = venues.setdefault(pt["exchange_name"], {}).setdefault(
        record["coin_type"], {"orders": 0, "spent": 0, "leftover": 0, "bought": 0,
                              "fees": Decimal(0)})
    totals["orders"] += 1
    totals["spent"] += pt["deposit_value_spent"]
    totals["leftover"] += pt.get("leftover", 0)
    totals["bought"] += pt["sky_bought"]
    totals["fees"] += Decimal(pt.get("fee") or 0)
