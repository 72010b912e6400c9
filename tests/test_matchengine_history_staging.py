"""History rows are staged in the operation's commit and indexed later in bulk: a read sees
every acknowledged operation at once, staged rows survive a crash before any index pass,
and an index pass that races a commit moves only what it took."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap

import pytest

from exchangecore import open_core
from matchengine import service as core_service
from matchengine.service import CoreService, RecoveryError
from matchengine.store import HISTORY_DBS, Rows, Store, empty_rows, u32, u64
from tests.support.core import ROOT, core_config

CALLS = [("balance.update", [1, "BTC", "deposit", 1, "10", {}]),
         ("balance.update", [2, "USDT", "deposit", 1, "100000", {}]),
         ("order.put_limit", [1, "BTCUSDT", 1, "0.5", "8000", "0.002", "0.001", "a"]),
         ("order.put_limit", [2, "BTCUSDT", 2, "0.2", "8000", "0.002", "0.001", "b"]),
         ("order.put_limit", [1, "BTCUSDT", 1, "0.1", "9000", "0", "0", "c"]),
         ("order.cancel", [1, "BTCUSDT", 3])]


def history(service: CoreService) -> list:
    return [service.call("balance.history", [1, "", "", 0, 0, 0, 100]),
            service.call("order.finished", [1, "BTCUSDT", 0, 0, 0, 100]),
            service.call("order.deals", [1, 0, 100]),
            service.call("market.user_deals", [2, "BTCUSDT", 0, 100]),
            service.call("order.finished_detail", [3])]


def check_history(records: list) -> None:
    balance, finished, deals, user_deals, detail = records
    # user 1 (newest first): the fill of order 1 (BTC paid, USDT in, fee out), the deposit
    assert [r["business"] for r in balance["records"]] == ["trade"] * 3 + ["deposit"]
    assert [r["id"] for r in finished["records"]] == [3]  # the cancelled one
    assert len(deals["records"]) == 1 and len(user_deals["records"]) == 1
    assert detail["id"] == 3 and detail["source"] == "c"


@pytest.fixture
def no_index_passes(monkeypatch):
    """The history thread never runs a pass on its own during the test."""
    monkeypatch.setattr(core_service, "INDEX_INTERVAL", 3600)


def test_a_read_sees_rows_still_staged(tmp_path, no_index_passes):
    service = open_core(core_config(), tmp_path)
    try:
        service.call_many(CALLS)
        assert service.store.staged_rows() > 0
        check_history(history(service))
        assert service.store.staged_rows() == 0  # the read indexed them
    finally:
        service.stop()


def test_staged_rows_survive_a_crash_before_any_index_pass(tmp_path):
    script = textwrap.dedent(f"""
        import os
        from matchengine import service
        service.INDEX_INTERVAL = 3600
        from tests.support.core import core_config
        core = service.CoreService(core_config(), {str(tmp_path)!r})
        core.call_many({CALLS!r})
        os._exit(0)  # no stop(), no final index pass: as after a kill -9
    """)
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
    store = Store(tmp_path)
    assert store.staged_rows() > 0
    store.close()
    restarted = open_core(core_config(), tmp_path)
    try:
        check_history(history(restarted))
    finally:
        restarted.stop()
    again = open_core(core_config(), tmp_path)  # indexed once: no row twice
    try:
        check_history(history(again))
    finally:
        again.stop()


def balance_rows(*entries: tuple[bytes, bytes]) -> Rows:
    rows = empty_rows()
    rows[HISTORY_DBS.index("h_balance")].extend(entries)
    return rows


def test_an_index_pass_moves_only_the_rows_it_took(tmp_path):
    store = Store(tmp_path)
    try:
        store.commit([(1, b"[]")], [], [balance_rows((u32(1) + bytes(8), b'{"n":1}'),
                                                     (u32(1) + bytes(7) + b"\x01", b'{"n":2}'))])
        older = store._staged
        store._staged = []
        store.commit([(2, b"[]")], [], [balance_rows((u32(1) + bytes(7) + b"\x02",
                                                      b'{"n":3}'))])
        # a pass that took its rows before the second commit staged more
        assert store._index(older) == 2
        assert [v for _, v in store.scan_prefix_desc("h_balance", u32(1))] == \
            [b'{"n":2}', b'{"n":1}']
    finally:
        store.close()
    reopened = Store(tmp_path)
    try:
        assert reopened.staged_rows() == 1  # only the newer row is left on disk
        assert reopened.index_history() == 1
        assert [v for _, v in reopened.scan_prefix_desc("h_balance", u32(1))] == \
            [b'{"n":3}', b'{"n":2}', b'{"n":1}']
        assert reopened.staged_rows() == 0 and reopened.index_history() == 0
    finally:
        reopened.close()


def test_rows_staged_one_per_entry_by_older_versions_are_moved_at_open(tmp_path):
    store = Store(tmp_path)
    key = u32(4) + bytes(7) + b"\x01"
    with store.env.begin(write=True) as txn:  # h_log as the previous layout staged rows
        txn.put(u64(0), bytes((HISTORY_DBS.index("h_balance"), len(key))) + key + b'{"n":1}',
                db=store.db["h_log"])
    store.close()
    reopened = Store(tmp_path)
    try:
        assert [v for _, v in reopened.scan_prefix_desc("h_balance", u32(4))] == [b'{"n":1}']
        with reopened.env.begin(db=reopened.db["h_log"]) as txn:
            assert txn.stat(reopened.db["h_log"])["entries"] == 0
    finally:
        reopened.close()


@pytest.mark.parametrize("value", [b"\xff\x00garbage", marshal.dumps(7), marshal.dumps((1, 2))])
def test_a_corrupt_staged_entry_refuses_to_open_with_a_clear_message(tmp_path, value):
    store = Store(tmp_path)
    with store.env.begin(write=True) as txn:
        txn.put(u64(0), value, db=store.db["h_stage"])
    store.close()
    with pytest.raises(ValueError, match="staged history entry 0 .* is corrupt"):
        Store(tmp_path)
    with pytest.raises(RecoveryError, match="refusing to open"):  # the start-up refusal
        open_core(core_config(), tmp_path)


def test_finished_orders_written_before_index_entries_became_pointers_still_read(tmp_path):
    from matchengine.history import HistoryReader, _market_key

    store = Store(tmp_path)
    try:
        record = (b'{"id":9,"ctime":1.0,"ftime":2.0,"user":5,"market":"BTCUSDT","source":"",'
                  b'"type":1,"side":1,"price":"1","amount":"1","taker_fee":"0",'
                  b'"maker_fee":"0","deal_stock":"0","deal_money":"0","deal_fee":"0"}')
        with store.env.begin(write=True) as txn:  # the layout of older data directories
            txn.put(u32(5) + _market_key("BTCUSDT") + u64(9), record, db=store.db["h_order"])
            txn.put(u64(9), record, db=store.db["h_detail"])
        reader = HistoryReader(store)
        assert [r["id"] for r in reader.order_finished(5, "BTCUSDT", 0, 0, 0, 10, 0)] == [9]
    finally:
        store.close()


def test_a_history_read_in_a_batch_sees_the_writes_before_it(tmp_path):
    service = open_core(core_config(), tmp_path)
    try:
        results = service.call_many([
            ("balance.update", [7, "BTC", "deposit", 1, "1", {}]),
            ("balance.history", [7, "BTC", "", 0, 0, 0, 10]),
            ("balance.update", [7, "BTC", "deposit", 2, "2", {}]),
            ("balance.history", [7, "BTC", "", 0, 0, 0, 10]),
            ("balance.history", [7, "", "deposit", 0, 0, 0, 10])])
        assert [len(r["records"]) for r in (results[1], results[3], results[4])] == [1, 2, 2]
        assert results[0] == results[2] == {"status": "success"}
    finally:
        service.stop()
