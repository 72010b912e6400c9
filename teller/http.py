"""Serving the teller's Flask apps with waitress, in threads, with a clean stop.

Also the response conventions every teller HTTP surface shares (the Go teller's ``httputil``):
a 200 is pretty-printed JSON, anything else a plain-text message plus a newline — including
the 404s, 405s and 500s Flask would otherwise render as HTML (``install_error_handlers``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import waitress
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

log = logging.getLogger(__name__)

# waitress logs a WARNING for every queued request under load; it is not a problem.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


# Every request body the APIs take (a bind, a review, a dummy deposit) is well under 1 KiB.
MAX_BODY_BYTES = 1 << 20


def json_body(data: Any) -> bytes:
    """Pretty-printed JSON plus a newline, as the Go teller's JSON responses."""
    return (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode()


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json_body(data), status=status, content_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8",
                    headers=headers or {})


def install_error_handlers(app: Flask, method_not_allowed: str = "Method Not Allowed") -> None:
    """Plain-text bodies for Flask's own errors, as Go's ``http.Error``/``http.NotFound`` give.

    404 is Go's ``404 page not found``; 405 carries ``Allow`` and ``method_not_allowed`` (the
    public API's ``Invalid request method``, the admin API's status text); a body over
    ``MAX_BODY_BYTES`` is ``413 Request Entity Too Large`` before it is read into memory; an
    unexpected exception is logged with the method and path and answered
    ``Internal Server Error``.
    """
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if isinstance(exc, NotFound):
            return error_response(404, "404 page not found")
        if isinstance(exc, MethodNotAllowed):
            allowed = ", ".join(exc.valid_methods or [])
            return error_response(405, method_not_allowed, {"Allow": allowed})
        return error_response(exc.code or 500, exc.name)

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Response:
        log.error("%s %s failed: %r", request.method, request.path, exc, exc_info=exc)
        return error_response(500, "Internal Server Error")


def split_hostport(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class Server:
    """One waitress server on ``host:port`` (port 0 picks a free one) in a daemon thread.

    ``stop`` closes the sockets from the server's own thread: closing them under its running
    ``select`` makes the loop die with EBADF.
    """

    def __init__(self, app: Callable[..., Any], addr: str, name: str,
                 threads: int = 16) -> None:
        host, port = split_hostport(addr)
        self.name = name
        # Proxy headers (X-Forwarded-For/-Proto) reach the app untouched: waitress strips them
        # by default, which would make web.behind_proxy inert. The public app trusts them only
        # when behind_proxy is set; no other app reads them.
        try:
            self._server = waitress.create_server(app, host=host, port=port, threads=threads,
                                                  ident="teller", channel_timeout=60,
                                                  clear_untrusted_proxy_headers=False)
        except OSError as exc:  # name the address: "Address already in use" alone says nothing
            raise OSError(exc.errno, f"{name} API cannot listen on {addr}: "
                                     f"{exc.strerror or exc}") from None
        self.host = host
        self.port: int = self._server.effective_port
        self._thread = threading.Thread(target=self._server.run, name=f"http-{name}",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        log.info("%s API listening on %s", self.name, self.url)

    def stop(self, timeout: float = 5.0) -> None:
        server = self._server
        server.task_dispatcher.shutdown(timeout=timeout)

        def close_all() -> None:
            for channel in list(server._map.values()):
                channel.close()

        try:
            server.trigger.pull_trigger(close_all)
        except OSError:  # the trigger is closed: the loop has already ended
            close_all()
        self._thread.join(timeout)
        if self._thread.is_alive():  # the loop did not run our thunk in time: close from here
            close_all()
            self._thread.join(timeout)
