"""The public API buyers' wallets call: /api/bind, /api/status, /api/config, /api/health.

Routes, JSON field names, statuses and plain-text errors are the Go teller's
(``reference/teller-transcript.md``), with the documented fixes: ``application/json;
charset=utf-8`` is accepted, max bound → 409, pool empty → 503, ``seq`` is stable.
Throttling, CORS and the security headers the Go teller sent are applied here too; static
files (the buyer page) come from ``web.static_dir`` when it exists.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus

from flask import Blueprint, Flask, Response, current_app, request

from addrs.validate import InvalidAddress
from common.units import format_units
from exchanger.amounts import fixed_rate_display
from ledger.status import Status
from ledger.store import BindError, BindLimitReached, PoolEmpty

from .config import resolve_path
from .context import config, services
from .http import error_response, json_body, json_response
from .jsonbody import BodyError, decode_object, string_field
from .respcache import cache_get_responses
from .throttle import Throttle, client_ip
from .web_pages import register_buyer_page

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

THROTTLED_PATHS = ("/api/bind", "/api/status", "/api/status/payouts")



def _requote(exc: UnicodeError) -> tuple[str, int]:
    """Bytes that are not UTF-8 stay percent-encoded, as werkzeug decodes request.args."""
    bad = exc.object[exc.start:exc.end]  # type: ignore[attr-defined]
    return quote(bad, safe=""), exc.end  # type: ignore[attr-defined]


codecs.register_error("teller.url_requote", _requote)
_URL_QUOTE_ERRORS = "teller.url_requote"

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "Referrer-Policy": "no-referrer",
}


def format_go_duration(seconds: float) -> str:
    """Uptime the way Go prints a time.Duration: "1h2m3.5s", "5m32s", "850ms"."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"  # float-ok: a duration, not money
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def query_param(query: str, name: str) -> str:
    """The first value of ``name`` in a query string ("" if absent), as werkzeug's args give.

    parse_qs decodes every pair into a dict; the status fast path needs one value. Bytes that
    are not UTF-8 stay percent-encoded ("%FF"), as in werkzeug, not U+FFFD.
    """
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name or (("%" in key or "+" in key) and _unquote(key) == name):
            return _unquote(value) if "%" in value or "+" in value else value
    return ""


def _unquote(text: str) -> str:
    return unquote_plus(text, errors=_URL_QUOTE_ERRORS)


public = Blueprint("public", __name__)


class PublicState:
    """What the public app keeps between requests: the throttle and the /api/status bodies."""

    def __init__(self, service: Service) -> None:
        web = service.config.web
        self.throttle = Throttle(web.throttle_max, float(web.throttle_duration))
        # receive address -> ((storage version, second), JSON body): wallets poll /api/status,
        # and the body only changes on a write or, for waiting_deposit entries, with the
        # clock second.
        self.bodies: dict[str, tuple[tuple[int, int], bytes]] = {}


def _state() -> PublicState:
    return current_app.extensions[_STATE]  # type: ignore[no-any-return]


_STATE = "teller.public"


def _receive_address(service: Service, text: str) -> str:
    """Validate the buyer's address for the payout token (Skycoin or Ethereum)."""
    return service.sender.validate_address(text)


def _address_error(service: Service, exc: InvalidAddress) -> Response:
    kind = "skycoin" if service.sender.token == "SKY" else "ethereum"
    message = str(exc)
    prefix = f"Invalid {kind} address: "
    return error_response(400, message if message.startswith(prefix) else prefix + message)


def throttle_response(service: Service, state: PublicState, remote_addr: str | None,
                      forwarded: str | None, path: str) -> Response | None:
    """The 429 answer if this client is over its limit on ``path``, else None."""
    web = service.config.web
    if path not in THROTTLED_PATHS or not state.throttle.enabled:
        return None
    ip = client_ip(remote_addr, forwarded, web.behind_proxy)
    if state.throttle.allow(ip, path):
        return None
    return error_response(429, "You have reached maximum request limit.", {
        "X-Rate-Limit-Limit": str(web.throttle_max),
        "X-Rate-Limit-Duration": f"{int(web.throttle_duration)}s",
        "X-Rate-Limit-Request-Forwarded-For": forwarded or "",
        "X-Rate-Limit-Request-Remote-Addr": remote_addr or "",
    })


def secure(service: Service, response: Response, forwarded_proto: str | None) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if service.config.web.behind_proxy and forwarded_proto == "https":
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def status_lookup(service: Service, state: PublicState, raw_address: str) -> bytes | Response:
    """The JSON body for a receive address, or the plain-text error Response."""
    sky_address = raw_address.strip(" \t\n\r")
    if not sky_address:
        return error_response(400, "Missing skyaddr")
    try:
        sky_address = _receive_address(service, sky_address)
    except InvalidAddress as exc:
        return _address_error(service, exc)
    key = (service.storage.version(), service.store.now())
    bodies = state.bodies
    cached = bodies.get(sky_address)
    if cached is not None and cached[0] == key:
        return cached[1]
    statuses = service.store.statuses_for(sky_address)
    body = json_body({"statuses": statuses} if statuses else {})
    if len(bodies) > 10_000:
        bodies.clear()
    bodies[sky_address] = (key, body)
    return body


@public.before_request
def apply_throttle() -> Response | None:
    return throttle_response(services(), _state(), request.remote_addr,
                             request.headers.get("X-Forwarded-For"), request.path)


@public.after_app_request
def add_headers(response: Response) -> Response:
    cfg = config()
    secure(services(), response, request.headers.get("X-Forwarded-Proto"))
    origin = request.headers.get("Origin")
    if origin and (origin in cfg.web.cors_allowed or "*" in cfg.web.cors_allowed):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response


def _method_not_allowed(allowed: str) -> Response:
    return error_response(405, "Invalid request method", {"Allow": allowed})


@public.route("/api/bind", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def bind() -> Response:
    if request.method == "OPTIONS":
        return Response(status=204)
    if request.method != "POST":
        return _method_not_allowed("POST")
    if request.mimetype != "application/json":
        return error_response(415, "Invalid content type")
    service = services()
    cfg = service.config
    try:
        body = decode_object(request.get_data())
        sky_address = (string_field(body, "skyaddr") or string_field(body, "address"))
        coin_type = string_field(body, "coin_type")
    except BodyError as exc:
        return error_response(400, f"Invalid json request body: {exc}")
    sky_address = sky_address.strip(" \t\n\r")
    if not sky_address:
        return error_response(400, "Missing skyaddr")
    if not coin_type:
        return error_response(400, "Missing coin_type")
    if coin_type not in cfg.deposit_coins():
        return error_response(400, "Invalid coin_type")
    if not cfg.coin_enabled(coin_type):
        return error_response(400, f"{coin_type} not enabled")
    try:
        sky_address = _receive_address(service, sky_address)
    except InvalidAddress as exc:
        return _address_error(service, exc)
    if not cfg.teller.bind_enabled:
        return error_response(403, "Address binding is disabled")
    try:
        binding = service.store.bind(coin_type, sky_address,
                                     pool_coin=cfg.pool_coin(coin_type),
                                     buy_method=cfg.sky_exchanger.buy_method,
                                     max_bound=cfg.teller.max_bound_addrs)
    except PoolEmpty as exc:
        log.error("notice=WATCH %s pool is empty: a buyer could not bind", coin_type)
        return error_response(503, str(exc))
    except BindLimitReached as exc:
        return error_response(409, str(exc))
    except BindError as exc:
        log.error("bind failed: %s", exc)
        return error_response(500, "Internal Server Error")
    log.info("bound %s %s to %s", coin_type, binding["address"], sky_address)
    service.check_pools()
    return json_response({"deposit_address": binding["address"], "coin_type": coin_type,
                          "buy_method": binding["buy_method"]})


@public.route("/api/status", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def status() -> Response:
    if request.method != "GET":
        return _method_not_allowed("GET")
    answer = status_lookup(services(), _state(),
                           request.args.get("skyaddr") or request.args.get("address") or "")
    if isinstance(answer, Response):
        return answer
    return Response(answer, status=200, content_type="application/json")


@public.route("/api/config", methods=["GET"])
def config_view() -> Response:
    return json_response(config_report(services()))


@public.route("/api/health", methods=["GET"])
def health() -> Response:
    return json_response(health_report(services()))


def init_app(app: Flask, service: Service) -> None:
    """Register the public routes on ``app``, with its throttle, the buyer page
    (``web.static_dir``, when it exists; ``teller.web_pages``) and the /api/status fast
    path."""
    cfg = service.config
    state = PublicState(service)
    app.extensions[_STATE] = state
    app.register_blueprint(public)
    static_dir = resolve_path(cfg, cfg.web.static_dir) if cfg.web.static_dir else None
    register_buyer_page(app, service, Path(static_dir) if static_dir else None)
    # /api/config and /api/health change on a write or with the clock: served from a cache of
    # at most 1 s (teller.respcache), /api/status from its own fast path.
    app.wsgi_app = cache_get_responses(  # type: ignore[method-assign,assignment]
        _status_fast_path(service, state, app.wsgi_app), ("/api/config", "/api/health"),
        version=service.storage.version)


def _status_fast_path(service: Service, state: PublicState,
                      flask_wsgi: Callable[..., Any]) -> Callable[..., Any]:
    behind_proxy = service.config.web.behind_proxy

    def status_fast_path(environ: dict[str, Any], start_response: Any) -> Any:
        """GET /api/status without Flask's dispatch: the endpoint every wallet polls.

        Same throttle, answers and headers as the Flask view above (which still serves CORS
        requests and every other method and path).
        """
        if (environ.get("PATH_INFO") != "/api/status" or environ.get("REQUEST_METHOD") != "GET"
                or "HTTP_ORIGIN" in environ):
            return flask_wsgi(environ, start_response)
        answer: bytes | Response | None = throttle_response(
            service, state, environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"),
            "/api/status")
        if answer is None:
            query = environ.get("QUERY_STRING", "")
            raw = query_param(query, "skyaddr") or query_param(query, "address")
            answer = status_lookup(service, state, raw)
        if isinstance(answer, Response):  # a 4xx: rare, built the ordinary way
            return secure(service, answer, environ.get("HTTP_X_FORWARDED_PROTO"))(
                environ, start_response)
        headers = [("Content-Type", "application/json"), *SECURITY_HEADERS.items(),
                   ("Content-Length", str(len(answer)))]
        if behind_proxy and environ.get("HTTP_X_FORWARDED_PROTO") == "https":
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        start_response("200 OK", headers)
        return [answer]

    return status_fast_path


def config_report(service: Service) -> dict[str, Any]:
    """/api/config: what a wallet needs to know before binding (the Go teller's shape)."""
    cfg = service.config
    ex = cfg.sky_exchanger
    deposits: dict[str, Any] = {}
    for coin in cfg.deposit_coins():
        rate = cfg.rate_for(coin)
        if coin == "SKY":
            display = rate or "1"
        elif rate:
            display = fixed_rate_display(rate, ex.max_decimals, service.sender.decimals)
        else:
            display = "0"
        minimum = "0"
        if ex.buy_method == "passthrough":  # the minimum the exchanger enforces
            minimum = format(cfg.passthrough.minimum_for(coin).normalize(), "f")
        elif coin == "BTC":  # the Go teller's advertised (never enforced) C2CX minimum
            minimum = format(ex.c2cx.btc_minimum_volume.normalize(), "f")
        scanner = cfg.scanner_for(cfg.pool_coin(coin))
        deposits[coin.lower()] = {
            "enabled": cfg.coin_enabled(coin),
            "confirmations_required": scanner.confirmations_required,
            "fixed_exchange_rate": display,
            "passthrough_minimum_volume": minimum,
        }
    return {
        "enabled": cfg.teller.bind_enabled,
        "buy_method": ex.buy_method,
        "max_bound_addrs": cfg.teller.max_bound_addrs,
        "max_decimals": ex.max_decimals,
        "deposits": deposits,
        "payout_token": service.sender.token,
        "settings": service.settings.view(public=True),  # new: effective value, source
    }


def health_report(service: Service) -> dict[str, Any]:
    """The Go teller's /api/health, plus per-chain scanner and address-pool detail."""
    exchanger = service.exchanger
    sender = service.sender
    warnings: list[str] = []
    try:
        balance = sender.balance()
        coins = format_units(balance.coins, sender.decimals)
        hours = str(balance.hours) if balance.hours is not None else ""
    except Exception as exc:  # noqa: BLE001 - any backend failure is shown, not raised
        coins, hours = format_units(0, sender.decimals), "0"
        warnings.append(f"sender balance unavailable: {exc}")
    scanners = {coin: scanner.health() for coin, scanner in service.scanners.items()}
    scanners.update(dummy_scanner_health(service))
    for coin, info in scanners.items():
        if not info.get("node_reachable", True):
            warnings.append(f"{coin} node unreachable: {info.get('last_error', '')}")
    warnings.extend(service.check_pools())
    if exchanger.sender_error:
        warnings.append(exchanger.sender_error)
    passthrough = exchanger.buyer.health() if exchanger.buyer is not None else None
    if passthrough is not None:
        if passthrough["venue_error"]:
            warnings.append(f"passthrough venue unreachable: {passthrough['venue_error']}")
        for reason, count in sorted(passthrough["wait_reasons"].items()):
            warnings.append(f"{count} passthrough deposit(s) waiting: {reason}")
    errored = service.store.error_count()
    needs_review = len(service.store.keys_in_status(Status.NEEDS_REVIEW))
    if needs_review:
        warnings.append(f"{needs_review} deposit(s) need operator review")
    return {
        "status": "OK",
        "application": "teller",
        "version": service.version,
        "uptime": format_go_duration(service.uptime()),
        "exchange": {
            "buy_method": service.config.sky_exchanger.buy_method,
            "processor_error": exchanger.processor_error,
            "sender_error": exchanger.sender_error,
            "deposit_error_count": errored,
            "balance": {"coins": coins, "hours": hours, "token": sender.token},
            **({"passthrough": passthrough} if passthrough is not None else {}),
        },
        "scanners": scanners,
        "address_pools": {coin: service.pool.remaining(coin) for coin in service.pool_coins()},
        "warnings": warnings,
    }


def dummy_scanner_health(service: Service) -> dict[str, Any]:
    """Coins the dummy scanner serves: "scanning" by hand through the dummy API, always up."""
    cfg = service.config
    if service.dummy_scanner is None:
        return {}
    return {coin: {"dummy": True, "node_reachable": True, "tip": None, "cursor_height": None,
                   "lag_blocks": None,
                   "confirmations_required": cfg.scanner_for(coin).confirmations_required,
                   "last_error": ""}
            for coin in ("BTC", "ETH", "LTC")
            if cfg.coin_enabled(coin) and cfg.dummy_scanner_for(coin)}
