"""Inputs that used to reach an unhandled exception (HTTP 500, code 2, or a core that stopped
taking requests), and a write that fails half-way: each is refused or contained, nothing changes
and the core keeps serving."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest

from exchangecore import open_core
from matchengine.errors import CoreError
from tests.support.core import CoreServer, core_config


@pytest.fixture
def core(tmp_path):
    server = CoreServer(tmp_path / "core")
    yield server
    server.close()


def raw(core: CoreServer, text: str):
    return core.session.post(core.url, data=text.encode(), timeout=10,
                             headers={"Content-Type": "application/json"})


def test_deeply_nested_json_is_a_400_not_a_500(core):
    deep = raw(core, "[" * 100_000 + "]" * 100_000)
    assert deep.status_code == 400 and deep.content == b""
    detail = ('{"id":1,"method":"balance.update","params":[1,"BTC","d",1,"1",'
              + '{"a":' * 5000 + "1" + "}" * 5000 + "]}")
    assert raw(core, detail).status_code == 400
    assert core.ok("balance.query", [1, "BTC"])["BTC"]["available"] == "0"


def test_nan_and_infinity_literals_are_undecodable_json(core):
    """viabtc's parser (jansson) refuses them; Python's json would let NaN into the log."""
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = ('{"id":1,"method":"balance.update","params":[1,"BTC","d",1,"1",{"x":'
                + literal + "}]}")
        reply = raw(core, body)
        assert reply.status_code == 400 and reply.content == b"", literal
    assert core.ok("balance.query", [1, "BTC"])["BTC"]["available"] == "0"


def test_lone_surrogates_in_strings_get_code_1(core):
    for body in (
        '{"id":1,"method":"order.put_limit","params":[1,"BTCUSDT",1,"1","1","0","0","\\ud800"]}',
        '{"id":1,"method":"balance.update","params":[1,"BTC","\\udfff",1,"1",{}]}',
    ):
        reply = raw(core, body)
        assert reply.status_code == 200
        assert reply.json()["error"] == {"code": 1, "message": "invalid argument"}, body
    assert core.ok("balance.update", [1, "BTC", "deposit", 1, "1", {}]) == {"status": "success"}


def test_a_batch_element_with_a_boolean_id_is_answered_with_a_null_id(core):
    reply = core.post([{"id": True, "method": "asset.list", "params": []}])
    assert reply.json() == [{"error": {"code": 1, "message": "invalid argument"},
                             "result": None, "id": None}]


def test_a_balance_beyond_the_34_digit_context_is_refused_and_the_core_keeps_serving(core):
    """ETH keeps 18 places, so a balance reaches 34 digits at 10**16 ETH. Each deposit passes
    the per-change bound; the one that would overflow used to raise inside the engine (code 2)
    and stop the core (code 3 for everything after)."""
    biggest = "9999999999999.99999999"  # the largest change the parser lets through
    calls = [("balance.update", [5, "ETH", "deposit", i, biggest, {}]) for i in range(1, 1002)]
    results = core.service.call_many(calls)
    refused = [r for r in results if isinstance(r, CoreError)]
    assert refused and all(r.code == 1 for r in refused)
    accepted = len(results) - len(refused)
    total = core.ok("balance.query", [5, "ETH"])["ETH"]["available"]
    assert Decimal(total) == Decimal(biggest) * accepted
    # the supply of ETH is bounded, so a second user cannot push it over either ...
    over = core.rpc("balance.update", [6, "ETH", "deposit", 1, biggest, {}])
    assert over["error"] == {"code": 1, "message": "invalid argument"}
    # ... a withdrawal frees room again, and other assets are unaffected
    assert core.ok("balance.update", [5, "ETH", "withdraw", 1, "-" + biggest, {}])
    assert core.ok("balance.update", [6, "ETH", "deposit", 2, "1", {}])
    assert core.ok("balance.update", [6, "BTC", "deposit", 1, "1", {}])


def test_the_supply_bound_survives_a_restart(tmp_path):
    service = open_core(core_config(), tmp_path)
    biggest = "9999999999999.99999999"
    calls = [("balance.update", [5, "ETH", "deposit", i, biggest, {}]) for i in range(1, 1002)]
    accepted = sum(not isinstance(r, CoreError) for r in service.call_many(calls))
    service.snapshot()
    service.stop()
    again = open_core(core_config(), tmp_path)
    try:
        over = again.call("balance.update", [7, "ETH", "deposit", 1, biggest, {}])
        assert isinstance(over, CoreError) and over.code == 1
        total = again.call("balance.query", [5, "ETH"])["ETH"]["available"]
        assert Decimal(total) == Decimal(biggest) * accepted
    finally:
        again.stop()


def test_an_in_process_detail_that_is_not_json_gets_code_1(tmp_path):
    """The in-process client hands params over without JSON: a Decimal (or NaN) in `detail`
    used to fail after the balance had changed, and the core stopped taking requests."""
    service = open_core(core_config(), tmp_path)
    try:
        for detail in ({"amount": Decimal("1")}, {"x": float("nan")}, {"s": {1, 2}}):
            result = service.call("balance.update", [1, "BTC", "deposit", 1, "1", detail])
            assert isinstance(result, CoreError) and result.code == 1, detail
        assert service.call("balance.query", [1, "BTC"])["BTC"]["available"] == "0"
        assert service.call("balance.update", [1, "BTC", "deposit", 1, "1", {"n": 1}]) == {
            "status": "success"}
    finally:
        service.stop()


def test_a_write_that_fails_half_way_reaches_neither_a_snapshot_nor_history(tmp_path):
    """A bug that raises in the middle of an operation leaves memory ahead of the log; the core
    stops taking writes. A snapshot taken after that used to persist the half-applied change
    (restart then showed money the log never had), and the rows it had staged were committed
    with the batch."""
    service = open_core(core_config(), tmp_path)

    def broken_subscriber(message: list) -> None:  # stands for any bug inside an operation
        if Decimal(message[4]) == 5:
            raise RuntimeError("bug")

    service.bus.subscribe("balances", broken_subscriber)
    results = service.call_many([
        ("balance.update", [1, "BTC", "deposit", 1, "1", {}]),
        ("balance.update", [1, "BTC", "deposit", 2, "5", {}]),
    ])
    assert results[0] == {"status": "success"}
    assert isinstance(results[1], CoreError) and results[1].code == 2
    service.snapshot()
    service.stop()
    again = open_core(core_config(), tmp_path)
    try:
        assert again.call("balance.query", [1, "BTC"])["BTC"]["available"] == "1"
        history = again.call("balance.history", [1, "BTC", "", 0, 0, 0, 10])["records"]
        assert [r["change"] for r in history] == ["1"]
    finally:
        again.stop()


def test_a_float_side_is_refused_not_stored(core):
    """`1.0 in (1, 2)` is true in Python: a float side used to rest an order whose side printed
    as 1.0 in replies, the log and history."""
    core.ok("balance.update", [1, "BTC", "deposit", 1, "1", {}])
    for method, params in [
        ("order.put_limit", [1, "BTCUSDT", 1.0, "0.5", "100", "0", "0", ""]),
        ("order.put_market", [1, "BTCUSDT", 2.0, "1", "0", ""]),
        ("order.book", ["BTCUSDT", 1.0, 0, 10]),
        ("order.finished", [1, "BTCUSDT", 0, 0, 0, 10, 1.0]),
    ]:
        assert core.rpc(method, params)["error"] == {"code": 1, "message": "invalid argument"}, \
            method
    assert core.ok("order.book", ["BTCUSDT", 1, 0, 10])["total"] == 0


def test_deep_json_is_refused_under_web3s_recursion_limit(core):
    """With web3 imported (recursion limit 100,000, as when the teller calls the core
    in-process), decoding 100,000 "[" overflowed the thread's C stack: SIGSEGV, not a 400."""
    import web3  # noqa: F401

    assert sys.getrecursionlimit() >= 100_000
    deep = raw(core, "[" * 100_000)
    assert deep.status_code == 400 and deep.content == b""
    assert core.ok("balance.query", [1, "BTC"])["BTC"]["available"] == "0"
