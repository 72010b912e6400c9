"""Who may call the admin and dummy APIs: the ``Host`` check and the admin token (issue 14).

The admin API (``admin_panel.host``) serves /api/backup and every deposit; a web page open in an
operator's browser could read it through DNS rebinding (its own name resolving to 127.0.0.1),
so every request's ``Host`` must name this server: ``admin_panel.allowed_hosts``, or by default
the bound host plus localhost, 127.0.0.1 and [::1]. Wrong Host -> 403.

The token (``admin_panel.token_file``, a file holding it, or the ``TELLER_ADMIN_TOKEN``
environment variable, which wins) is sent as ``Authorization: Bearer <token>`` and compared in
constant time; missing or wrong -> 401. It is optional on loopback (the Go teller had no auth)
and required when the admin API listens anywhere else; there a start-up warning also says that
the token crosses the network in the clear unless a TLS proxy is in front.
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import TYPE_CHECKING

from flask import Flask, Response, request

from common.netaddr import is_loopback, split_hostport

from .http import error_response
from .web_pages import is_console_asset

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

TOKEN_ENV = "TELLER_ADMIN_TOKEN"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def admin_token(config: Config) -> tuple[str, list[str]]:
    """The configured admin token ("" = none) and the problems found reading it."""
    from .config import resolve_path

    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env, []
    path = config.admin_panel.token_file
    if not path:
        return "", []
    try:
        token = resolve_path(config, path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return "", [f"admin_panel.token_file: cannot read {path}: {exc}"]
    if len(token) < 16:
        return "", [f"admin_panel.token_file: {path} must hold a token of at least 16 characters"]
    return token, []


def access_problems(config: Config) -> list[str]:
    """Config problems of the admin API's access rules (listed with every other problem)."""
    token, problems = admin_token(config)
    try:
        host = split_hostport(config.admin_panel.host)[0]
    except ValueError:
        return problems  # reported as "not host:port" by the config check
    if not token and not problems and not is_loopback(host):
        problems.append(f"admin_panel.token_file: required when admin_panel.host "
                        f"({config.admin_panel.host}) is not a loopback address (or set "
                        f"{TOKEN_ENV})")
    return problems


def _host_name(header: str) -> str:
    """The name part of a Host header, lower-case, without port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def install_host_check(app: Flask, bound_host: str, allowed: list[str]) -> None:
    """Refuse (403) requests whose Host names neither ``allowed`` nor this server."""
    names = {name.lower().strip("[]") for name in allowed} or {bound_host.lower(), *LOCAL_NAMES}

    @app.before_request
    def check_host() -> Response | None:
        if _host_name(request.headers.get("Host", "")) in names:
            return None
        return error_response(403, "Host not allowed")


def install_admin_guard(app: Flask, config: Config) -> None:
    """The Host check, then the token check, before every admin request."""
    host = split_hostport(config.admin_panel.host)[0]
    install_host_check(app, host, config.admin_panel.allowed_hosts)
    token, _ = admin_token(config)  # problems were refused at start-up (access_problems)
    if not is_loopback(host):
        log.warning("notice=WATCH the admin API listens on %s, not loopback: put a "
                    "TLS-terminating reverse proxy in front of it (the admin token is sent "
                    "with every request)", config.admin_panel.host)
    if not token:
        return
    expected = f"Bearer {token}".encode()

    @app.before_request
    def check_token() -> Response | None:
        if is_console_asset(request.path):
            return None  # the console's own files hold no data; it asks for the token itself
        given = request.headers.get("Authorization", "")
        if not given:
            return error_response(401, "admin token required", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected):
            return error_response(401, "invalid admin token", {"WWW-Authenticate": "Bearer"})
        return None
