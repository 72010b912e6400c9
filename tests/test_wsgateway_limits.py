"""The gateway's limits against a real `teller core run`: a slow consumer is dropped while the
others keep receiving, per-IP connection cap, message size, subscription cap, idle timeout,
unanswered pings, and a bad [ws] section refused at start with every problem listed."""

from __future__ import annotations

import base64
import json
import os
import socket
import time

import pytest
from click.testing import CliRunner
from websockets.exceptions import ConnectionClosed, InvalidStatus

from teller.cli_core import core_group
from tests.support.wait import wait_until
from tests.support.wscore import Client, WsCore

M = "BTCUSDT"


@pytest.fixture
def make_core(tmp_path):
    cores: list[WsCore] = []

    def make(**ws) -> WsCore:
        core = WsCore(tmp_path / f"core{len(cores)}", ws=ws)
        core.start()
        cores.append(core)
        return core

    yield make
    for core in cores:
        core.stop()


def raw_ws(core: WsCore, rcvbuf: int = 4096) -> socket.socket:
    """A WebSocket handshake by hand on a socket with a tiny receive buffer, so the client can
    stop reading and let the server's buffers fill."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", core.ws_port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def frame(text: str) -> bytes:
    """A masked client text frame."""
    data, mask = text.encode(), os.urandom(4)
    n = len(data)
    header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126
                              else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def close_code(sock: socket.socket, timeout: float = 20) -> int | None:
    """Read server frames until the connection ends; the close frame's code, if any."""
    sock.settimeout(timeout)
    buf, code = b"", None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2:
            n, at = buf[1] & 0x7F, 2
            if n == 126:
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + n:
                break
            if buf[0] & 0x0F == 8:
                code = int.from_bytes(buf[at:at + 2], "big")
            buf = buf[at + n:]
    return code


def ws_metrics(core: WsCore) -> dict[str, float]:
    """The gateway's lines of the core's GET /metrics, by name."""
    text = core.session.get(core.http + "metrics", timeout=5).text
    return {name: float(value) for name, _, value in
            (line.partition(" ") for line in text.splitlines())
            if name.startswith("core_ws_")}


def test_a_slow_consumer_is_dropped_while_the_others_keep_receiving(make_core):
    core = make_core(out_queue=20)
    core.deposit(1, "BTC", "1000")
    for i in range(100):  # a deep book: a depth.query reply of ~3 KiB
        core.ok("order.put_limit", [1, M, 1, "1", str(20000 + i), "0", "0", "t"])
    fast = Client(core.ws_url())
    fast.ok("depth.subscribe", [M, 100, "0"])
    assert fast.push("depth.update")["params"][0] is True
    slow = raw_ws(core)
    slow.sendall(frame(json.dumps({"id": 1, "method": "depth.subscribe",
                                   "params": [M, 100, "0"]})))
    # the slow client asks and asks and never reads: its replies pile up in the gateway
    query = frame(json.dumps({"id": 2, "method": "depth.query", "params": [M, 100, "0"]}))
    try:
        for _ in range(3000):
            slow.sendall(query)
    except (BrokenPipeError, ConnectionResetError):
        pass  # dropped already
    # meanwhile the fast client sees every change, in order
    for i in range(10):
        core.ok("order.put_limit", [1, M, 1, "1", str(10000 + i), "0", "0", "t"])
        update = fast.push("depth.update", where=lambda m: m["params"][0] is False)
        assert update["params"][1] == {"asks": [[str(10000 + i), "1"]]}
    wait_until(lambda: "slow consumer" in core.log_tail(200), timeout=20,
               message="the gateway to drop the slow consumer")
    assert close_code(slow) == 1008
    slow.close()
    assert fast.ok("server.ping", []) == "pong"
    core.ok("order.put_limit", [1, M, 1, "1", "9999", "0", "0", "t"])
    assert fast.push("depth.update")["params"][1] == {"asks": [["9999", "1"]]}

    # what an operator's monitoring sees
    metrics = wait_until(lambda: (m := ws_metrics(core))["core_ws_connections"] == 1 and m,
                         timeout=10, message="the slow connection gone from /metrics")
    assert metrics["core_ws_slow_consumers_dropped_total"] == 1
    assert metrics["core_ws_pushes_total"] >= 12  # the fast client's snapshot and 11 diffs
    assert metrics["core_ws_topics"] == 1 and metrics["core_ws_resyncs_total"] == 0
    assert metrics["core_ws_fanout_seconds_count"] > 0
    assert 0 < metrics["core_ws_fanout_seconds_max"] < 5


def test_connections_per_ip_are_capped(make_core):
    core = make_core(max_connections_per_ip=3)
    clients = [Client(core.ws_url()) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        Client(core.ws_url())
    assert refused.value.response.status_code == 503
    clients.pop().close()
    time.sleep(0.2)
    clients.append(Client(core.ws_url()))
    assert all(c.ok("server.ping", []) == "pong" for c in clients)
    with pytest.raises(InvalidStatus) as unknown:
        Client(core.ws_url("/nope"))
    assert unknown.value.response.status_code == 404


def test_message_size_and_subscription_caps(make_core):
    core = make_core(max_message=256, max_subscriptions=3)
    client = Client(core.ws_url())
    big = json.dumps({"id": 1, "method": "server.ping", "params": ["x" * 300]})
    client.send(big)
    assert "over 256 bytes" in client.reply()["error"]["message"]
    markets = core.ok("market.list", [])
    names = [m["name"] for m in markets]
    assert client.call("price.subscribe", names)["error"]["code"] == 1  # 4 > 3
    client.ok("price.subscribe", names[:3])
    assert client.call("depth.subscribe", [M, 10, "0"])["error"]["code"] == 1
    client.ok("price.subscribe", names[:2])
    client.ok("depth.subscribe", [M, 10, "0"])
    assert client.push("depth.update")["params"][0] is True
    with pytest.raises(ConnectionClosed) as closed:
        client.send("x" * 2000)  # over 4x max_message: closed (1009)
        client.recv()
    assert closed.value.rcvd.code == 1009


def test_idle_connections_and_unanswered_pings_are_closed(make_core):
    core = make_core(idle_timeout=2.5, ping_interval=0.3, ping_timeout=0.5)
    idle = Client(core.ws_url())
    with pytest.raises(ConnectionClosed) as closed:
        idle.recv(timeout=10)
    assert closed.value.rcvd.code == 1000 and closed.value.rcvd.reason == "idle timeout"
    talker = Client(core.ws_url())
    for _ in range(8):  # requests keep it alive past the idle timeout
        time.sleep(0.4)
        assert talker.ok("server.ping", []) == "pong"
    talker.close()
    deaf = raw_ws(core)  # answers no ping: closed well before the idle timeout
    started = time.monotonic()
    close_code(deaf, timeout=10)
    assert time.monotonic() - started < 2.0
    deaf.close()


def test_a_bad_ws_section_is_refused_with_every_problem(tmp_path):
    config = tmp_path / "core.toml"
    base = (WsCore(tmp_path / "x").config.read_text())
    config.write_text(base.replace("[ws]\n", '[ws]\nauth_url = "ftp://x"\nout_queue = 0\n'
                                   'idle_timeout = -1\nbogus = 1\ntaker_fee = "1.5"\n', 1)
                      .replace('addr = "127.0.0.1:', 'addr = "nohost', 1))
    result = CliRunner().invoke(core_group, ["run", "-c", str(config), "-d", str(tmp_path / "d")])
    assert result.exit_code != 0
    for problem in ("ws.auth_url must be an http(s):// URL", "ws.out_queue must be an integer",
                    "ws.idle_timeout must be seconds", "ws.bogus: unknown key",
                    "ws.taker_fee must be a decimal string in [0, 1)"):
        assert problem in result.output, result.output
    assert not (tmp_path / "d").exists()


def test_a_ws_address_in_use_stops_the_start_with_a_clear_message(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    core = WsCore(tmp_path)
    result = CliRunner().invoke(core_group, [
        "run", "-c", str(core.config), "-d", str(tmp_path / "d"),
        "--ws-addr", f"127.0.0.1:{port}"])
    holder.close()
    assert result.exit_code != 0
    assert f"cannot start the WebSocket server on 127.0.0.1:{port}" in result.output
