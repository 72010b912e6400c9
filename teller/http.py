"""Serving the teller's Flask apps with granian (a Rust HTTP server) in threads, and its guards.

Also the response conventions every teller HTTP surface shares (the Go teller's ``httputil``):
a 200 is pretty-printed JSON, anything else a plain-text message plus a newline — including
the 404s, 405s and 500s Flask would otherwise render as HTML (``install_error_handlers``).

Why granian, not waitress (issue 14, measured with bench/api.py): waitress parses HTTP and runs
its connection loop in Python, which capped /api/status at ~4,900 req/s and /api/config at
~2,300 on this machine, and its 100-connection limit let 100 idle sockets lock everyone out.
granian's HTTP layer (hyper on tokio) holds thousands of idle connections for free, drops a
client that is slow to send its headers, answers ``Expect: 100-continue`` only when the app
reads a body, and calls the WSGI app on a small pool of Python threads.

What granian leaves to us (``BodyGuard``): it calls the app *before* the body has arrived, and
a read of ``wsgi.input`` blocks until the client sends it. So a body is read here, before the
app runs: refused from ``Content-Length`` when it announces more than ``MAX_BODY_BYTES``, and
at most ``BODY_READS_PER_IP`` reads in flight per client address and ``BODY_READS_TOTAL`` in
all, half the Python threads, so slowly dripping bodies can never hold the threads that every
GET needs (past a cap: 503 at once). There is no body deadline: granian cannot abandon a
pending read (answering while one is pending blocks its thread with the GIL held), so a read
ends when the body is complete or the client goes; a reverse proxy's body timeout (nginx
``client_body_timeout``) bounds it in production.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from common.netaddr import split_hostport

log = logging.getLogger(__name__)


# Every request body the APIs take (a bind, a review, a dummy deposit) is well under 1 KiB.
MAX_BODY_BYTES = 1 << 20
# Python threads running the apps, per server (an idle one costs memory, not CPU).
APP_THREADS = 64
# Bodies being received at once per server: per client address, and in all.
BODY_READS_PER_IP = 8
BODY_READS_TOTAL = APP_THREADS // 2
# A client must send its request headers within this many milliseconds (granian's timer).
HEADER_READ_TIMEOUT_MS = 10_000
# Connections one server handles at once (granian's "backpressure": past it, new connections
# wait in the kernel's accept queue). Idle ones cost a descriptor and a few KiB, no thread.
MAX_CONNECTIONS = 8192


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


def _plain(start_response: Callable[..., Any], status: str, message: str,
           headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    body = (message + "\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *headers])
    return [body]


class BodyGuard:
    """WSGI middleware: the request body, whole and bounded, before the app sees the request."""

    def __init__(self, max_bytes: int = MAX_BODY_BYTES, per_ip: int = BODY_READS_PER_IP,
                 total: int = BODY_READS_TOTAL) -> None:
        self.max_bytes, self.per_ip, self.total = max_bytes, per_ip, total
        self._lock = threading.Lock()
        self._reading: Counter[str] = Counter()
        self._in_flight = 0

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            length_text = environ.get("CONTENT_LENGTH") or ""
            chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            if not length_text and not chunked:
                environ["wsgi.input"] = io.BytesIO(b"")
                return app(environ, start_response)
            length = -1
            if length_text:
                if not length_text.isdigit():
                    return _plain(start_response, "400 Bad Request", "Invalid Content-Length")
                if len(length_text) > 12 or int(length_text) > self.max_bytes:
                    # from the header alone: nothing of the body is read
                    return _plain(start_response, "413 Request Entity Too Large",
                                  "Request Entity Too Large", [("Connection", "close")])
                length = int(length_text)
            body = self._read(environ, length) if length else b""
            if isinstance(body, tuple):
                return _plain(start_response, *body, [("Connection", "close")])
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            return app(environ, start_response)

        return guarded

    def _read(self, environ: dict[str, Any], length: int) -> bytes | tuple[str, str]:
        ip = environ.get("REMOTE_ADDR") or ""
        with self._lock:
            if self._reading[ip] >= self.per_ip or self._in_flight >= self.total:
                return "503 Service Unavailable", "Too many request bodies in progress"
            self._reading[ip] += 1
            self._in_flight += 1
        try:
            body = self._read_all(environ["wsgi.input"],
                                  length if length >= 0 else self.max_bytes + 1)
        except OSError:
            return "400 Bad Request", "Request body could not be read"
        finally:
            with self._lock:
                self._in_flight -= 1
                self._reading[ip] -= 1
                if self._reading[ip] <= 0:
                    del self._reading[ip]
        if len(body) > self.max_bytes:
            return "413 Request Entity Too Large", "Request Entity Too Large"
        if length >= 0 and len(body) < length:
            return "400 Bad Request", "Request body shorter than Content-Length"
        return body

    @staticmethod
    def _read_all(stream: Any, size: int) -> bytes:
        parts, got = [], 0
        while got < size:
            chunk = stream.read(size - got)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)


class InFlight:
    """WSGI middleware that counts the requests inside the app, so ``Server.stop`` can wait
    for them: the service closes LMDB after stopping its servers, and granian's worker returns
    from its stop while a request may still run in one of its threads (a page polling
    /api/health across a restart got a 500 from a closed environment). A streamed body's
    iteration is outside the count; the teller streams nothing from LMDB."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            with self._changed:
                self._count += 1
            try:
                return app(environ, start_response)
            finally:
                with self._changed:
                    self._count -= 1
                    self._changed.notify_all()

        return counted

    def wait_idle(self, timeout: float) -> bool:
        """True once no request is inside the app; False if ``timeout`` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout)


def _raise_fd_limit() -> None:
    """Idle connections cost a file descriptor each: take the hard limit (Linux allows it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


class Server:
    """One granian server on ``host:port`` (port 0 picks a free one) in a daemon thread.

    The listening socket is bound here, so the port is known (and taken) before ``start``;
    every request passes through its own ``BodyGuard`` first (caps per server: the admin
    port's bodies never wait behind the public port's). Proxy headers
    (X-Forwarded-For/-Proto) reach the app untouched: the public app trusts them only when
    ``web.behind_proxy`` is set; no other app reads them.
    """

    def __init__(self, app: Callable[..., Any], addr: str, name: str,
                 threads: int = APP_THREADS, backlog: int = 1024,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        from .granian_embed import EmbeddedWorker  # granian loads a Rust extension: on use

        _raise_fd_limit()
        host, port = split_hostport(addr)
        self.name = name
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
        except OSError as exc:  # name the address: "Address already in use" alone says nothing
            sock.close()
            raise OSError(exc.errno, f"{name} API cannot listen on {addr}: "
                                     f"{exc.strerror or exc}") from None
        self.host = host
        self.port: int = sock.getsockname()[1]
        self._in_flight = InFlight()
        self._worker = EmbeddedWorker(self._in_flight.wrap(BodyGuard().wrap(app)), sock, name,
                                      threads=threads, backlog=backlog,
                                      max_connections=max_connections,
                                      header_read_timeout_ms=HEADER_READ_TIMEOUT_MS)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._worker.start()
        log.info("%s API listening on %s", self.name, self.url)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, then wait (up to ``timeout``) for requests still inside the app."""
        self._worker.stop(timeout)
        if not self._in_flight.wait_idle(timeout):
            log.warning("%s API stopped with requests still running after %.0f s",
                        self.name, timeout)
