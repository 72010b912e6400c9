"""The core's own HTTP server (matchengine.rpcserver) over raw sockets: keep-alive and
pipelining, HTTP/1.0, `Expect: 100-continue`, chunked bodies, the refusals (413, 431, 400,
501), idle and
connection limits, a client that leaves mid-request, and the reply timeout (code 5) while
the disk is held."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from matchengine import rpcserver
from tests.support.core import CoreServer, disk_held
from tests.support.wait import wait_until

LIST = b'{"id":7,"method":"asset.list","params":[]}'


@pytest.fixture
def core(tmp_path):
    server = CoreServer(tmp_path / "core")
    yield server
    server.close()


def connect(core: CoreServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", core.server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def post(body: bytes, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return (f"POST / {version}\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response from `sock` (bytes after it stay in `buf`)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = buf[:end].decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(buf) < end + 4 + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a response")
        buf += chunk
    body = bytes(buf[end + 4:end + 4 + length])
    del buf[:end + 4 + length]
    return status, headers, body


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_keep_alive_and_pipelined_requests_are_answered_in_order(core):
    core.ok("balance.update", [1, "BTC", "deposit", 1, "2", {}])
    sock, buf = connect(core), bytearray()
    calls = [("balance.query", [1, "BTC"]),
             ("order.put_limit", [1, "BTCUSDT", 1, "0.5", "9000", "0", "0", "p"]),
             ("balance.query", [1, "BTC"]), ("asset.list", [])]
    sock.sendall(b"".join(post(json.dumps({"id": i, "method": m, "params": p}).encode())
                          for i, (m, p) in enumerate(calls)))  # all at once, one write
    replies = [read_response(sock, buf) for _ in calls]
    assert [json.loads(body)["id"] for _, _, body in replies] == [0, 1, 2, 3]
    assert all(status == 200 for status, _, _ in replies)
    assert json.loads(replies[0][2])["result"]["BTC"]["freeze"] == "0"
    assert json.loads(replies[2][2])["result"]["BTC"]["freeze"] == "0.5"
    sock.sendall(post(LIST))  # and the connection stays open
    assert read_response(sock, buf)[0] == 200
    sock.close()


def test_http_1_0_closes_unless_asked_to_keep_alive(core):
    sock, buf = connect(core), bytearray()
    sock.sendall(post(LIST, version="HTTP/1.0"))
    status, headers, _ = read_response(sock, buf)
    assert status == 200 and headers["connection"] == "close" and closed(sock)
    sock, buf = connect(core), bytearray()
    sock.sendall(post(LIST, "Connection: keep-alive\r\n", version="HTTP/1.0") + post(LIST))
    assert [read_response(sock, buf)[0] for _ in range(2)] == [200, 200]
    sock.sendall(post(LIST, "Connection: close\r\n"))
    assert read_response(sock, buf)[0] == 200 and closed(sock)


CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"


def chunked(body: bytes, size: int, extra: str = "") -> bytes:
    """`body` as a chunked request of `size`-byte chunks, with an extension and a trailer."""
    pieces = [b"%x;note=1\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
              for i in range(0, len(body), size)]
    return (CHUNKED_HEAD + extra.encode() + b"\r\n" + b"".join(pieces)
            + b"0\r\nX-Trailer: t\r\n\r\n")


def test_chunked_bodies_are_read_whole_even_when_they_trickle_in(core):
    sock, buf = connect(core), bytearray()
    sock.sendall(chunked(LIST, 5) + post(LIST))  # and a pipelined request after it
    assert [json.loads(read_response(sock, buf)[2])["id"] for _ in range(2)] == [7, 7]
    request = chunked(LIST, 3)
    for i in range(len(request)):  # one byte at a time
        sock.sendall(request[i:i + 1])
    status, _, body = read_response(sock, buf)
    assert status == 200 and len(json.loads(body)["result"]) > 0
    sock.sendall(chunked(LIST, 64, "Expect: 100-continue\r\n")[:len(CHUNKED_HEAD) + 25])
    assert read_response(sock, buf)[0] == 100
    sock.sendall(chunked(LIST, 64, "Expect: 100-continue\r\n")[len(CHUNKED_HEAD) + 25:])
    assert read_response(sock, buf)[0] == 200
    sock.close()


def test_a_chunked_body_of_tiny_chunks_is_refused_before_it_fills_memory(core):
    sock, buf = connect(core), bytearray()
    # 1-byte chunks, 6 bytes of framing per byte of body, just past the limit (so the server
    # has read every byte when it refuses, and closes without a reset)
    sock.sendall(CHUNKED_HEAD + b"\r\n" + b"1\r\nx\r\n" * (rpcserver.MAX_CHUNKED // 6))
    status, headers, _ = read_response(sock, buf)
    assert status == 413 and headers["connection"] == "close"
    assert core.ok("asset.list", [])


def test_expect_100_continue_gets_its_interim_answer(core):
    sock, buf = connect(core), bytearray()
    head = post(LIST, "Expect: 100-continue\r\n")
    sock.sendall(head[:-len(LIST)])
    assert read_response(sock, buf)[0] == 100
    sock.sendall(LIST)
    status, _, body = read_response(sock, buf)
    assert status == 200 and json.loads(body)["id"] == 7


@pytest.mark.parametrize("request_bytes, status", [
    (CHUNKED_HEAD + b"Content-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (CHUNKED_HEAD + b"\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    (CHUNKED_HEAD + b"\r\n5\r\nhelloXX0\r\n\r\n", 400),
    (CHUNKED_HEAD + b"\r\n" + b"1" * 2000, 400),
    (CHUNKED_HEAD + b"\r\n100001\r\n", 413),
    (CHUNKED_HEAD + b"\r\n" + b"80000\r\n" + b"x" * 0x80000 + b"\r\n" + b"80001\r\n", 413),
    (b"POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nX: " + b"a" * 70000, 431),
    (b"POST /\r\n\r\n", 400),
    (b"POST / HTTP/2.0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    (b"POST / HTTP/1.1\r\nBad Header : x\r\n\r\n", 400),
])
def test_unreadable_requests_are_refused_and_the_connection_closed(core, request_bytes, status):
    sock, buf = connect(core), bytearray()
    sock.sendall(request_bytes)
    got, headers, body = read_response(sock, buf)
    assert (got, body, headers["connection"]) == (status, b"", "close")
    assert closed(sock)
    assert core.ok("asset.list", [])  # the server goes on


def test_non_post_and_empty_bodies_get_an_empty_400_on_a_live_connection(core):
    sock, buf = connect(core), bytearray()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + post(b"") + post(b"[]") + post(LIST))
    answers = [read_response(sock, buf) for _ in range(4)]
    assert [(s, b) for s, _, b in answers[:3]] == [(400, b"")] * 3
    assert answers[3][0] == 200


def test_a_client_that_leaves_mid_request_changes_nothing_else(core):
    core.ok("balance.update", [1, "BTC", "deposit", 1, "2", {}])
    sock = connect(core)
    body = b'{"id":1,"method":"order.put_limit","params":[1,"BTCUSDT",1,"0.5","9000","0","0",""]}'
    sock.sendall(post(body)[:-10])  # never completes
    sock.close()
    sock = connect(core)
    sock.sendall(post(body))
    sock.close()  # leaves before its reply: the order is placed, the reply dropped
    wait_until(lambda: core.ok("order.pending", [1, "BTCUSDT", 0, 10])["total"] == 1)
    assert core.ok("balance.query", [1, "BTC"])["BTC"]["freeze"] == "0.5"


def test_idle_connections_close_and_the_connection_limit_holds(tmp_path):
    server = CoreServer(tmp_path / "core")
    try:
        server.server.idle_timeout = 0.5
        idle = connect(server)
        time.sleep(2.2)  # the sweep runs every second
        assert closed(idle)
        server.server.max_connections = 2
        first, second = connect(server), connect(server)
        for sock in (first, second):
            sock.sendall(post(LIST))
            assert read_response(sock, bytearray())[0] == 200
        third = connect(server)
        assert closed(third)
        first.close()
        wait_until(lambda: len(server.server._conns) < 2)
        fourth = connect(server)
        fourth.sendall(post(LIST))
        assert read_response(fourth, bytearray())[0] == 200
    finally:
        server.close()


def test_a_reply_held_up_by_the_disk_times_out_with_code_5(core, monkeypatch):
    monkeypatch.setattr(rpcserver, "REPLY_TIMEOUT", 1.0)
    core.ok("balance.update", [1, "BTC", "deposit", 1, "2", {}])
    with disk_held(core.service.store.env):
        sock, buf = connect(core), bytearray()
        sock.sendall(post(b'{"id":3,"method":"balance.update","params":'
                          b'[1,"BTC","deposit",2,"1",{}]}'))
        status, headers, body = read_response(sock, buf)
        assert status == 504 and headers["connection"] == "close"
        assert json.loads(body) == {"error": {"code": 5, "message": "service timeout"},
                                    "result": None, "id": 3}
        assert closed(sock)
    # the write was queued, not lost: it commits once the disk is back, exactly once
    wait_until(lambda: core.ok("balance.query", [1, "BTC"])["BTC"]["available"] == "3")
    again = core.rpc("balance.update", [1, "BTC", "deposit", 2, "1", {}])
    assert again["error"]["code"] == 10


def test_thousands_of_pipelined_requests_in_one_buffer_are_answered_in_a_loop(core):
    count = 5000  # answered at once one after another: recursion would overflow the stack
    sock, buf = connect(core), bytearray()
    payload = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * count + post(LIST)
    sender = threading.Thread(target=sock.sendall, args=(payload,))
    sender.start()
    statuses = [read_response(sock, buf)[0] for _ in range(count + 1)]
    sender.join(10)
    assert statuses[:count] == [400] * count and statuses[-1] == 200
    assert core.ok("asset.list", [])


def test_an_ipv6_loopback_address_is_served(tmp_path):
    import requests

    from exchangecore import open_core
    from matchengine.rpcserver import RpcServer
    from tests.support.core import core_config

    service = open_core(core_config(), tmp_path)
    server = RpcServer(service, "::1", 0)  # as `teller core run --http-addr [::1]:8080`
    server.start()
    try:
        assert server.url.startswith("http://[::1]:")
        reply = requests.post(server.url + "/", data=LIST, timeout=5)
        assert reply.status_code == 200 and reply.json()["id"] == 7
    finally:
        server.stop()
        service.stop()
