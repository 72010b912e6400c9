"""The operators' admin API (``admin_panel.host``, loopback by default; access rules: access.py).

The Go teller's monitor routes with their shapes — /api/deposit-addresses, /api/deposits,
/api/deposits/errored, /api/accounting, /api/backup — with its bugs fixed (per-coin
``scanning_addresses``; ETH received counted in wei, not Gwei), plus /metrics in Prometheus
text format and /api/deposits/review, the operator's decision on a deposit held in
``needs_review``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from common.units import COIN_DECIMALS, format_units
from ledger.status import STORED_STATUSES, Status
from ledger.store import Conflict

from .access import install_admin_guard
from .http import error_response, install_error_handlers, json_response
from .jsonbody import BodyError, decode_object, string_field

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

# Deposits whose payout has (or may have) gone out: what "sent" counts.
_SENT_STATUSES = {Status.WAITING_CONFIRM, Status.DONE}

REVIEW_ACTIONS = {
    # action: (target status, what the operator asserts)
    "mark_done": (Status.DONE, "the payout reached the buyer (checked on chain)"),
    "retry": (Status.WAITING_SEND, "the old payout transaction can never confirm; pay again"),
    "cancel": (Status.CANCELLED, "the deposit will not be paid"),
}


def _coin_decimals(service: Service, coin: str) -> int:
    for token in service.config.eth_tokens:
        if token.symbol == coin:
            return token.decimals
    return COIN_DECIMALS[coin]


def accounting(service: Service) -> dict[str, Any]:
    received: dict[str, int] = {coin: 0 for coin in ("BTC", "ETH", "SKY")}
    sent = 0
    for record in service.store.all_deposits():
        status = Status(record["status"])
        if status == Status.CANCELLED:
            continue  # removed from the chain by a reorg: never received
        coin = record["coin_type"]
        received[coin] = received.get(coin, 0) + record["deposit_value"]
        if status in _SENT_STATUSES or (status == Status.NEEDS_REVIEW and record.get("txid")):
            sent += record["sky_sent"]
    return {
        "received": {coin: format_units(value, _coin_decimals(service, coin))
                     for coin, value in sorted(received.items())},
        "sent": format_units(sent, service.sender.decimals),
        "sent_token": service.sender.token,
    }


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


def create_admin_app(service: Service) -> Flask:
    cfg = service.config
    app = Flask("teller.admin", static_folder=None)
    install_error_handlers(app)
    install_admin_guard(app, service.config)

    @app.get("/api/deposit-addresses")
    def deposit_addresses() -> Response:
        result = {}
        for coin in [*("BTC", "ETH", "SKY", "LTC"), *cfg.token_symbols()]:
            pool_coin = cfg.pool_coin(coin)
            enabled = cfg.coin_enabled(coin)
            result[coin] = {
                "address_manager_enabled": enabled,
                "remaining_addresses": service.pool.remaining(pool_coin) if enabled else 0,
                "scanning_addresses": service.store.bound_addresses(coin),
                "scanning_enabled": enabled and not cfg.dummy_scanner_for(coin),
            }
        return json_response(result)

    @app.get("/api/deposits")
    def deposits() -> Response:
        status_text = request.args.get("status", "")
        status = None
        if status_text:
            try:
                status = Status(status_text)
            except ValueError:
                return error_response(400, "Invalid status")
            if status == Status.WAITING_DEPOSIT:
                return error_response(400, "Invalid status")
        return json_response({"deposits": service.store.all_deposits(status)})

    @app.get("/api/deposits/errored")
    def errored() -> Response:
        return json_response({"deposits": service.store.errored()})

    @app.get("/api/accounting")
    def get_accounting() -> Response:
        return json_response(accounting(service))

    @app.get("/api/backup")
    def backup() -> Response:
        tmpdir = tempfile.mkdtemp(prefix="teller-backup-")
        try:
            service.storage.env.copy(tmpdir, compact=True)
            path = os.path.join(tmpdir, "data.mdb")
            with open(path, "rb") as fh:
                data = fh.read()
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        name = f"teller-{int(time.time())}.mdb"
        return Response(data, content_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(len(data))})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(prometheus_metrics(service),
                        content_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/api/deposits/review")
    def review() -> Response:
        """Resolve a ``needs_review`` deposit: {"coin_type","deposit_id","action","note"}."""
        if request.mimetype != "application/json":
            return error_response(415, "Invalid content type")
        try:
            body = decode_object(request.get_data())
            coin = string_field(body, "coin_type")
            deposit_id = string_field(body, "deposit_id")
            action = string_field(body, "action")
            note = string_field(body, "note")
        except BodyError as exc:
            return error_response(400, f"Invalid json request body: {exc}")
        if action not in REVIEW_ACTIONS:
            return error_response(400, "Invalid action: use one of " +
                                  ", ".join(sorted(REVIEW_ACTIONS)))
        key = f"{coin}/{deposit_id}"
        record = service.store.get(key)
        if record is None:
            return error_response(404, "Deposit not found")
        target, meaning = REVIEW_ACTIONS[action]
        changes: dict[str, Any] = {"review_reason": "", "last_error": "",
                                   "review_note": f"{action}: {note}".strip()}
        if action == "cancel":
            changes.update({"error": note or "cancelled by operator",
                            "error_kind": "cancelled_by_operator"})
        try:
            if action == "retry":
                refusal = service.exchanger.retry_refusal(record.get("payout_id") or "")
                if refusal:
                    return error_response(409, refusal)
                updated = service.store.release_for_payment(key, changes)
            else:
                updated = service.store.transition(key, Status.NEEDS_REVIEW, target, changes)
        except Conflict as exc:
            return error_response(409, str(exc))
        log.warning("operator review of %s: %s (%s) note=%r", key, action, meaning, note)
        service.exchanger.wake()
        return json_response(updated)

    return app
