"""Pushes wait for the disk: an order's `order.update` is not sent while its commit cannot
finish, and is sent once it does (a real core and gateway in this process, a real client)."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import requests

from tests.support.core import CoreServer, core_config, disk_held
from tests.support.wscore import AuthServer, Client
from wsgateway import in_process

M = "BTCUSDT"


@pytest.fixture
def stack(tmp_path):
    auth = AuthServer({"tok-1": 1})
    core = CoreServer(tmp_path / "core")
    ws = dataclasses.replace(core_config().ws, addr="127.0.0.1:0", auth_url=auth.url)
    gateway = in_process(core.service, ws)
    yield core, gateway
    gateway.stop()
    core.close()
    auth.close()


def test_an_order_update_is_pushed_only_once_the_order_is_on_disk(stack):
    core, gateway = stack
    core.ok("balance.update", [1, "BTC", "deposit", 1, "2", {}])
    client = Client(f"ws://127.0.0.1:{gateway.port}/")
    client.ok("server.auth", ["tok-1", "web"])
    client.ok("order.subscribe", [M])
    replies: list = []
    put = threading.Thread(target=lambda: replies.append(requests.post(core.url, timeout=30, json={
        "id": 1, "method": "order.put_limit",
        "params": [1, M, 1, "1", "9000", "0", "0", "t"]}).json()))
    with disk_held(core.service.store.env):
        put.start()
        client.no_push("order.update", 1.0)  # applied in memory, not on disk: no push
        assert not replies
    put.join(30)
    order = replies[0]["result"]
    assert client.push("order.update")["params"] == [1, order]
    client.close()
