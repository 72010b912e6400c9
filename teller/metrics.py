"""Prometheus text for the admin API's /metrics: deposits, payouts, sender, pools, scanners.

Read from the ledger's counters and the running parts' health; a scrape never fails because one
part (a node, the wallet) is down — that metric is left out and the rest is served.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from common.units import format_units
from ledger.status import STORED_STATUSES

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)


def prometheus_metrics(service: Service) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value}")

    counts = service.store.counts()
    errors = service.store.error_count()
    coins = sorted({c for c, _ in counts} | set(service.pool_coins()))
    metric("teller_deposits", "gauge", "Deposits by coin and status.",
           [(f'{{coin="{c}",status="{s}"}}', counts.get((c, str(s)), 0))
            for c in coins for s in STORED_STATUSES])
    metric("teller_deposit_errors", "gauge", "Deposits finished or held with an error.",
           [("", errors)])
    ex = service.exchanger
    metric("teller_payouts_broadcast_total", "counter",
           "Payout transactions accepted by the node since start.", [("", ex.payouts_broadcast)])
    metric("teller_payouts_confirmed_total", "counter",
           "Payout transactions confirmed since start.", [("", ex.payouts_confirmed)])
    metric("teller_payouts_open", "gauge", "Payouts persisted and not yet confirmed.",
           [("", service.store.open_payout_count())])
    metric("teller_sender_error", "gauge", "1 while the sender reports an error.",
           [("", int(bool(ex.sender_error)))])
    try:
        balance = service.sender.balance().coins
        metric("teller_sender_balance", "gauge",
               "Spendable hot-wallet balance in whole payout tokens.",
               [(f'{{token="{service.sender.token}"}}',
                 format_units(balance, service.sender.decimals))])
    except Exception as exc:  # noqa: BLE001 - a metric must not fail the scrape
        log.debug("balance unavailable for metrics: %s", exc)
    metric("teller_address_pool_remaining", "gauge", "Free deposit addresses per coin.",
           [(f'{{coin="{c}"}}', service.pool.remaining(c)) for c in service.pool_coins()])
    scanner_samples = []
    for coin, scanner in service.scanners.items():
        info = scanner.health()
        scanner_samples.append((f'{{coin="{coin}"}}', info.get("lag_blocks", 0)))
    metric("teller_scanner_lag_blocks", "gauge", "Blocks between the node's tip and the cursor.",
           scanner_samples)
    metric("teller_uptime_seconds", "gauge", "Seconds since start.",
           [("", int(service.uptime()))])
    return "\n".join(lines) + "\n"
