"""Running one granian WSGI worker on a socket we opened, in a thread of this process.

granian's public entry points spawn worker processes that import the app by name; the teller's
apps share one in-process ``Service`` (LMDB environment, exchanger, sender), so we drive its
worker directly, as granian's own thread-mode server (``granian/server/mt.py``) does. These
are granian internals: the version is pinned in pyproject.toml and tests/test_teller_api_hardening_*
run against it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from granian._futures import _CBScheduler, _CBSchedulerTask
from granian._granian import SocketHolder, WorkerSignal, WSGIWorker
from granian._loops import loops
from granian.constants import HTTPModes
from granian.http import HTTP1Settings
from granian.wsgi import Response, ResponseIterWrap

log = logging.getLogger(__name__)
# granian logs "Started/Stopping worker-1 runtime-1" at INFO for every port: noise here.
logging.getLogger("_granian").setLevel(logging.WARNING)

# granian's default TLS tuple with TLS off (TLS is a reverse proxy's job here).
_NO_TLS = (False, None, None, None, "tls1.3", None, [], False)


# The fixed part of every request's environ. granian's own wrapper copies the whole process
# environment into each request's environ, which would hand TELLER_ADMIN_TOKEN (and every other
# secret in the environment) to any code that logs an environ; it also costs a bigger copy.
_BASE_ENVIRON: dict[str, Any] = {
    "GATEWAY_INTERFACE": "CGI/1.1", "SCRIPT_NAME": "", "SERVER_SOFTWARE": "teller",
    "wsgi.errors": sys.stderr, "wsgi.input_terminated": True, "wsgi.multiprocess": False,
    "wsgi.multithread": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
}


def _wsgi_callback(app: Callable[..., Any]) -> Callable[[Any, dict[str, Any]], int]:
    """What granian's worker calls per request (as granian.wsgi._callback_wrapper's runner)."""
    def run(proto: Any, scope: dict[str, Any]) -> int:
        response = Response()
        result = app(_BASE_ENVIRON | scope, response)
        if isinstance(result, list):
            proto.response_bytes(response.status, response.headers, b"".join(result))
        else:
            proto.response_iter(response.status, response.headers, ResponseIterWrap(result))
        return response.status

    return run


def _scheduler(loop: Any, callback: Callable[..., Any]) -> Any:
    """granian's callback scheduler (as ``granian._futures._new_cbscheduler`` builds it), with
    its placeholder task left out of asyncio's registry of tasks: the placeholder is never
    initialised, so ``asyncio.all_tasks()`` — which Playwright, among others, calls — would
    raise on it for the rest of the process."""
    task = _CBSchedulerTask()
    asyncio.tasks._unregister_task(task)
    return _CBScheduler(loop, callback, task, partial(asyncio.tasks._enter_task, loop),
                        partial(asyncio.tasks._leave_task, loop))


class EmbeddedWorker:
    """A granian HTTP/1.1 worker serving ``app`` on ``sock`` until ``stop``."""

    def __init__(self, app: Callable[..., Any], sock: socket.socket, name: str, *,
                 threads: int, backlog: int, max_connections: int,
                 header_read_timeout_ms: int) -> None:
        self._fd = sock.detach()  # granian owns the descriptor from here and closes it on stop
        self._signal = WorkerSignal()
        self._done = threading.Event()
        self._error: BaseException | None = None
        http1 = HTTP1Settings(header_read_timeout=header_read_timeout_ms, keep_alive=True)
        self._args = (app, threads, backlog, max_connections, http1)
        self._thread = threading.Thread(target=self._run, name=f"http-{name}", daemon=True)

    def _run(self) -> None:
        app, threads, backlog, max_connections, http1 = self._args
        loop = None
        try:
            loop = loops.get("auto")
            callback = _wsgi_callback(app)
            # (worker id, socket, ipc, runtime threads, blocking threads, Python threads, their
            # idle timeout, backpressure = connections handled at once, ...)
            worker = WSGIWorker(1, (None, SocketHolder(self._fd, False, backlog)), None,
                                1, 1, threads, 30, max_connections, HTTPModes.http1.value,
                                http1, None, None, *_NO_TLS, (None, None))
            scheduler = _scheduler(loop, callback)
            worker.serve_str(scheduler, loop, self._signal)
        except BaseException as exc:  # noqa: BLE001 - a dead server must be visible in the log
            self._error = exc
            log.error("HTTP server %s stopped: %r", self._thread.name, exc, exc_info=exc)
        finally:
            if loop is not None:
                loop.close()  # its selector and self-pipe: a server a test stops leaves no fds
            self._done.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._signal.set()
        self._done.wait(timeout)
        self._thread.join(timeout)
