"""Views that change with time alone are pushed by the gateway's clock: `state` as its 24 h
window slides past a deal, and `today` once the day has turned. A real core and gateway in
this process, on a clock the test moves (it stands still otherwise), and a real client."""

from __future__ import annotations

import dataclasses

import pytest

from matchengine.service import now
from tests.support.clock import Clock
from tests.support.core import CoreServer, core_config
from tests.support.wscore import Client
from wsgateway import in_process

M = "BTCUSDT"
DAY = 86400


@pytest.fixture
def stack(tmp_path):
    clock = Clock(now() // 60 * 60)  # a minute's first second: the deals' own second counts
    core = CoreServer(tmp_path / "core", clock=clock)
    gateway = in_process(core.service, dataclasses.replace(core_config().ws, addr="127.0.0.1:0"))
    yield core, gateway, clock
    gateway.stop()
    core.close()


def test_state_and_today_are_pushed_when_time_moves_a_deal_out_of_their_window(stack):
    core, gateway, clock = stack
    core.ok("balance.update", [1, "BTC", "deposit", 1, "1", {}])
    core.ok("balance.update", [2, "USDT", "deposit", 1, "10000", {}])
    core.ok("order.put_limit", [1, M, 1, "1", "9000", "0", "0", "t"])
    core.ok("order.put_limit", [2, M, 2, "0.4", "9000", "0", "0", "t"])
    client = Client(f"ws://127.0.0.1:{gateway.port}/")
    client.ok("state.subscribe", [M])
    client.ok("today.subscribe", [M])
    assert client.push("state.update")["params"][1]["volume"] == "0.4"
    assert client.push("today.update")["params"][1]["volume"] == "0.4"
    client.no_push("state.update", 1.5)  # the clock re-reads, nothing changed: nothing sent
    clock.now += DAY + 120  # no order, no deal: only time passes
    state = client.push("state.update")["params"]
    assert state == [M, core.ok("market.status", [M, DAY])]
    assert state[1]["volume"] == "0" and state[1]["last"] == "9000"
    today = client.push("today.update")["params"]
    assert today == [M, core.ok("market.status_today", [M])]
    assert today[1]["volume"] == "0"
    client.close()
