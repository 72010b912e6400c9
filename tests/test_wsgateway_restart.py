"""Restarts: the core dies under connected clients (they reconnect and resubscribe, depth starts
with a clean snapshot of the recovered book), and a standalone gateway (`teller core ws`) that
follows a core's event stream across the core's restart."""

from __future__ import annotations

import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed

from tests.support.nodes import free_port
from tests.support.wait import wait_until
from tests.support.wscore import AuthServer, Client, WsCore

M = "BTCUSDT"


def reconnect(url: str) -> Client:
    return wait_until(lambda: Client(url), timeout=30, message=f"to reconnect to {url}")


@pytest.mark.slow
def test_clients_reconnect_after_a_core_restart_and_depth_starts_clean(tmp_path):
    core = WsCore(tmp_path)
    core.start()
    try:
        core.deposit(1, "BTC", "10")
        core.ok("order.put_limit", [1, M, 1, "1", "9000", "0", "0", "t"])
        clients = [Client(core.ws_url()) for _ in range(3)]
        for client in clients:
            client.ok("depth.subscribe", [M, 20, "0"])
            assert client.push("depth.update")["params"][0] is True
        core.ok("order.put_limit", [1, M, 1, "2", "9100", "0", "0", "t"])
        for client in clients:
            assert client.push("depth.update")["params"] == [False, {"asks": [["9100", "2"]]}, M]
        core.kill()  # SIGKILL: no goodbye to the clients
        for client in clients:
            with pytest.raises((ConnectionClosed, TimeoutError)):
                while True:
                    client.recv(timeout=10)
        core.start()
        clients = [reconnect(core.ws_url()) for _ in clients]
        for client in clients:
            client.ok("depth.subscribe", [M, 20, "0"])
            first = client.push("depth.update")
            assert first["params"] == [True, {"asks": [["9000", "1"], ["9100", "2"]],
                                              "bids": []}, M]
        core.ok("order.put_limit", [1, M, 1, "1", "9200", "0", "0", "t"])
        for client in clients:
            assert client.push("depth.update")["params"] == [False, {"asks": [["9200", "1"]]}, M]
            client.close()
    finally:
        core.stop()


@pytest.mark.slow
def test_a_standalone_gateway_follows_the_core_across_its_restart(tmp_path):
    auth = AuthServer({"tok-1": 1})
    events = f"127.0.0.1:{free_port()}"
    core = WsCore(tmp_path / "core", ws={"addr": "", "events_addr": events})
    gateway = WsCore(tmp_path / "gw", ws={"events_addr": events, "auth_url": auth.url},
                     command="ws", http_port=core.http_port)
    core.start()
    gateway.start()
    try:
        core.deposit(1, "BTC", "10")
        client = Client(gateway.ws_url())
        client.ok("server.auth", ["tok-1", "web"])
        client.ok("order.subscribe", [M])
        public = Client(gateway.ws_url())
        public.ok("depth.subscribe", [M, 20, "0"])
        assert public.push("depth.update")["params"] == [True, {"asks": [], "bids": []}, M]
        order = client.ok("order.put_limit", [M, 1, "1", "9000", "0", "0", "ws"])  # over HTTP
        assert client.push("order.update")["params"] == [1, order]
        assert public.push("depth.update")["params"] == [False, {"asks": [["9000", "1"]]}, M]
        core.kill()
        time.sleep(0.5)
        assert client.call("order.put_limit", [M, 1, "1", "9000", "0", "0", "ws"])["error"][
            "code"] == 3  # the core is down: service unavailable, the connection stays
        core.start()
        # once the event stream is back the gateway resyncs: public subscribers get a clean
        # snapshot; order subscribers are closed (1013: the events of the gap are lost) and
        # re-query after reconnecting
        clean = public.push("depth.update", timeout=30, where=lambda m: m["params"][0] is True)
        assert clean["params"][1] == {"asks": [["9000", "1"]], "bids": []}
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                client.recv(timeout=10)
        assert closed.value.rcvd.code == 1013
        client = reconnect(gateway.ws_url())
        client.ok("server.auth", ["tok-1", "web"])
        client.ok("order.subscribe", [M])
        assert client.ok("order.query", [M, 0, 10])["records"] == [order]
        core.ok("order.put_limit", [1, M, 1, "1", "9100", "0", "0", "t"])
        assert public.push("depth.update")["params"] == [False, {"asks": [["9100", "1"]]}, M]
        assert client.push("order.update")["params"][1]["price"] == "9100"
        # the clock re-reads time-driven views here too: a deal, then a flat 1 s kline bucket
        core.deposit(2, "USDT", "100000")
        core.ok("order.put_limit", [2, M, 2, "0.5", "9000", "0", "0", "t"])
        public.ok("kline.subscribe", [M, 1])
        first = public.push("kline.update")["params"][-1]
        later = public.push("kline.update", where=lambda m: m["params"][-1][0] > first[0])
        assert later["params"][-1][1:] == ["9000", "9000", "9000", "9000", "0", "0", M]
        # the standalone gateway has no HTTP port: its own port answers GET /metrics (loopback)
        metrics = requests.get(f"http://127.0.0.1:{gateway.ws_port}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        lines = dict(line.split(" ") for line in metrics.text.splitlines()
                     if not line.startswith("#"))
        assert lines["core_ws_connections"] == "2"
        assert int(lines["core_ws_resyncs_total"]) >= 2  # the first connect and the one after
        client.close()
        public.close()
    finally:
        gateway.stop()
        core.stop()
        auth.close()
