"""Admin API routes the operator console reads, beside the Go teller's monitor routes.

``/api/overview`` (counts, accounting, health, pools, recent ERROR/WATCH events), deposit
paging/search (``/api/deposits`` with ``coin_type``, ``q``, ``offset`` or ``limit``; without
them that route keeps the Go shape), ``/api/deposits/detail``, ``/api/deposits.csv``,
``/api/deposits/daily`` and ``/api/audit``. Bad parameters are a 400 with a plain-text message.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from werkzeug.datastructures import MultiDict

from common.units import COIN_DECIMALS, format_units
from ledger import audit
from ledger.query import MAX_LIMIT, DepositFilter, DepositQuery, ScanCache
from ledger.status import STORED_STATUSES, Status

from . import events
from .http import error_response, json_response

if TYPE_CHECKING:
    from .service import Service

PAGING_PARAMS = ("coin_type", "q", "offset", "limit")
CSV_COLUMNS = ("seq", "coin_type", "deposit_id", "deposit_address", "sky_address", "status",
               "deposit_value", "conversion_rate", "sky_sent", "txid", "error", "error_kind",
               "created_at", "updated_at")


class BadParam(ValueError):
    """A query parameter the console (or an operator's curl) got wrong; the message says how."""


def coin_decimals(service: Service) -> dict[str, int]:
    out = dict(COIN_DECIMALS)
    out.update({t.symbol: t.decimals for t in service.config.eth_tokens})
    return out


def _int_param(args: MultiDict[str, str], name: str, default: int, maximum: int) -> int:
    text = args.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) > maximum:
        raise BadParam(f"Invalid {name}: an integer 0..{maximum} is expected")
    return int(text)


def parse_filter(service: Service, args: MultiDict[str, str]) -> DepositFilter:
    status = None
    if args.get("status"):
        try:
            status = Status(args["status"])
        except ValueError:
            raise BadParam("Invalid status") from None
        if status == Status.WAITING_DEPOSIT:
            raise BadParam("Invalid status")
    coin = args.get("coin_type", "")
    if coin and coin not in service.config.deposit_coins():
        raise BadParam("Invalid coin_type")
    q = args.get("q", "").strip()
    if len(q) > 200:
        raise BadParam("Invalid q: at most 200 characters")
    return DepositFilter(status=status, coin_type=coin, q=q)


def with_amounts(service: Service, record: dict[str, Any]) -> dict[str, Any]:
    """The record plus its amounts as decimal text: wei overflow a browser's JSON numbers."""
    decimals = coin_decimals(service).get(record["coin_type"], 0)
    return {**record,
            "deposit_value_text": format_units(record["deposit_value"], decimals),
            "sky_sent_text": format_units(record["sky_sent"], service.sender.decimals)}


def paged_deposits(service: Service, args: MultiDict[str, str]) -> Response | None:
    """The paged answer of ``/api/deposits`` when a paging/search parameter is given, else
    None (the route then answers the Go teller's unpaged list)."""
    if not any(name in args for name in PAGING_PARAMS):
        return None
    try:
        flt = parse_filter(service, args)
        offset = _int_param(args, "offset", 0, 10**9)
        limit = _int_param(args, "limit", 50, MAX_LIMIT) or 1
    except BadParam as exc:
        return error_response(400, str(exc))
    page = DepositQuery(service.storage, service.store).page(flt, offset, limit)
    page["deposits"] = [with_amounts(service, r) for r in page["deposits"]]
    return json_response(page)


def _csv_cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet: an error text must stay text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def csv_lines(service: Service, records: Iterator[dict[str, Any]]) -> Iterator[str]:
    decimals = coin_decimals(service)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for count, record in enumerate(records, 1):
        row = {**record,
               "deposit_value": format_units(record["deposit_value"],
                                             decimals.get(record["coin_type"], 0)),
               "sky_sent": format_units(record["sky_sent"], service.sender.decimals)}
        writer.writerow([_csv_cell(row.get(c, "")) for c in CSV_COLUMNS])
        if count % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def overview(service: Service, recent: events.RecentEvents,
             accounting_cache: ScanCache) -> dict[str, Any]:
    from .api_admin import accounting_report  # the monitor route's own figures
    from .api_public import health_report

    figures, figures_at = accounting_cache.get(service.storage.version(),
                                               lambda: accounting_report(service))
    counts: dict[str, dict[str, int]] = {}
    for (coin, status), n in service.store.counts().items():
        counts.setdefault(coin, {str(s): 0 for s in STORED_STATUSES})[status] = n
    mark = service.config.teller.addr_low_water
    pools = {coin: {"remaining": service.pool.remaining(coin), "low_water": mark,
                    "low": service.pool.remaining(coin) < mark}
             for coin in service.pool_coins()}
    return {
        "counts": counts,
        "accounting": figures,
        "accounting_at": int(figures_at),
        "health": health_report(service),
        "pools": pools,
        "events": recent.recent(),
        "decimals": {**coin_decimals(service), service.sender.token: service.sender.decimals},
        "payout_token": service.sender.token,
        "coins": service.config.deposit_coins(),
        "statuses": [str(s) for s in STORED_STATUSES],
    }


def register_console_api(app: Flask, service: Service) -> None:
    recent = events.install()
    query = DepositQuery(service.storage, service.store)  # keeps the daily table's cache
    accounting_cache = ScanCache()

    @app.errorhandler(BadParam)
    def bad_param(exc: BadParam) -> Response:
        return error_response(400, str(exc))

    @app.get("/api/overview")
    def get_overview() -> Response:
        return json_response(overview(service, recent, accounting_cache))

    @app.get("/api/deposits/detail")
    def deposit_detail() -> Response:
        key = f"{request.args.get('coin_type', '')}/{request.args.get('deposit_id', '')}"
        found = query.detail(key)
        if found is None:
            return error_response(404, "Deposit not found")
        found["deposit"] = with_amounts(service, found["deposit"])
        found["audit"], _ = audit.entries(service.storage, deposit=key)
        return json_response(found)

    @app.get("/api/deposits.csv")
    def deposits_csv() -> Response:
        flt = parse_filter(service, request.args)
        name = f"teller-deposits-{int(time.time())}.csv"
        return Response(csv_lines(service, query.iter_all(flt)),
                        content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/deposits/daily")
    def deposits_daily() -> Response:
        daily = query.daily(_int_param(request.args, "days", 30, 3660) or 1)
        decimals = coin_decimals(service)
        days = [{**d, "received_text": {c: format_units(v, decimals.get(c, 0))
                                         for c, v in d["received_value"].items()},
                 "sent_text": format_units(d["sent_value"], service.sender.decimals)}
                for d in daily["days"]]
        return json_response({"days": days, "token": service.sender.token})

    @app.get("/api/audit")
    def get_audit() -> Response:
        offset = _int_param(request.args, "offset", 0, 10**9)
        limit = _int_param(request.args, "limit", 100, MAX_LIMIT) or 1
        page, total = audit.entries(service.storage, deposit=request.args.get("deposit", ""),
                                    offset=offset, limit=limit)
        return json_response({"entries": page, "total": total, "offset": offset,
                              "limit": limit})
