"""Serving the teller's Flask apps with waitress, in threads, with a clean stop.

Also the response conventions every teller HTTP surface shares (the Go teller's ``httputil``):
a 200 is pretty-printed JSON, anything else a plain-text message plus a newline.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import waitress
from flask import Flask, Response

log = logging.getLogger(__name__)

# waitress logs a WARNING for every queued request under load; it is not a problem.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, indent=4, ensure_ascii=False) + "\n"
    return Response(body, status=status, content_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8",
                    headers=headers or {})


def split_hostport(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class Server:
    """One waitress server on ``host:port`` (port 0 picks a free one) in a daemon thread."""

    def __init__(self, app: Flask, addr: str, name: str, threads: int = 8) -> None:
        host, port = split_hostport(addr)
        self.name = name
        self._server = waitress.create_server(app, host=host, port=port, threads=threads,
                                              ident="teller", channel_timeout=60)
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

        server.trigger.pull_trigger(close_all)
        self._thread.join(timeout)
        if self._thread.is_alive():  # the loop did not run our thunk in time: close from here
            close_all()
            self._thread.join(timeout)
