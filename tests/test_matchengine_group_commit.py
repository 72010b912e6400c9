"""The core's pipelined group commit still replies only after the disk has the operation,
and `market.last` is printed like viabtc's marketprice (the deal price, zeros kept)."""

from __future__ import annotations

import threading

from exchangecore import open_core
from matchengine.errors import CoreError
from tests.support.core import CoreServer, core_config


def test_every_reply_comes_after_its_history_rows_are_on_disk(tmp_path):
    """Cancels from several threads: the finished order is readable from LMDB (same
    transaction as the log entry) as soon as the cancel's reply arrives."""
    service = open_core(core_config(), tmp_path)
    errors: list[str] = []

    def trader(user: int) -> None:
        service.call("balance.update", [user, "BTC", "deposit", 1, "100", {}])
        for step in range(60):
            order = service.call("order.put_limit", [user, "BTCUSDT", 1, "0.01",
                                                     f"{20000 + step}", "0", "0", "t"])
            replies = service.call_many([("order.cancel", [user, "BTCUSDT", order["id"]]),
                                         ("order.pending_detail", ["BTCUSDT", order["id"]])])
            if replies[1] is not None or isinstance(replies[0], CoreError):
                errors.append(f"cancel of {order['id']} not applied: {replies}")
            if service.call("order.finished_detail", [order["id"]]) is None:
                errors.append(f"order {order['id']} acknowledged before it was on disk")

    threads = [threading.Thread(target=trader, args=(user,)) for user in range(1, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    last = service.oper_id
    service.stop()
    assert errors == []
    assert last == 6 * (1 + 2 * 60)
    restarted = open_core(core_config(), tmp_path)
    assert restarted.oper_id == last
    restarted.stop()


def test_reads_and_writes_keep_their_order_within_and_across_calls(tmp_path):
    service = open_core(core_config(), tmp_path)
    calls = [("balance.update", [1, "USDT", "deposit", 1, "10", {}]),
             ("balance.query", [1, "USDT"]),
             ("balance.update", [1, "USDT", "deposit", 2, "5", {}]),
             ("balance.query", [1, "USDT"]),
             ("nope.method", []),
             ("balance.query", [1, "NOPE"])]
    results = service.call_many(calls)
    service.stop()
    assert results[0] == results[2] == {"status": "success"}
    assert results[1] == {"USDT": {"available": "10", "freeze": "0"}}
    assert results[3] == {"USDT": {"available": "15", "freeze": "0"}}
    assert (results[4].code, results[5].code) == (4, 1)


def test_market_last_keeps_the_zeros_of_the_deal_price(tmp_path):
    core = CoreServer(tmp_path)
    try:
        assert core.ok("market.last", ["BTCUSDT"]) == "0"
        core.ok("balance.update", [1, "BTC", "deposit", 1, "1", {}])
        core.ok("balance.update", [2, "USDT", "deposit", 1, "100000", {}])
        core.ok("order.put_limit", [1, "BTCUSDT", 1, "0.5", "8000", "0", "0", "t"])
        core.ok("order.put_limit", [2, "BTCUSDT", 2, "0.1", "8000.5", "0", "0", "t"])
        # price at money_prec 2, printed by mpd_to_sci without rstripzero (OpenRPC "8000.0")
        assert core.ok("market.last", ["BTCUSDT"]) == "8000.00"
        # everything else stays zero-stripped
        assert core.ok("market.deals", ["BTCUSDT", 10, 0])[0]["price"] == "8000"
        deals = core.ok("market.user_deals", [2, "BTCUSDT", 0, 10])["records"]
        assert (deals[0]["price"], deals[0]["amount"]) == ("8000", "0.1")
    finally:
        core.close()
    restarted = open_core(core_config(), tmp_path)  # rebuilt from the stored deals
    try:
        assert restarted.call("market.last", ["BTCUSDT"]) == "8000.00"
    finally:
        restarted.stop()
