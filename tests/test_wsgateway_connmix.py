"""The CONNMIX channel dialect (`/connmix`) against a real `teller core run`."""

from __future__ import annotations

import pytest

from tests.support.wscore import AuthServer, Client, WsCore, traded

M = "BTCUSDT"


@pytest.fixture
def auth():
    server = AuthServer({"tok-1": 1})
    yield server
    server.close()


@pytest.fixture
def core(tmp_path, auth):
    proc = WsCore(tmp_path, ws={"auth_url": auth.url})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(core):
    c = Client(core.ws_url("/connmix"))
    yield c
    c.close()


def test_public_channels_push_depth_trades_ticker_kline(core, client):
    core.deposit(1, "BTC", "10")
    core.deposit(2, "USDT", "100000")
    core.ok("order.put_limit", [1, M, 1, "1", "9000", "0", "0", "t"])
    client.send({"op": "subscribe", "args": [f"{M}@depth", f"{M}@trades", f"{M}@ticker",
                                             f"{M}@kline_60"], "id": 7})
    assert client.reply() == {"result": True, "id": 7}
    first = client.push(f"{M}@depth")
    assert first["data"] == {"clean": True, "asks": [["9000", "1"]], "bids": []}
    client.push(f"{M}@ticker")
    core.ok("order.put_limit", [2, M, 2, "0.25", "9000", "0", "0", "t"])
    assert client.push(f"{M}@depth")["data"] == {"clean": False, "asks": [["9000", "0.75"]]}
    [deal] = client.push(f"{M}@trades")["data"]
    assert deal["amount"] == "0.25" and deal["type"] == "buy"
    ticker = client.push(f"{M}@ticker", where=lambda m: m["data"]["last"] != "0")
    assert ticker["data"] == core.ok("market.status_today", [M])
    kline = client.push(f"{M}@kline_60")
    [row] = traded(kline["data"])
    assert row[1:] == ["9000", "9000", "9000", "9000", "0.25", "2250", M]
    # the sample's single-channel form
    client.send({"op": "unsubscribe", "channel": f"{M}@depth"})
    assert client.reply() == {"result": True}
    core.ok("order.put_limit", [1, M, 1, "1", "9100", "0", "0", "t"])
    client.no_push(f"{M}@depth", 0.3)


def test_private_channels_need_auth(core, client, auth):
    client.send({"op": "subscribe", "args": ["@balance"]})
    assert client.reply() == {"code": 6, "msg": "Not Auth"}
    client.send({"op": "auth", "args": ["bad"]})
    assert client.reply() == {"code": 11, "msg": "invalid token"}
    client.send({"op": "auth", "token": "tok-1"})
    assert client.reply() == {"result": True}
    client.send({"op": "subscribe", "args": ["@balance", "@order"]})
    assert client.reply() == {"result": True}
    core.deposit(1, "BTC", "3")
    assert client.push("@balance")["data"] == {"BTC": {"available": "3", "freeze": "0"}}
    order = core.ok("order.put_limit", [1, M, 1, "1", "9000", "0", "0", "t"])
    assert client.push("@order")["data"] == {"event": 1, "order": order}
    assert client.push("@balance", where=lambda m: "BTC" in m["data"])["data"] == {
        "BTC": {"available": "2", "freeze": "1"}}


def test_bad_ops_get_an_error_and_change_nothing(core, client):
    for message in ("nope", [1], {"op": "dance", "args": ["x"]},
                    {"op": "subscribe", "args": []}, {"op": "subscribe", "args": [1]},
                    {"op": "subscribe", "args": ["NOPE@depth"]},
                    {"op": "subscribe", "args": [f"{M}@markprice"]},
                    {"op": "subscribe", "args": [f"{M}@kline_7"]},
                    {"op": "subscribe", "args": [f"{M}@depth", "BAD"]}):
        client.send(message)
        reply = client.reply()
        assert reply["code"] == 1 and "result" not in reply, (message, reply)
    core.deposit(1, "BTC", "10")
    core.ok("order.put_limit", [1, M, 1, "1", "9000", "0", "0", "t"])
    client.no_push(f"{M}@depth", 0.3)  # the half-valid subscribe subscribed nothing
