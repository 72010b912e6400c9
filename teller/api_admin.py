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
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, request

from common.units import COIN_DECIMALS
from exchanger.review import ReviewError, review_deposit
from ledger.accounting import Accounting, accounting
from ledger.status import Status

from .access import install_admin_guard
from .api_settings import register_settings_routes
from .config import resolve_path
from .console_api import paged_deposits, register_console_api
from .context import services
from .http import error_response, json_response
from .jsonbody import BodyError, decode_object, string_field
from .metrics import prometheus_metrics
from .web_pages import register_console

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)


def _coin_decimals(service: Service, coin: str) -> int:
    for token in service.config.eth_tokens:
        if token.symbol == coin:
            return token.decimals
    return COIN_DECIMALS[coin]


def accounting_report(service: Service) -> Accounting:
    return accounting(service.store, lambda coin: _coin_decimals(service, coin),
                      service.sender.decimals, service.sender.token)


admin = Blueprint("admin", __name__)


@admin.get("/api/deposit-addresses")
def deposit_addresses() -> Response:
    service = services()
    cfg = service.config
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


@admin.get("/api/deposits")
def deposits() -> Response:
    service = services()
    paged = paged_deposits(service, request.args)  # coin_type/q/offset/limit given
    if paged is not None:
        return paged
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


@admin.get("/api/deposits/errored")
def errored() -> Response:
    return json_response({"deposits": services().store.errored()})


@admin.get("/api/accounting")
def get_accounting() -> Response:
    return json_response(accounting_report(services()))


@admin.get("/api/backup")
def backup() -> Response:
    tmpdir = tempfile.mkdtemp(prefix="teller-backup-")
    try:
        services().storage.env.copy(tmpdir, compact=True)
        path = os.path.join(tmpdir, "data.mdb")
        with open(path, "rb") as fh:
            data = fh.read()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    name = f"teller-{int(time.time())}.mdb"
    return Response(data, content_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(len(data))})


@admin.get("/metrics")
def metrics() -> Response:
    return Response(prometheus_metrics(services()),
                    content_type="text/plain; version=0.0.4; charset=utf-8")


@admin.post("/api/deposits/review")
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
        operator = string_field(body, "operator")
    except BodyError as exc:
        return error_response(400, f"Invalid json request body: {exc}")
    try:
        updated = review_deposit(services().exchanger, coin, deposit_id, action, note,
                                 operator=operator, remote_addr=request.remote_addr)
    except ReviewError as exc:
        return error_response(exc.status, str(exc))
    return json_response(updated)


def init_app(app: Flask, service: Service) -> None:
    """Register the admin routes on ``app``, the console's API and the console's pages, all
    behind the admin guard (Host check, token)."""
    install_admin_guard(app, service.config)
    app.register_blueprint(admin)
    register_settings_routes(app, service)
    register_console_api(app, service)
    cfg = service.config
    web = cfg.web.static_dir
    register_console(app, resolve_path(cfg, web) if web else None)
