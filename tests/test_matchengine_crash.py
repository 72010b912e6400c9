"""kill -9 during a burst of acknowledged operations loses none of them.

The core runs as a real process (`teller core run`); threads drive orders, cancels and
deposits over HTTP and remember every reply; the process is SIGKILLed mid-burst and restarted
on the same data directory. Every acknowledged operation must be there, and balances must
equal a recomputation from the deposits and resting orders found after the restart.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
from decimal import Decimal

import pytest
import requests

from tests.support.core import ROOT
from tests.support.wait import wait_until

USERS = range(1, 7)
START = [sys.executable, "-c", "from teller.cli_core import core_group; core_group()", "run",
         "-c", str(ROOT / "core.toml"), "--ws-addr", "127.0.0.1:0"]  # a free port for push


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(START + ["-d", str(data_dir), "--http-addr", f"127.0.0.1:{port}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))

    def up() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            return rpc(port, "asset.list", [])["error"] is None
        except requests.RequestException:
            return False

    wait_until(up, 30)
    return proc


def rpc(port: int, method: str, params: list, session=requests) -> dict:
    reply = session.post(f"http://127.0.0.1:{port}/", timeout=10,
                         json={"id": 1, "method": method, "params": params})
    return reply.json()


class Driver(threading.Thread):
    """One user's burst; records what the core acknowledged."""

    def __init__(self, port: int, user: int) -> None:
        super().__init__(daemon=True)
        self.port, self.user = port, user
        self.orders: dict[int, dict] = {}  # acknowledged puts
        self.cancels: set[int] = set()  # acknowledged cancels
        self.tried_cancel: set[int] = set()
        self.deposits: set[int] = set()  # acknowledged deposit business ids
        self.rng = random.Random(user)

    def run(self) -> None:
        session = requests.Session()
        n = 0
        while True:
            n += 1
            try:
                roll = self.rng.random()
                if roll < 0.15 and self.orders:
                    order_id = self.rng.choice(sorted(set(self.orders) - self.tried_cancel)
                                               or [0])
                    self.tried_cancel.add(order_id)
                    if rpc(self.port, "order.cancel", [self.user, "BTCUSDT", order_id],
                           session)["error"] is None:
                        self.cancels.add(order_id)
                elif roll < 0.25:
                    business_id = self.user * 1_000_000 + n
                    if rpc(self.port, "balance.update", [self.user, "BTC", "deposit",
                                                         business_id, "0.01", {}],
                           session)["error"] is None:
                        self.deposits.add(business_id)
                else:
                    side = self.rng.choice([1, 2])
                    price = f"{self.rng.randint(9000, 9900) if side == 1 else self.rng.randint(7000, 7900)}"
                    reply = rpc(self.port, "order.put_limit",
                                [self.user, "BTCUSDT", side, "0.01", price, "0.002", "0.001", ""],
                                session)
                    if reply["error"] is None:
                        self.orders[reply["result"]["id"]] = reply["result"]
            except (requests.RequestException, ValueError):
                return


@pytest.mark.slow
def test_kill_9_mid_burst_loses_no_acknowledged_operation(tmp_path):
    port = free_port()
    proc = start(tmp_path, port)
    try:
        for user in USERS:
            assert rpc(port, "balance.update", [user, "BTC", "deposit", 1, "50", {}])["error"] \
                is None
            assert rpc(port, "balance.update", [user, "USDT", "deposit", 1, "100000", {}])[
                "error"] is None
        drivers = [Driver(port, user) for user in USERS]
        for driver in drivers:
            driver.start()
        wait_until(lambda: sum(len(d.orders) for d in drivers) > 300, 30)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for driver in drivers:
            driver.join(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    port = free_port()
    proc = start(tmp_path, port)
    try:
        for driver in drivers:
            user = driver.user
            pending = rpc(port, "order.pending", [user, "BTCUSDT", 0, 101])["result"]
            resting = {o["id"]: o for o in pending["records"]}
            offset = 101
            while len(resting) < pending["total"]:
                page = rpc(port, "order.pending", [user, "BTCUSDT", offset, 101])["result"]
                resting.update({o["id"]: o for o in page["records"]})
                offset += 101
            for order_id, acked in driver.orders.items():
                if order_id in resting:
                    assert resting[order_id]["ctime"] == acked["ctime"]
                    assert order_id not in driver.cancels
                else:  # only a cancel we sent may have removed it
                    assert order_id in driver.tried_cancel, order_id
                    assert rpc(port, "order.finished_detail", [order_id])["result"] is not None
            for order_id in driver.cancels:
                assert order_id not in resting
            history = rpc(port, "balance.history", [user, "BTC", "deposit", 0, 0, 0, 101])
            records = history["result"]["records"]
            offset = 101
            while True:
                page = rpc(port, "balance.history", [user, "BTC", "deposit", 0, 0, offset, 101])
                if not page["result"]["records"]:
                    break
                records += page["result"]["records"]
                offset += 101
            present = {r["detail"]["id"] for r in records}
            assert driver.deposits <= present
            for business_id in driver.deposits:
                again = rpc(port, "balance.update", [user, "BTC", "deposit", business_id,
                                                     "0.01", {}])
                assert again["error"]["code"] == 10
            # independent recomputation: no trades happened (asks >= 9000 > bids)
            btc_total = Decimal("50") + Decimal("0.01") * (len(present) - 1)
            btc_frozen = sum((Decimal(o["left"]) for o in resting.values() if o["side"] == 1),
                             Decimal(0))
            usdt_frozen = sum((Decimal(o["left"]) * Decimal(o["price"])
                               for o in resting.values() if o["side"] == 2), Decimal(0))
            balance = rpc(port, "balance.query", [user, "BTC", "USDT"])["result"]
            assert Decimal(balance["BTC"]["freeze"]) == btc_frozen
            assert Decimal(balance["BTC"]["available"]) == btc_total - btc_frozen
            assert Decimal(balance["USDT"]["freeze"]) == usdt_frozen
            assert Decimal(balance["USDT"]["available"]) == Decimal(100000) - usdt_frozen
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
