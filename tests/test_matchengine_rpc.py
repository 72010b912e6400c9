"""Every JSON-RPC method over real HTTP: result shapes (the OpenRPC document's examples, from
ceyonur/viabtc-openrpc, are the contract), errors, HTTP status rules, and batches."""

from __future__ import annotations

import pytest
import requests

from tests.support.core import CoreServer

ORDER_KEYS = {"id", "side", "deal_money", "source", "price", "market", "ctime", "type", "user",
              "mtime", "maker_fee", "amount", "left", "taker_fee", "deal_fee", "deal_stock"}
FINISHED_KEYS = {"deal_money", "user", "id", "ctime", "side", "deal_fee", "ftime", "market",
                 "source", "type", "price", "amount", "taker_fee", "maker_fee", "deal_stock"}
DEAL_KEYS = {"role", "time", "id", "user", "price", "amount", "deal", "deal_order_id", "fee"}
USER_DEAL_KEYS = DEAL_KEYS | {"side", "market"}
BALANCE_HISTORY_KEYS = {"asset", "time", "business", "change", "detail", "balance"}
ASSET_SUMMARY_KEYS = {"name", "available_count", "total_balance", "freeze_count",
                      "available_balance", "freeze_balance"}
MARKET_KEYS = {"name", "money_prec", "stock", "money", "fee_prec", "stock_prec", "min_amount"}
MARKET_SUMMARY_KEYS = {"bid_amount", "name", "ask_count", "bid_count", "ask_amount"}
MARKET_DEAL_KEYS = {"price", "id", "type", "amount", "time"}
STATUS_KEYS = {"period", "last", "high", "close", "open", "low", "volume", "deal"}
TODAY_KEYS = {"high", "open", "last", "low", "volume", "deal"}


@pytest.fixture
def core(tmp_path):
    server = CoreServer(tmp_path / "core")
    yield server
    server.close()


@pytest.fixture
def traded(core):
    """Two users, one resting ask, one partial fill (the OpenRPC examples' BTCUSD story)."""
    core.ok("balance.update", [1, "BTC", "deposit", 1, "1.1", {"tx": "a"}])
    core.ok("balance.update", [2, "USDT", "deposit", 1, "100000", {}])
    core.ok("order.put_limit", [1, "BTCUSDT", 1, "1", "8000", "0.002", "0.001", ""])
    core.ok("order.put_limit", [2, "BTCUSDT", 2, "0.375", "8000", "0.002", "0.001", "web"])
    return core


def test_balance_and_asset_methods(traded):
    core = traded
    assert core.ok("balance.update", [1, "BTC", "withdraw", 2, "-0.1", {}]) == {
        "status": "success"}
    assert core.ok("balance.query", [1, "BTC"]) == {"BTC": {"available": "0", "freeze": "0.625"}}
    everything = core.ok("balance.query", [1])
    assert set(everything) == {"BTC", "ETH", "LTC", "SKY", "USDT"}
    assert everything["USDT"] == {"available": "2997", "freeze": "0"}
    assert core.ok("asset.list", []) == [
        {"name": "BTC", "prec": 8}, {"name": "ETH", "prec": 8}, {"name": "LTC", "prec": 8},
        {"name": "SKY", "prec": 6}, {"name": "USDT", "prec": 6}]
    summary = core.ok("asset.summary", ["BTC"])
    assert len(summary) == 1 and set(summary[0]) == ASSET_SUMMARY_KEYS
    assert summary[0]["available_count"] == 1 and summary[0]["freeze_balance"] == "0.625"
    history = core.ok("balance.history", [1, "BTC", "", 0, 0, 0, 50])
    assert set(history) == {"offset", "limit", "records"}
    records = history["records"]
    assert all(set(r) == BALANCE_HISTORY_KEYS for r in records)
    assert records[0]["business"] == "withdraw" and records[0]["detail"] == {"id": 2}
    assert records[-1]["detail"] == {"tx": "a", "id": 1} and records[-1]["balance"] == "1.1"
    deposits = core.ok("balance.history", [1, "BTC", "deposit", 0, 0, 0, 50])["records"]
    assert [r["change"] for r in deposits] == ["1.1"]


def test_order_methods(traded):
    core = traded
    book = core.ok("order.book", ["BTCUSDT", 1, 0, 10])
    assert set(book) == {"offset", "limit", "total", "orders"} and book["total"] == 1
    order = book["orders"][0]
    assert set(order) == ORDER_KEYS
    assert (order["left"], order["deal_stock"], order["deal_money"], order["deal_fee"]) == (
        "0.625", "0.375", "3000", "3")
    assert core.ok("order.depth", ["BTCUSDT", 10, "0"]) == {"asks": [["8000", "0.625"]],
                                                            "bids": []}
    assert core.ok("order.depth", ["BTCUSDT", 10, "300"])["asks"] == [["8100", "0.625"]]
    pending = core.ok("order.pending", [1, "BTCUSDT", 0, 10])
    assert set(pending) == {"offset", "limit", "total", "records"} and pending["total"] == 1
    assert core.ok("order.pending_detail", ["BTCUSDT", order["id"]]) == order
    assert core.ok("order.pending_detail", ["BTCUSDT", 999]) is None
    deals = core.ok("order.deals", [order["id"], 0, 10])
    assert set(deals) == {"offset", "limit", "records"}
    assert [set(r) for r in deals["records"]] == [DEAL_KEYS]
    assert deals["records"][0]["role"] == 1 and deals["records"][0]["fee"] == "3"
    cancelled = core.ok("order.cancel", [1, "BTCUSDT", order["id"]])
    assert set(cancelled) == ORDER_KEYS and cancelled["left"] == "0.625"
    finished = core.ok("order.finished", [1, "BTCUSDT", 0, 0, 0, 10])
    assert [set(r) for r in finished["records"]] == [FINISHED_KEYS]
    assert core.ok("order.finished", [1, "BTCUSDT", 0, 0, 0, 10, 2])["records"] == []
    assert core.ok("order.finished_detail", [order["id"]]) == finished["records"][0]
    assert core.ok("order.finished_detail", [12345]) is None
    user_deals = core.ok("market.user_deals", [2, "BTCUSDT", 0, 10])
    assert [set(r) for r in user_deals["records"]] == [USER_DEAL_KEYS]
    assert user_deals["records"][0]["side"] == 2 and user_deals["records"][0]["role"] == 2


def test_cancelled_unfilled_order_is_in_finished_history(core):
    core.ok("balance.update", [5, "BTC", "deposit", 1, "1", {}])
    order = core.ok("order.put_limit", [5, "BTCUSDT", 1, "0.5", "9000", "0", "0", ""])
    core.ok("order.cancel", [5, "BTCUSDT", order["id"]])
    detail = core.ok("order.finished_detail", [order["id"]])
    assert detail["deal_stock"] == "0" and detail["amount"] == "0.5"


def test_market_put_and_market_data_methods(traded):
    core = traded
    bought = core.ok("order.put_market", [2, "BTCUSDT", 2, "1000", "0.002", ""])
    assert set(bought) == ORDER_KEYS
    assert (bought["type"], bought["price"], bought["deal_stock"], bought["deal_fee"]) == (
        2, "0", "0.125", "0.00025")
    markets = core.ok("market.list", [])
    assert [set(m) for m in markets] == [MARKET_KEYS] * 4
    assert markets[2] == {"name": "BTCUSDT", "stock": "BTC", "money": "USDT", "fee_prec": 4,
                          "stock_prec": 8, "money_prec": 2, "min_amount": "0.0001"}
    summary = core.ok("market.summary", ["BTCUSDT"])
    assert summary == [{"name": "BTCUSDT", "ask_count": 1, "ask_amount": "0.5",
                        "bid_count": 0, "bid_amount": "0"}]
    assert set(core.ok("market.summary", [])[0]) == MARKET_SUMMARY_KEYS
    assert isinstance(core.ok("market.last", ["BTCUSDT"]), str)
    deals = core.ok("market.deals", ["BTCUSDT", 10, 0])
    assert [d["id"] for d in deals] == [2, 1] and set(deals[0]) == MARKET_DEAL_KEYS
    assert deals[0]["type"] == "buy"
    assert core.ok("market.deals", ["BTCUSDT", 10, 1])[0]["id"] == 2
    kline = core.ok("market.kline", ["BTCUSDT", 1, 2**31, 86400])
    assert kline and len(kline[0]) == 8 and kline[0][-1] == "BTCUSDT"
    assert set(core.ok("market.status", ["BTCUSDT", 86400])) == STATUS_KEYS
    assert set(core.ok("market.status_today", ["BTCUSDT"])) == TODAY_KEYS


def _state(core: CoreServer) -> tuple:
    return (core.ok("asset.summary", []), core.ok("market.summary", []),
            core.ok("balance.history", [1, "", "", 0, 0, 0, 100]),
            core.service.oper_id, core.service.engine.order_id)


BAD_CALLS = [
    ("balance.query", []), ("balance.query", [0]), ("balance.query", [1, "XXX"]),
    ("balance.query", ["1"]),
    ("balance.update", [1, "BTC", "deposit", 9, "1", {}, 1]),
    ("balance.update", [1, "XXX", "deposit", 9, "1", {}]),
    ("balance.update", [1, "BTC", "deposit", "9", "1", {}]),
    ("balance.update", [1, "BTC", "deposit", 9, 1, {}]),
    ("balance.update", [1, "BTC", "deposit", 9, "1_0", {}]),
    ("balance.update", [1, "BTC", "deposit", 9, "nan", {}]),
    ("balance.update", [1, "BTC", "deposit", 9, "1", []]),
    ("balance.update", [-1, "BTC", "deposit", 9, "1", {}]),
    ("balance.update", [True, "BTC", "deposit", 9, "1", {}]),
    ("balance.history", [1, "BTC", "", 0, 0, 0, 0]),
    ("balance.history", [1, "BTC", "", 5, 4, 0, 10]),
    ("balance.history", [0, "BTC", "", 0, 0, 0, 10]),
    ("asset.summary", ["XXX"]),
    ("order.put_limit", [1, "NOPE", 1, "1", "1", "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 3, "1", "1", "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "0", "1", "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "0.000000001", "1", "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "1", "-1", "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "1", "1", "1", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "1", "1", "0", "-0.1", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "1", "1", "0", "0", "x" * 31]),
    ("order.put_limit", [1, "BTCUSDT", 1, "1", "1", "0", "0"]),
    ("order.put_limit", [1, "BTCUSDT", 1, ["1"], "1", "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "1", {"p": 1}, "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 1, "1", "1", [], "0", ""]),
    ("order.put_limit", [1, ["BTCUSDT"], 1, "1", "1", "0", "0", ""]),
    ("order.put_market", [1, "BTCUSDT", 1, ["1"], "0", ""]),
    ("order.put_market", [1, "BTCUSDT", 1, "1", {}, ""]),
    ("order.cancel", [1, ["BTCUSDT"], 1]),
    ("order.put_market", [1, "BTCUSDT", 1, "1", "0"]),
    ("order.put_market", [1, "BTCUSDT", 1, 1, "0", ""]),
    ("order.cancel", [1, "BTCUSDT", "1"]),
    ("order.cancel", [1, "NOPE", 1]),
    ("order.book", ["BTCUSDT", 1, 0, 102]), ("order.book", ["NOPE", 1, 0, 10]),
    ("order.book", ["BTCUSDT", 0, 0, 10]),
    ("order.depth", ["BTCUSDT", 10, 0]), ("order.depth", ["BTCUSDT", 10, "-1"]),
    ("order.pending", [1, "BTCUSDT", 0, 200]),
    ("order.pending_detail", ["BTCUSDT"]),
    ("order.deals", [0, 0, 10]), ("order.deals", [1, 0, 102]),
    ("order.finished", [1, "BTCUSDT", 0, 0, 0, 10, 3]),
    ("order.finished", [1, "BTCUSDT", 0, 0, 0]),
    ("order.finished_detail", [0]),
    ("market.summary", ["NOPE"]), ("market.last", ["NOPE"]), ("market.last", []),
    ("market.deals", ["BTCUSDT", 0, 0]), ("market.deals", ["BTCUSDT", 10001, 0]),
    ("market.kline", ["BTCUSDT", 1, 2**31, 7]), ("market.kline", ["BTCUSDT", 1, 2**31]),
    ("market.status", ["BTCUSDT", 0]), ("market.status_today", ["NOPE"]),
    ("market.user_deals", [1, "BTCUSDT", 0, 0]), ("market.user_deals", [1, "NOPE", 0, 10]),
    # numbers that parse but cannot be applied in viabtc's 34-digit context
    ("balance.update", [1, "BTC", "deposit", 9, "1e999999", {}]),
    ("balance.update", [1, "BTC", "deposit", 9, "1e25", {}]),
    ("balance.update", [1, "BTC", "deposit", 9, "-1e25", {}]),
    ("order.put_limit", [1, "BTCUSDT", 2, "999999999999999999", "1", "0", "0", ""]),
    ("order.put_limit", [1, "BTCUSDT", 2, "1", "1e20", "0", "0", ""]),
    ("order.put_market", [1, "BTCUSDT", 2, "9999999999999999999999", "0", ""]),
    ("order.depth", ["BTCUSDT", 10, "1e999999"]),
]


def test_an_unappliable_number_does_not_take_the_core_down(traded):
    """One huge change used to stop the core: every later request got code 3."""
    core = traded
    for method, params in BAD_CALLS[-7:]:
        assert core.rpc(method, params)["error"]["code"] == 1
    assert core.ok("balance.update", [3, "BTC", "deposit", 77, "2", {}]) == {"status": "success"}
    assert core.ok("balance.query", [3, "BTC"])["BTC"]["available"] == "2"


def test_bad_params_get_code_1_and_change_nothing(traded):
    core = traded
    before = _state(core)
    for method, params in BAD_CALLS:
        reply = core.rpc(method, params)
        assert reply["error"] == {"code": 1, "message": "invalid argument"}, (method, params,
                                                                              reply)
        assert reply["result"] is None
    assert _state(core) == before


def test_business_errors_are_http_200_with_viabtc_codes(traded):
    core = traded
    cases = [
        ("balance.update", [1, "BTC", "deposit", 1, "1", {}], 10, "repeat update"),
        ("balance.update", [1, "BTC", "withdraw", 3, "-5", {}], 11, "balance not enough"),
        ("order.put_limit", [3, "BTCUSDT", 1, "1", "1", "0", "0", ""], 10, "balance not enough"),
        ("order.put_limit", [2, "BTCUSDT", 2, "0.00001", "1", "0", "0", ""], 11,
         "amount too small"),
        ("order.put_market", [1, "ETHUSDT", 1, "1", "0", ""], 10, "balance not enough"),
        ("order.put_market", [2, "ETHUSDT", 2, "1", "0", ""], 12, "no enough trader"),
        ("order.cancel", [1, "BTCUSDT", 999], 10, "order not found"),
        ("order.cancel", [2, "BTCUSDT", 1], 11, "user not match"),
    ]
    before = _state(core)
    for method, params, code, message in cases:
        reply = core.post({"id": 7, "method": method, "params": params})
        assert reply.status_code == 200
        assert reply.json() == {"error": {"code": code, "message": message}, "result": None,
                                "id": 7}, method
    assert _state(core) == before


def test_http_status_rules(core):
    assert core.session.get(core.url).status_code == 400
    empty = core.session.post(core.url, data=b"")
    assert empty.status_code == 400 and empty.content == b""
    assert core.session.post(core.url, data=b"{nope").status_code == 400
    assert core.post({"id": "1", "method": "asset.list", "params": []}).status_code == 400
    assert core.post({"id": 1, "method": "asset.list", "params": {}}).status_code == 400
    missing = core.post({"id": 3, "method": "no.such", "params": []})
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": 4, "message": "method not found"},
                              "result": None, "id": 3}
    other_path = requests.post(core.url + "any/path", json={"id": 1, "method": "asset.list",
                                                            "params": [], "jsonrpc": "2.0"})
    assert other_path.status_code == 200 and other_path.json()["result"]


def test_batch_replies_in_order(core):
    body = [{"id": i, "method": "balance.update",
             "params": [i, "BTC", "deposit", i, "1", {}]} for i in range(1, 51)]
    body.append({"id": 99, "method": "no.such", "params": []})
    body.append({"id": 100, "method": "balance.query", "params": [50, "BTC"]})
    body.append("garbage")
    reply = core.post(body)
    assert reply.status_code == 200
    items = reply.json()
    assert [item["id"] for item in items[:50]] == list(range(1, 51))
    assert all(item["result"] == {"status": "success"} for item in items[:50])
    assert items[50]["error"]["code"] == 4
    assert items[51]["result"] == {"BTC": {"available": "1", "freeze": "0"}}
    assert items[52] == {"error": {"code": 1, "message": "invalid argument"}, "result": None,
                         "id": None}
