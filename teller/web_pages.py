"""The two web pages: the buyer page on the public app and the operator console on the admin app.

Both are static files in ``web.static_dir`` (``./web``: plain ES modules and CSS, no build
step): the buyer page is the directory itself, served at ``/``; the console is its ``admin/``
folder, served at ``/`` and ``/console/...`` of the admin app only (the public app never serves
it). Besides the files, the public app gets what the buyer page needs and the Go teller's API
lacks: a QR code of the deposit address as SVG (segno) and the payout txids of a receive
address. Every HTML answer carries a Content-Security-Policy that allows only this origin, so
the pages cannot make an external request even by mistake.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import segno
from flask import Flask, Response, request, send_from_directory

from addrs.validate import InvalidAddress

from .http import error_response, json_response

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

CONSOLE_FOLDER = "admin"
# Paths of the console's files on the admin app: they hold no data, so they load without the
# admin token (the page then asks for it when the API answers 401).
CONSOLE_PATHS = ("/", "/console/")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
# A deposit address (BTC/LTC/ETH/SKY) is a short printable token; anything else is refused.
_QR_TEXT = re.compile(r"^[A-Za-z0-9:?=&.\-]{1,128}$")


def is_console_asset(path: str) -> bool:
    """True for the admin app's console files (for an auth check that must let them load)."""
    return path == "/" or path.startswith("/console/")


def _static(directory: Path, path: str) -> Response:
    response = send_from_directory(directory, path)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-cache"
    return response


def _missing(static_dir: Path | None, what: str) -> bool:
    if static_dir is not None and static_dir.is_dir():
        return False
    log.warning("web.static_dir %s is not a directory: the %s is not served at /",
                static_dir, what)
    return True


@functools.lru_cache(maxsize=1024)  # pages poll; addresses repeat
def qr_svg(text: str) -> bytes:
    """The QR code of ``text`` as a standalone SVG document."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=6, border=2, dark="#111",
                                     light="#fff", xmldecl=False, title=text)
    return out.getvalue()


def register_buyer_page(app: Flask, service: Service, static_dir: Path | None) -> None:
    """``/`` and the page's files (not the console), ``/api/qr.svg``, ``/api/status/payouts``."""

    @app.get("/api/qr.svg")
    def qr() -> Response:
        text = request.args.get("data", "")
        if not _QR_TEXT.match(text):
            return error_response(400, "Invalid data: a deposit address is expected")
        return Response(qr_svg(text), content_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})

    @app.get("/api/status/payouts")
    def status_payouts() -> Response:
        """{"payouts": [{"seq", "txid"}]}: the payout txid of each /api/status entry that has
        one, by the same ``seq`` (the Go teller's status entries carry no txid)."""
        raw = (request.args.get("skyaddr") or "").strip(" \t\n\r")
        if not raw:
            return error_response(400, "Missing skyaddr")
        try:
            address = service.sender.validate_address(raw)
        except InvalidAddress as exc:  # the wording of /api/status's own answer
            kind = "skycoin" if service.sender.token == "SKY" else "ethereum"
            prefix = f"Invalid {kind} address: "
            message = str(exc)
            return error_response(400, message if message.startswith(prefix) else prefix + message)
        return json_response({"payouts": service.store.payout_txids(address)})

    if _missing(static_dir, "buyer page"):
        return
    assert static_dir is not None

    @app.route("/", defaults={"path": "index.html"})
    @app.route("/<path:path>")
    def static_files(path: str) -> Response:
        if path.split("/", 1)[0] == CONSOLE_FOLDER:
            return error_response(404, "404 page not found")
        return _static(static_dir, path)


def register_console(app: Flask, static_dir: Path | None) -> None:
    """The operator console at ``/`` (``admin/index.html``) and ``/console/<file>``."""
    console = static_dir / CONSOLE_FOLDER if static_dir is not None else None
    if _missing(console, "operator console"):
        return
    assert console is not None

    @app.get("/")
    def console_index() -> Response:
        return _static(console, "index.html")

    @app.get("/console/<path:path>")
    def console_files(path: str) -> Response:
        return _static(console, path)

    @app.after_request
    def console_headers(response: Response) -> Response:
        if is_console_asset(request.path):
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
