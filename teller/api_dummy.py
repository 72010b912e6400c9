"""The dummy API (``dummy.http_addr``): inject deposits and confirm payouts by hand.

Parameters, validation messages and answers are the Go teller's (``reference/teller.md``
§6.6); the difference is that a 200 from /dummy/scanner/deposit means the deposit is already
persisted, and the dummy sender's broadcasts survive restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, request

from common.netaddr import split_hostport
from scanner.dummy import DummyDepositError
from sender.dummy import DummySender

from .access import install_host_check
from .context import services
from .http import error_response, json_response

if TYPE_CHECKING:
    from .service import Service

_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
# The deposit id "<tx>:<n>" is part of an LMDB key, which holds at most 511 bytes.
_MAX_TX_BYTES = 256


def _param(name: str) -> str:
    return (request.values.get(name) or "").strip()


def _number(name: str, default: str = "") -> int | Response:
    """A required unsigned parameter, or the Go teller's "<name> required"/"invalid <name>"."""
    text = _param(name) or default
    if not text:
        return error_response(400, f"{name} required")
    value = _uint(text)
    return error_response(400, f"invalid {name}") if value is None else value


def _uint(text: str, limit: int = _UINT64_MAX) -> int | None:
    """ASCII decimal digits within ``limit`` (as Go's strconv.ParseUint), else None."""
    digits = text.lstrip("0") or "0"  # int() refuses more than 4300 digits: check length first
    if not text.isascii() or not text.isdigit() or len(digits) > len(str(limit)):
        return None
    value = int(digits)
    return None if value > limit else value


def scanner_deposit() -> Response:
    service = services()
    cfg = service.config
    addr = _param("addr")
    if not addr:
        return error_response(400, "addr required")
    value = _number("value")
    if isinstance(value, Response):
        return value
    height = _number("height")
    if isinstance(height, Response):
        return height
    tx = _param("tx")
    if not tx:
        return error_response(400, "tx required")
    if len(tx.encode()) > _MAX_TX_BYTES:
        return error_response(400, "invalid tx")
    n = _number("n", default="0")
    if isinstance(n, Response):
        return n
    if n > _UINT32_MAX:
        return error_response(400, "n too large")
    coin = _param("coin") or "BTC"
    if coin not in cfg.deposit_coins():
        return error_response(400, "invalid coin")
    if not cfg.coin_enabled(coin) or not cfg.dummy_scanner_for(coin):
        return error_response(400, f"{coin} is not served by the dummy scanner")
    assert service.dummy_scanner is not None  # registered only with a dummy scanner
    try:
        service.dummy_scanner.deposit(coin, addr, value, height, tx, n)
    except DummyDepositError as exc:
        return error_response(400, str(exc))
    return Response("", status=200, content_type="text/plain; charset=utf-8")


def _dummy_sender() -> DummySender:
    sender = services().sender
    assert isinstance(sender, DummySender)  # registered only with the dummy sender
    return sender


def broadcasts() -> Response:
    # ?confirmed=false (an extension) lists only what still needs confirming.
    unconfirmed = request.args.get("confirmed", "").lower() == "false"
    return json_response(_dummy_sender().broadcasts(unconfirmed_only=unconfirmed))


def confirm() -> Response:
    txid, seq_text = _param("txid"), _param("seq")
    if not txid and not seq_text:
        return error_response(400, "txid or seq required")
    seq = None
    if seq_text:
        seq = _uint(seq_text)
        if seq is None:
            return error_response(400, "invalid seq")
    if not _dummy_sender().confirm(txid=txid or None, seq=seq):
        return error_response(404, "txn not found")
    services().exchanger.wake_confirmations(txid or None)
    return Response("", status=200, content_type="text/plain; charset=utf-8")


def init_app(app: Flask, service: Service) -> None:
    """Register what this teller has of the dummy API: the scanner route only with a dummy
    scanner, the sender routes only with the dummy sender (else they are 404s, as in Go)."""
    install_host_check(app, split_hostport(service.config.dummy.http_addr)[0], [])
    bp = Blueprint("dummy", __name__)  # per app: which routes exist depends on the service
    if service.dummy_scanner is not None:
        bp.add_url_rule("/dummy/scanner/deposit", "scanner_deposit", scanner_deposit,
                        methods=["GET", "POST"])
    if isinstance(service.sender, DummySender):
        bp.add_url_rule("/dummy/sender/broadcasts", "broadcasts", broadcasts, methods=["GET"])
        bp.add_url_rule("/dummy/sender/confirm", "confirm", confirm, methods=["GET", "POST"])
    app.register_blueprint(bp)
