"""HTTP over raw sockets, for tests that must send what a well-behaved client never would.

``exchange`` writes bytes as given and reads one final response (1xx interim answers are
skipped and counted), with a deadline; ``hold`` opens connections that send nothing (or a
partial request) and keep the socket open, as an attacker holding a server's slots does.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    interim: list[int] = field(default_factory=list)  # 1xx statuses seen first
    seconds: float = 0.0


def hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def connect(url: str, source: str | None = None, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to ``url``'s server, from loopback address ``source`` if given."""
    sock = socket.create_connection(hostport(url), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    sock.settimeout(timeout)
    return sock


def read_response(sock: socket.socket, deadline: float) -> RawResponse:
    """One final response from ``sock``; raises TimeoutError past ``deadline`` (monotonic)."""
    started = time.monotonic()
    buffer = b""
    interim: list[int] = []
    while True:
        while b"\r\n\r\n" not in buffer:
            buffer += _recv(sock, deadline)
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        if 100 <= status < 200:
            interim.append(status)
            continue
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            buffer += _recv(sock, deadline)
        return RawResponse(status, headers, buffer[:length], interim,
                           time.monotonic() - started)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no complete response before the deadline")
    sock.settimeout(remaining)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        raise TimeoutError("no complete response before the deadline") from None
    if not data:
        raise ConnectionError("connection closed before a complete response")
    return data


def exchange(url: str, raw: bytes, *, timeout: float = 5.0,
             source: str | None = None) -> RawResponse:
    """Send ``raw`` on a new connection and read the answer within ``timeout`` seconds."""
    with connect(url, source, timeout) as sock:
        sock.sendall(raw)
        return read_response(sock, time.monotonic() + timeout)


def request_bytes(method: str, path: str, host: str, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def hold(url: str, count: int, prefix: bytes = b"", source: str | None = None
         ) -> list[socket.socket]:
    """``count`` open connections that sent only ``prefix`` (nothing by default)."""
    socks = []
    for _ in range(count):
        sock = connect(url, source)
        if prefix:
            sock.sendall(prefix)
        socks.append(sock)
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        try:
            sock.close()
        except OSError:
            pass
