"""The exchange core's HTTP server: one event-loop thread, like viabtc's accesshttp on libev.

A request is read and parsed by the loop thread, handed to the core (`CoreService.submit`)
and answered when the core calls back after the commit: the loop thread writes the reply.
Nothing waits in between, so a request costs two thread hops (loop -> writer -> loop). Under
waitress it cost four and ~180 µs of CPU in its worker hand-off alone, which capped one
request per round trip at ~1,800 orders/s on two cores.

HTTP/1.1 as the JSON-RPC clients use it: keep-alive (HTTP/1.0 only with `Connection:
keep-alive`), pipelined requests answered in order (one at a time per connection),
bodies up to 1 MiB by `Content-Length` or chunked (more -> 413, then close, as is a chunked
request past ~2 MiB with its framing; viabtc's parser takes chunked bodies too), `Expect: 100-continue`. Refused with a status and a close:
headers over 64 KiB (431), a bad request line, `Content-Length` or chunk framing, or both
`Content-Length` and `Transfer-Encoding` (400, the request-smuggling ambiguity), another
transfer coding than chunked (501). Idle connections close after `idle_timeout`; past
`max_connections` a new connection is closed at once; a reply not ready after REPLY_TIMEOUT
is answered with code 5 (504) and the connection closed. Requests with a history read run in
a small thread pool, because a history read may wait for the disk.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from matchengine.errors import CoreError
from matchengine.http import JSON, STATUS, BatchTooLarge, RpcRequest, parse_request
from matchengine.metrics import CoreMetrics
from matchengine.openrpc import openrpc_bytes
from matchengine.service import REPLY_TIMEOUT

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
MAX_HEAD = 64 << 10
MAX_CHUNK_LINE = 1024  # a chunk-size line with its extensions
MAX_CHUNKED = MAX_HEAD + 2 * MAX_BODY  # bytes buffered for one chunked request, framing too
READ_SIZE = 256 << 10
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
HISTORY_THREADS = 4


class _Conn:
    """One client connection: bytes in, bytes out, and whether a reply is being worked on."""

    __slots__ = ("sock", "inbuf", "outbuf", "busy", "close_after", "last_active", "continued",
                 "closed", "request", "since", "parsing", "chunked")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # bytearrays: appending and deleting from the front are cheap, so a buffer of many
        # pipelined requests is taken apart in linear time (slicing bytes made it quadratic)
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.busy = False  # a request is with the core (or its reply is still being sent)
        self.close_after = False  # close once outbuf is sent
        self.last_active = time.monotonic()
        self.continued = False  # "100 Continue" sent for the request being read
        self.closed = False
        self.request: RpcRequest | None = None  # with the core since `since`
        self.since = 0.0
        self.parsing = False  # _parse_requests is running for this connection
        self.chunked: _Chunked | None = None  # a chunked body being read


class _Chunked:
    """Where the decoding of a chunked body stands: the next chunk-size line starts at `pos`
    in the connection's buffer (kept between reads, so a body that trickles in is decoded once,
    not again on every read)."""

    __slots__ = ("pos", "body", "trailers")

    def __init__(self, pos: int) -> None:
        self.pos = pos
        self.body = bytearray()
        self.trailers = False  # the last chunk is read; the trailer section follows


def _response(status: int, body: bytes, content_type: str = JSON, close: bool = False) -> bytes:
    head = (f"HTTP/1.1 {STATUS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n")
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


class RpcServer:
    """Serves `service` (a CoreService) on host:port (port 0 picks a free one)."""

    def __init__(self, service: Any, host: str, port: int, max_connections: int = 1000,
                 idle_timeout: float = 60.0) -> None:
        self.service = service
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                    flags=socket.AI_PASSIVE)[0][0]  # e.g. "::1" is IPv6
        self._listener = socket.create_server((host, port), family=family, backlog=1024)
        self._listener.setblocking(False)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._wake_recv, self._wake_send = socket.socketpair()
        self._wake_recv.setblocking(False)
        self._wake_send.setblocking(False)
        self._selector.register(self._wake_recv, selectors.EVENT_READ, None)
        self._replies: deque[tuple[_Conn, bytes]] = deque()  # from other threads
        self._woken = False
        self._wake_lock = threading.Lock()
        self._conns: dict[socket.socket, _Conn] = {}
        self._history = ThreadPoolExecutor(HISTORY_THREADS, thread_name_prefix="core-read")
        self._stopping = False
        self._thread: threading.Thread | None = None
        metrics = CoreMetrics(service)
        # more Prometheus text for /metrics from parts composed around the core (the gateway)
        self.metrics_sources: list[Callable[[], str]] = []
        self.get_routes: dict[str, Callable[[], tuple[str, bytes]]] = {
            "/metrics": lambda: (PROMETHEUS, "".join(
                [metrics.render(), *(source() for source in self.metrics_sources)]).encode()),
            "/openrpc.json": lambda: (JSON, openrpc_bytes()),
        }

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve in a daemon thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.serve_forever, name="core-http",
                                        daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Run the loop until `stop()` (or an exception, e.g. KeyboardInterrupt); then close
        every connection and the listening socket."""
        try:
            next_sweep = time.monotonic() + 1.0
            while not self._stopping:
                for key, events in self._selector.select(timeout=1.0):
                    sock = key.fileobj
                    if sock is self._listener:
                        self._accept()
                    elif sock is self._wake_recv:
                        self._drain_replies()
                    else:
                        conn = self._conns.get(sock)  # type: ignore[call-overload]
                        if conn is None:
                            continue
                        if events & selectors.EVENT_READ:
                            self._guarded(conn, self._read)
                        if events & selectors.EVENT_WRITE and not conn.closed:
                            self._guarded(conn, self._flush)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + 1.0
                    self._close_idle(now)
        finally:
            self._close_all()

    def _guarded(self, conn: _Conn, step: Any, *args: Any) -> None:
        """Run one step of a connection; a bug costs that connection, not the server."""
        try:
            step(conn, *args)
        except Exception:
            log.exception("connection failed notice=WATCH")
            self._close(conn)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def _close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn)
        for sock in (self._listener, self._wake_recv, self._wake_send):
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self._selector.close()
        self._history.shutdown(wait=False, cancel_futures=True)

    # -- connections --------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of file descriptors: try again on the next event
                log.exception("accept failed")
                return
            if len(self._conns) >= self.max_connections:
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock)
            self._conns[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, None)

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._conns.pop(conn.sock, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _close_idle(self, now: float) -> None:
        for conn in list(self._conns.values()):
            if not conn.busy and now - conn.last_active > self.idle_timeout:
                self._close(conn)
            elif conn.request is not None and now - conn.since > REPLY_TIMEOUT:
                # the core did not answer in time: say so (viabtc's code 5); a late reply
                # finds the connection closed and is dropped
                request, conn.request = conn.request, None
                status, body = request.reply([CoreError(5, "service timeout")]
                                             * len(request.calls))
                conn.close_after = True
                self._guarded(conn, self._send, _response(status, body, close=True))

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:  # the client is gone; a reply still with the core is dropped
            self._close(conn)
            return
        conn.last_active = time.monotonic()
        conn.inbuf += data
        if not conn.busy:
            self._parse_requests(conn)
        elif len(conn.inbuf) > MAX_HEAD + MAX_BODY:  # pipelining beyond reason
            self._close(conn)

    @staticmethod
    def _events(conn: _Conn) -> int:
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)

    # -- requests -----------------------------------------------------------------------------

    def _parse_requests(self, conn: _Conn) -> None:
        """Take the buffered requests one after another while each is answered at once (a loop,
        not recursion: a buffer may hold tens of thousands of pipelined requests)."""
        if conn.parsing:
            return  # the loop further up the stack goes on with the next one
        conn.parsing = True
        try:
            while not conn.closed and not conn.busy and conn.inbuf:
                waiting = len(conn.inbuf)
                self._next_request(conn)
                if not conn.busy and len(conn.inbuf) == waiting:
                    return  # an incomplete request: wait for its bytes
        finally:
            conn.parsing = False

    def _next_request(self, conn: _Conn) -> None:
        """Parse one complete request from `inbuf` and hand it on, or wait for more bytes."""
        buf = conn.inbuf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._refuse(conn, 431)
            return
        lines = buf[:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._refuse(conn, 400)
            return
        method, _, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                self._refuse(conn, 400)
                return
            name = name.lower()
            value = value.strip()
            if name in headers and name == "content-length" and headers[name] != value:
                self._refuse(conn, 400)
                return
            headers[name] = value
        start = end + 4
        if "transfer-encoding" in headers:
            if "content-length" in headers:
                self._refuse(conn, 400)
                return
            if headers["transfer-encoding"].lower() != "chunked":
                self._refuse(conn, 501)
                return
            if conn.chunked is None:
                conn.chunked = _Chunked(start)
            decoded = self._read_chunked(conn, conn.chunked)
            if decoded is None:  # refused, or waiting for more of the body
                if not conn.busy:
                    if len(buf) > MAX_CHUNKED:  # tiny chunks: framing far beyond the body
                        self._refuse(conn, 413)
                        return
                    self._continue(conn, headers)
                return
            body, consumed = decoded
            conn.chunked = None
        else:
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit() or not length_text.isascii():
                self._refuse(conn, 400)
                return
            if len(length_text) > 9 or int(length_text) > MAX_BODY:
                self._refuse(conn, 413)
                return
            length = int(length_text)
            if len(buf) < start + length:
                self._continue(conn, headers)
                return
            body, consumed = bytes(buf[start:start + length]), start + length
        del buf[:consumed]
        conn.continued = False
        connection = headers.get("connection", "").lower()
        conn.close_after = connection == "close" or (version == "HTTP/1.0"
                                                     and connection != "keep-alive")
        conn.busy = True
        if method != "POST":
            route = self.get_routes.get(parts[1]) if method == "GET" else None
            if route is not None:  # /metrics, /openrpc.json
                content_type, text = route()
                self._send(conn, _response(200, text, content_type, conn.close_after))
                return
            log.info("empty 400 for %s %s: only JSON-RPC POSTs (as viabtc)", method, parts[1])
            self._answer(conn, 400, b"")
            return
        try:
            request = parse_request(body)
            if request is None:
                log.info("empty 400: the body is not a JSON-RPC request (as viabtc)")
                self._answer(conn, 400, b"")
            else:
                conn.request, conn.since = request, time.monotonic()
                if self.service.needs_thread(request.calls):
                    self._history.submit(self._run_blocking, conn, request)
                else:
                    self.service.submit(request.calls,
                                        lambda results: self._post(conn, request, results))
        except BatchTooLarge:
            self._answer(conn, 413, b"")
        except Exception:
            log.exception("request failed notice=WATCH")
            conn.close_after = True
            self._answer(conn, 500, b"")

    def _continue(self, conn: _Conn, headers: dict[str, str]) -> None:
        """Send "100 Continue" once, if the client waits for it before sending the body."""
        if headers.get("expect", "").lower() == "100-continue" and not conn.continued:
            conn.continued = True
            self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _read_chunked(self, conn: _Conn, state: _Chunked) -> tuple[bytes, int] | None:
        """Decode what has arrived of a chunked body: (body, bytes used up to the end of the
        trailers) once it is complete; None while incomplete or after a refusal."""
        buf = conn.inbuf
        while not state.trailers:
            line_end = buf.find(b"\r\n", state.pos, state.pos + MAX_CHUNK_LINE)
            if line_end < 0:
                if len(buf) - state.pos >= MAX_CHUNK_LINE:
                    self._refuse(conn, 400)
                return None
            size_text = bytes(buf[state.pos:line_end]).partition(b";")[0].strip()
            if not size_text or len(size_text) > 8 or \
                    size_text.strip(b"0123456789abcdefABCDEF"):
                self._refuse(conn, 400)
                return None
            size = int(size_text, 16)
            if len(state.body) + size > MAX_BODY:
                self._refuse(conn, 413)
                return None
            if size == 0:
                state.pos = line_end + 2
                state.trailers = True
                break
            data_start = line_end + 2
            if len(buf) < data_start + size + 2:
                return None
            if buf[data_start + size:data_start + size + 2] != b"\r\n":
                self._refuse(conn, 400)
                return None
            state.body += buf[data_start:data_start + size]
            state.pos = data_start + size + 2
        # trailer fields (ignored), then the empty line that ends the message
        while True:
            line_end = buf.find(b"\r\n", state.pos)
            if line_end < 0:
                if len(buf) - state.pos > MAX_HEAD:
                    self._refuse(conn, 431)
                return None
            if line_end == state.pos:
                return bytes(state.body), line_end + 2
            state.pos = line_end + 2

    def _run_blocking(self, conn: _Conn, request: RpcRequest) -> None:
        try:
            self._post(conn, request, self.service.call_many(request.calls))
        except Exception:
            log.exception("history request failed notice=WATCH")
            conn.close_after = True
            self._post_bytes(conn, _response(500, b"", "text/plain", close=True))

    def _refuse(self, conn: _Conn, status: int) -> None:
        """Answer a request that cannot be read on, and close the connection."""
        conn.chunked = None
        conn.busy = True
        conn.close_after = True
        conn.inbuf.clear()
        self._answer(conn, status, b"")

    def _answer(self, conn: _Conn, status: int, body: bytes) -> None:
        content_type = JSON if body else "text/plain"
        self._send(conn, _response(status, body, content_type, conn.close_after))

    # -- replies ------------------------------------------------------------------------------

    def _post(self, conn: _Conn, request: RpcRequest, results: list[Any]) -> None:
        """A reply from another thread (the core's callback): the loop thread sends it."""
        try:
            status, body = request.reply(results)
        except Exception:
            log.exception("reply failed notice=WATCH")
            status, body = 500, b""
            conn.close_after = True
        self._post_bytes(conn, _response(status, body, JSON if body else "text/plain",
                                         conn.close_after))

    def _post_bytes(self, conn: _Conn, data: bytes) -> None:
        self._replies.append((conn, data))
        self._wake()

    def _wake(self) -> None:
        with self._wake_lock:
            if self._woken:
                return
            self._woken = True
        try:
            self._wake_send.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # the loop is awake or gone either way

    def _drain_replies(self) -> None:
        # Read the wake-up bytes before clearing the flag: a wake that comes after the clear
        # leaves its byte in the socket, so no reply can be left behind without one.
        try:
            self._wake_recv.recv(4096)
        except (BlockingIOError, InterruptedError):
            pass
        with self._wake_lock:
            self._woken = False
        while self._replies:
            conn, data = self._replies.popleft()
            if not conn.closed and conn.request is not None:  # None: answered as timed out
                conn.request = None
                self._guarded(conn, self._send, data)

    def _send(self, conn: _Conn, data: bytes | bytearray) -> None:
        conn.outbuf += data
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        del conn.outbuf[:sent]
        conn.last_active = time.monotonic()
        if conn.outbuf:
            self._selector.modify(conn.sock, self._events(conn), None)
            return
        if conn.busy and not conn.continued:  # the reply is out (not just a "100 Continue")
            conn.busy = False
            if conn.close_after:
                self._close(conn)
                return
        self._selector.modify(conn.sock, self._events(conn), None)
        if not conn.busy and conn.inbuf:
            self._parse_requests(conn)
