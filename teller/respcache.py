"""A short-lived cache of whole GET responses, for the public routes that every client polls.

/api/config only changes with the config file, and /api/health costs a sender balance query
(a node round trip for a real sender) and a scan of the deposit counts: answered from Flask on
every request they ran at ~2,900 req/s. Cached for ``ttl`` seconds they cost a dict lookup
(issue 14). An entry also ends when ``version()`` changes (the storage's write counter: a
bind, a deposit or a payout shows at once). A 200 is cached per path and ``X-Forwarded-Proto`` (which decides the HSTS
header); requests with a query string or an ``Origin`` (CORS answers vary with it) and every
other status go to the app each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DEFAULT_TTL = 1.0


def cache_get_responses(app: WSGIApp, paths: Iterable[str], ttl: float = DEFAULT_TTL,
                        version: Callable[[], object] = lambda: None,
                        clock: Callable[[], float] = time.monotonic) -> WSGIApp:
    """``app`` with the GET responses of ``paths`` reused for ``ttl`` seconds."""
    cached_paths = frozenset(paths)
    cache: dict[tuple[str, str], tuple[float, object, str, list[tuple[str, str]], bytes]] = {}
    filling = threading.Lock()  # one request refreshes an entry; the others wait for it

    def call(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        answer: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]],
                    exc_info: Any = None) -> Callable[[bytes], None]:
            answer[:] = [status, list(headers)]
            return lambda _data: None

        chunks = app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return answer[0], answer[1], body

    def cached(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (path not in cached_paths or environ.get("REQUEST_METHOD") != "GET"
                or environ.get("QUERY_STRING") or "HTTP_ORIGIN" in environ):
            return app(environ, start_response)
        key = (path, environ.get("HTTP_X_FORWARDED_PROTO", ""))
        entry = cache.get(key)
        if entry is None or clock() >= entry[0] or version() != entry[1]:
            with filling:
                entry = cache.get(key)
                if entry is None or clock() >= entry[0] or version() != entry[1]:
                    tag = version()  # before the call: a write during it ends the entry
                    status, headers, body = call(environ)
                    if not status.startswith("200"):
                        start_response(status, headers)
                        return [body]
                    entry = (clock() + ttl, tag, status, headers, body)
                    cache[key] = entry
        start_response(entry[2], entry[3])
        return [entry[4]]

    return cached
