"""Reply amplification through the core's RPC server is bounded (issue 14).

Before: one 1 MB batch of 14,000 ``market.deals`` calls built a 259 MB reply, and one
``market.kline`` over a week at 1-second intervals returned 604,800 rows.
"""

from __future__ import annotations

import json

import pytest

from marketdata import MarketData
from marketdata.kline import KLINE_MAX_ROWS
from matchengine.http import BATCH_ROWS_MAX, MAX_BATCH_CALLS
from tests.support.core import CoreServer


@pytest.fixture
def core(tmp_path):
    server = CoreServer(tmp_path / "core")
    yield server
    server.close()


def _trade(core: CoreServer) -> None:
    core.ok("balance.update", [1, "BTC", "deposit", 1, "1.1", {}])
    core.ok("balance.update", [2, "USDT", "deposit", 1, "100000", {}])
    core.ok("order.put_limit", [1, "BTCUSDT", 1, "1", "8000", "0.002", "0.001", ""])
    core.ok("order.put_limit", [2, "BTCUSDT", 2, "0.5", "8000", "0.002", "0.001", ""])


def test_a_batch_past_the_call_limit_is_refused_unread(core: CoreServer) -> None:
    calls = [{"id": i, "method": "market.deals", "params": ["BTCUSDT", 10000, 0]}
             for i in range(MAX_BATCH_CALLS + 1)]
    body = json.dumps(calls).encode()
    assert len(body) < 1 << 20  # within the body limit: refused for its size in calls
    r = core.session.post(core.url, data=body, timeout=10)
    assert (r.status_code, r.content) == (413, b"")


def test_a_batchs_reads_share_one_row_budget(core: CoreServer) -> None:
    _trade(core)
    per_call = 10000
    calls = [{"id": i, "method": "market.deals", "params": ["BTCUSDT", per_call, 0]}
             for i in range(100)]
    replies = core.post(calls).json()
    fit = BATCH_ROWS_MAX // per_call
    assert all(r["error"] is None and len(r["result"]) == 1 for r in replies[:fit])
    assert all(r["error"] == {"code": 1, "message": "batch reply too large"}
               for r in replies[fit:])
    assert [r["id"] for r in replies] == list(range(100))
    log_calls = [{"id": 1, "method": "order.put_limit",
                  "params": [1, "BTCUSDT", 1, "0.1", "9000", "0.002", "0.001", ""]}]
    assert core.post(log_calls).json()[0]["error"] is None  # writes cost no rows


def test_a_kline_window_is_capped_to_the_newest_rows() -> None:
    """A week of 1 s candles was 604,800 rows; now the newest KLINE_MAX_ROWS, ending now."""
    now = 1_709_726_400
    md = MarketData(["SKYBTC"], clock=lambda: now)
    md.on_deal([now - 6 * 86400, "SKYBTC", 10, 20, 1, 2, "7", "1", "0", "0", 2, 1, "SKY", "BTC"])
    rows = md.kline("SKYBTC", now - 7 * 86400, now, 1)
    assert len(rows) == KLINE_MAX_ROWS
    assert rows[-1][0] == now and rows[0][0] == now - KLINE_MAX_ROWS + 1
    assert rows[0][1:5] == ["7", "7", "7", "7"]  # the close carried from before the window
    week_of_30s = md.kline("SKYBTC", now - 7 * 86400, now, 30)
    assert len(week_of_30s) == 6 * 86400 // 30 + 1  # from the first trade: within the cap
