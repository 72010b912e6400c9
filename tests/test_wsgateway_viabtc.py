"""The viabtc accessws dialect against a real `teller core run`: every method, every push after
real orders and deals over HTTP, auth through a real auth_url server, order entry."""

from __future__ import annotations

import time

import pytest

from tests.support.wscore import AuthServer, Client, WsCore, sign, traded

M = "BTCUSDT"


@pytest.fixture
def auth():
    server = AuthServer({"tok-1": 1, "tok-2": 2, "tok-3": 3}, keys={"key-4": ("secret-4", 4)})
    yield server
    server.close()


@pytest.fixture
def core(tmp_path, auth):
    proc = WsCore(tmp_path, ws={"auth_url": auth.url, "sign_url": auth.sign_url})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(core):
    c = Client(core.ws_url())
    yield c
    c.close()


def trade(core: WsCore, price: str = "9000", amount: str = "0.4") -> None:
    """User 1 sells 1 BTC at `price`, user 2 buys `amount` of it: one deal."""
    core.deposit(1, "BTC", "10")
    core.deposit(2, "USDT", "100000")
    core.ok("order.put_limit", [1, M, 1, "1", price, "0.001", "0.002", "t"])
    core.ok("order.put_limit", [2, M, 2, amount, price, "0.001", "0.002", "t"])


def test_server_methods_and_the_queries_answer_as_the_core_does(core, client):
    assert client.ok("server.ping", []) == "pong"
    assert abs(client.ok("server.time", []) - time.time()) < 5
    trade(core)
    now = int(time.time())
    for method, http, params in [
            ("depth.query", "order.depth", [M, 10, "0"]),
            ("price.query", "market.last", [M]),
            ("state.query", "market.status", [M, 86400]),
            ("today.query", "market.status_today", [M]),
            ("deals.query", "market.deals", [M, 10, 0]),
            ("kline.query", "market.kline", [M, now - 60, now, 60])]:
        assert client.ok(method, params) == core.ok(http, params), method
    bad = client.call("depth.query", ["NOPE", 10, "0"])
    assert bad["error"]["code"] == 1 and bad["result"] is None


def test_depth_starts_with_a_clean_snapshot_then_diffs(core, client):
    core.deposit(1, "BTC", "10")
    core.ok("order.put_limit", [1, M, 1, "1", "9100", "0", "0", "t"])
    assert client.ok("depth.subscribe", [M, 10, "0"]) == {"status": "success"}
    first = client.push("depth.update")
    assert first["id"] is None
    assert first["params"] == [True, {"asks": [["9100", "1"]], "bids": []}, M]
    core.ok("order.put_limit", [1, M, 1, "2", "9200", "0", "0", "t"])
    assert client.push("depth.update")["params"] == [False, {"asks": [["9200", "2"]]}, M]
    order = core.ok("order.put_limit", [1, M, 1, "0.5", "9100", "0", "0", "t"])
    assert client.push("depth.update")["params"] == [False, {"asks": [["9100", "1.5"]]}, M]
    core.ok("order.cancel", [1, M, order["id"]])
    assert client.push("depth.update")["params"] == [False, {"asks": [["9100", "1"]]}, M]
    # a second subscriber to the same depth gets its own clean snapshot, the first nothing
    other = Client(core.ws_url())
    other.ok("depth.subscribe", [M, 10, "0"])
    assert other.push("depth.update")["params"][0] is True
    client.no_push("depth.update", 0.3)
    assert client.ok("depth.unsubscribe", []) == {"status": "success"}
    core.ok("order.put_limit", [1, M, 1, "1", "9300", "0", "0", "t"])
    assert other.push("depth.update")["params"] == [False, {"asks": [["9300", "1"]]}, M]
    client.no_push("depth.update", 0.3)
    other.close()


def test_deal_pushes_price_state_today_deals_kline(core, client):
    for method in ("price", "state", "today", "deals"):
        assert client.ok(f"{method}.subscribe", [M]) == {"status": "success"}
    assert client.ok("kline.subscribe", [M, 60]) == {"status": "success"}
    client.push("state.update")  # the current (empty) state on subscribe, as viabtc's cache
    client.push("today.update")
    client.no_push("price.update", 0.2)  # no last price yet: nothing (viabtc)
    trade(core, price="9000", amount="0.4")
    assert client.push("price.update")["params"] == [M, core.ok("market.last", [M])]
    state = client.push("state.update", where=lambda m: m["params"][1]["last"] != "0")
    assert state["params"] == [M, core.ok("market.status", [M, 86400])]
    assert state["params"][1]["period"] == 86400
    today = client.push("today.update", where=lambda m: m["params"][1]["last"] != "0")
    assert today["params"] == [M, core.ok("market.status_today", [M])]
    deals = client.push("deals.update")
    assert deals["params"][0] == M
    [deal] = deals["params"][1]
    assert deal["price"] == "9000" and deal["amount"] == "0.4" and deal["type"] == "buy"
    assert set(deal) == {"id", "time", "price", "amount", "type"}
    kline = client.push("kline.update")
    [row] = traded(kline["params"])
    assert row[1:] == ["9000", "9000", "9000", "9000", "0.4", "3600", M]
    assert row[0] % 60 == 0
    # a second deal: only the new one
    core.ok("order.put_limit", [2, M, 2, "0.1", "9000", "0", "0", "t"])
    [second] = client.push("deals.update")["params"][1]
    assert second["id"] == deal["id"] + 1
    # a late subscriber gets the recent deals at once
    late = Client(core.ws_url())
    late.ok("deals.subscribe", [M])
    assert [d["id"] for d in late.push("deals.update")["params"][1]] == [second["id"], deal["id"]]
    late.close()


def test_the_clock_pushes_a_new_kline_bucket_with_no_deal_in_it(core, client):
    trade(core, price="9000", amount="0.4")
    client.ok("kline.subscribe", [M, 1])
    [first] = traded(client.push("kline.update")["params"])
    assert first[1:6] == ["9000", "9000", "9000", "9000", "0.4"]
    # no order, no deal: the next second's bucket still arrives, flat at the last close
    later = client.push("kline.update", where=lambda m: m["params"][-1][0] > first[0])
    assert later["params"][-1][1:] == ["9000", "9000", "9000", "9000", "0", "0", M]
    assert later["params"][-1] == core.ok("market.kline", [M, first[0], later["params"][-1][0],
                                                           1])[-1]


def test_auth_is_checked_through_auth_url_and_cached(core, client, auth):
    assert client.call("order.query", [M, 0, 10])["error"] == {
        "code": 6, "message": "require authentication"}
    assert client.call("asset.subscribe", ["BTC"])["error"]["code"] == 6
    refused = client.call("server.auth", ["wrong", "web"])
    assert refused["error"] == {"code": 11, "message": "invalid token"}
    assert client.call("server.auth", ["tok-1"])["error"]["code"] == 1  # arity
    assert client.call("server.auth", ["tok-1", "x" * 31])["error"]["code"] == 1
    assert client.ok("server.auth", ["tok-1", "web"]) == {"status": "success"}
    again = Client(core.ws_url())
    assert again.ok("server.auth", ["tok-1", "web"]) == {"status": "success"}
    assert auth.requests.count("tok-1") == 1  # the second auth came from the cache
    assert auth.requests.count("wrong") == 1
    again.close()


def test_server_sign_logs_an_api_key_in_through_sign_url(core, client, auth):
    tonce = int(time.time() * 1000)
    signature = sign("secret-4", "key-4", tonce)
    assert client.call("server.sign", ["key-4", signature])["error"]["code"] == 1  # arity
    assert client.call("server.sign", ["key-4", signature, 0])["error"]["code"] == 1
    assert client.call("server.sign", ["key-4", signature, str(tonce)])["error"]["code"] == 1
    assert client.call("server.sign", ["key-4", "bad", tonce])["error"] == {
        "code": 11, "message": "invalid token"}
    assert client.call("order.query", [M, 0, 10])["error"]["code"] == 6  # nothing changed
    assert client.ok("server.sign", ["key-4", signature, tonce]) == {"status": "success"}
    core.deposit(4, "BTC", "2")
    order = client.ok("order.put_limit", [M, 1, "1", "9000", "0", "0", "bot"])
    assert order["user"] == 4
    assert client.ok("asset.query", ["BTC"])["BTC"] == {"available": "1", "freeze": "1"}
    # a replayed signature is the sign service's to refuse, and is not cached here
    again = Client(core.ws_url())
    assert again.call("server.sign", ["key-4", signature, tonce])["error"]["code"] == 11
    again.close()
    assert auth.requests.count(signature) == 2


def test_private_queries_and_pushes_after_auth(core, client):
    core.deposit(1, "BTC", "10")
    client.ok("server.auth", ["tok-1", "web"])
    assert client.ok("asset.query", ["BTC"]) == core.ok("balance.query", [1, "BTC"])
    assert client.ok("asset.query", []) == core.ok("balance.query", [1])
    assert client.ok("asset.history", ["BTC", "", 0, 0, 0, 10]) == core.ok(
        "balance.history", [1, "BTC", "", 0, 0, 0, 10])
    client.ok("order.subscribe", [M])
    client.ok("asset.subscribe", ["BTC", "USDT"])
    order = core.ok("order.put_limit", [1, M, 1, "2", "9000", "0.001", "0.002", "t"])
    put = client.push("order.update")
    assert put["params"] == [1, order]
    asset = client.push("asset.update", where=lambda m: "BTC" in m["params"][0])
    assert asset["params"] == [core.ok("balance.query", [1, "BTC"])]
    assert asset["params"][0]["BTC"] == {"available": "8", "freeze": "2"}
    assert client.ok("order.query", [M, 0, 10]) == core.ok("order.pending", [1, M, 0, 10])
    assert client.call("order.query", [M, 0])["error"]["code"] == 1
    # another user's order reaches user 1 only through the deal it makes
    core.deposit(2, "USDT", "100000")
    core.ok("order.put_limit", [2, M, 2, "0.5", "9000", "0", "0", "t"])
    update = client.push("order.update")
    assert update["params"][0] == 2 and update["params"][1]["left"] == "1.5"
    core.ok("order.cancel", [1, M, order["id"]])
    finish = client.push("order.update", where=lambda m: m["params"][0] == 3)
    assert finish["params"][1]["id"] == order["id"]
    history = client.ok("order.history", [M, 0, 0, 0, 10, 0])
    assert history == core.ok("order.finished", [1, M, 0, 0, 0, 10, 0])
    client.ok("order.unsubscribe", [])
    core.ok("order.put_limit", [1, M, 1, "1", "9500", "0", "0", "t"])
    client.no_push("order.update", 0.3)


def test_order_entry_over_websocket(core, client):
    core.deposit(3, "BTC", "5")
    core.deposit(2, "USDT", "100000")
    assert client.call("order.put_limit", [M, 1, "1", "9000", "0", "0", "ws"])["error"][
        "code"] == 6
    client.ok("server.auth", ["tok-3", "app"])
    client.ok("order.subscribe", [M])
    order = client.ok("order.put_limit", [M, 1, "1", "9000", "0.001", "0.002", "ws"])
    assert order["user"] == 3 and order["source"] == "ws" and order["left"] == "1"
    assert core.ok("order.pending_detail", [M, order["id"]]) == order
    assert client.push("order.update")["params"] == [1, order]
    # the same refusals as HTTP, nothing changed
    assert client.call("order.put_limit", [M, 1, "100", "9000", "0", "0", "ws"])["error"] == {
        "code": 10, "message": "balance not enough"}
    assert client.call("order.put_limit", [M, 1, "1", "9000", "0", "0"])["error"]["code"] == 1
    assert client.call("order.put_limit", [3, M, 1, "1", "9000", "0", "0", "ws"])["error"][
        "code"] == 1  # a user id where the market goes
    cancelled = client.ok("order.cancel", [M, order["id"]])
    assert cancelled["id"] == order["id"]
    assert client.call("order.cancel", [M, order["id"]])["error"]["code"] == 10
    # a market order against user 2's bid
    core.ok("order.put_limit", [2, M, 2, "1", "9000", "0", "0", "t"])
    market = client.ok("order.put_market", [M, 1, "0.5", "0.001", "ws"])
    assert market["type"] == 2 and market["deal_stock"] == "0.5"
    assert core.ok("balance.query", [3, "BTC"])["BTC"]["available"] == "4.5"
    # user 2's order cannot be cancelled by user 3
    bid = core.ok("order.pending", [2, M, 0, 10])["records"][0]
    assert client.call("order.cancel", [M, bid["id"]])["error"]["code"] == 11


def test_order_entry_pays_the_operators_fee_rates_when_ws_sets_them(tmp_path, auth):
    core = WsCore(tmp_path / "fees", ws={"auth_url": auth.url, "taker_fee": "0.003",
                                         "maker_fee": "0.001"})
    core.start()
    client = Client(core.ws_url())
    try:
        core.deposit(3, "BTC", "5")
        core.deposit(2, "USDT", "100000")
        client.ok("server.auth", ["tok-3", "app"])
        order = client.ok("order.put_limit", [M, 1, "1", "9000", "0", "0", "ws"])
        assert (order["taker_fee"], order["maker_fee"]) == ("0.003", "0.001")
        core.ok("order.put_limit", [2, M, 2, "1", "8000", "0", "0", "t"])
        market = client.ok("order.put_market", [M, 1, "0.5", "0", "ws"])
        assert market["taker_fee"] == "0.003"
        assert market["deal_fee"] == "12"  # 0.5 BTC at 8000 = 4000 USDT, 0.3 % of it
        assert client.call("order.put_market", [M, 1, "0.5", "ws"])["error"]["code"] == 1
        # the client's fee params are not used, but still have to be fee rates
        for bad in ("x", "1", "-0.1", {"rate": "0"}, None):
            assert client.call("order.put_limit", [M, 1, "0.1", "9500", bad, "0", "ws"])[
                "error"] == {"code": 1, "message": "invalid argument"}, bad
            assert client.call("order.put_limit", [M, 1, "0.1", "9500", "0", bad, "ws"])[
                "error"]["code"] == 1, bad
        assert core.ok("order.pending", [3, M, 0, 10])["records"] == [order]  # nothing placed
    finally:
        client.close()
        core.stop()


def test_reauth_as_another_user_drops_private_subscriptions(core, client):
    client.ok("server.auth", ["tok-1", "web"])
    client.ok("order.subscribe", [M])
    client.ok("server.auth", ["tok-2", "web"])
    core.deposit(1, "BTC", "10")
    core.ok("order.put_limit", [1, M, 1, "1", "9000", "0", "0", "t"])
    client.no_push("order.update", 0.3)


def test_bad_messages_get_an_error_and_change_nothing(core, client):
    client.send("not json")
    assert client.reply()["error"]["code"] == 1
    client.send({"id": "x", "method": "server.ping", "params": []})
    assert client.reply()["error"]["code"] == 1
    client.send({"id": 5, "method": "server.ping", "params": {}})
    assert client.reply(5)["error"]["code"] == 1
    assert client.call("no.such", [])["error"] == {"code": 4, "message": "method not found"}
    for params in ([M, 7, "0"], [M, 10], ["NOPE", 10, "0"], [M, 10, "x"], [M, True, "0"]):
        assert client.call("depth.subscribe", params)["error"]["code"] == 1, params
    assert client.call("kline.subscribe", [M, 7])["error"]["code"] == 1  # not a kline interval
    assert client.call("price.subscribe", [M, "NOPE"])["error"]["code"] == 1
    assert client.call("price.subscribe", [M, 1])["error"]["code"] == 1
    core.deposit(1, "BTC", "10")
    core.ok("order.put_limit", [1, M, 1, "1", "9000", "0", "0", "t"])
    client.no_push("depth.update", 0.3)  # none of the refused subscriptions exists
    client.no_push("price.update", 0.1)
    assert client.ok("server.ping", []) == "pong"  # the connection is still fine
