"""kill -9 during a burst of acknowledged operations loses none of them.

The core runs as a real process (`teller core run`); threads drive orders, cancels and
deposits over HTTP and remember every reply; the process is SIGKILLed mid-burst and restarted
on the same data directory. Every acknowledged operation must be there, and balances must
equal a recomputation from the deposits and resting orders found after the restart.
"""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest
import requests

from tests.support.core_process import CoreProcess
from tests.support.wait import wait_until

USERS = range(1, 7)
PUSH_ON_A_FREE_PORT = ["--ws-addr", "127.0.0.1:0"]


def rpc(url: str, method: str, params: list, session: requests.Session) -> dict:
    """One call on a driver thread's own session (a Session is not shared across threads)."""
    reply = session.post(url + "/", timeout=10,
                         json={"id": 1, "method": method, "params": params})
    return reply.json()


class Driver(threading.Thread):
    """One user's burst; records what the core acknowledged."""

    def __init__(self, url: str, user: int) -> None:
        super().__init__(daemon=True)
        self.url, self.user = url, user
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
                    if rpc(self.url, "order.cancel", [self.user, "BTCUSDT", order_id],
                           session)["error"] is None:
                        self.cancels.add(order_id)
                elif roll < 0.25:
                    business_id = self.user * 1_000_000 + n
                    if rpc(self.url, "balance.update", [self.user, "BTC", "deposit",
                                                         business_id, "0.01", {}],
                           session)["error"] is None:
                        self.deposits.add(business_id)
                else:
                    side = self.rng.choice([1, 2])
                    price = f"{self.rng.randint(9000, 9900) if side == 1 else self.rng.randint(7000, 7900)}"
                    reply = rpc(self.url, "order.put_limit",
                                [self.user, "BTCUSDT", side, "0.01", price, "0.002", "0.001", ""],
                                session)
                    if reply["error"] is None:
                        self.orders[reply["result"]["id"]] = reply["result"]
            except (requests.RequestException, ValueError):
                return


@pytest.mark.slow
def test_kill_9_mid_burst_loses_no_acknowledged_operation(tmp_path):
    core = CoreProcess(tmp_path / "data", args=PUSH_ON_A_FREE_PORT).start()
    try:
        for user in USERS:
            core.ok("balance.update", [user, "BTC", "deposit", 1, "50", {}])
            core.ok("balance.update", [user, "USDT", "deposit", 1, "100000", {}])
        drivers = [Driver(core.url, user) for user in USERS]
        for driver in drivers:
            driver.start()
        wait_until(lambda: sum(len(d.orders) for d in drivers) > 300, 30)
        core.kill()
        for driver in drivers:
            driver.join(15)
    finally:
        core.kill()

    core.start()  # the same data directory
    try:
        for driver in drivers:
            user = driver.user
            pending = core.rpc("order.pending", [user, "BTCUSDT", 0, 101])["result"]
            resting = {o["id"]: o for o in pending["records"]}
            offset = 101
            while len(resting) < pending["total"]:
                page = core.rpc("order.pending", [user, "BTCUSDT", offset, 101])["result"]
                resting.update({o["id"]: o for o in page["records"]})
                offset += 101
            for order_id, acked in driver.orders.items():
                if order_id in resting:
                    assert resting[order_id]["ctime"] == acked["ctime"]
                    assert order_id not in driver.cancels
                else:  # only a cancel we sent may have removed it
                    assert order_id in driver.tried_cancel, order_id
                    assert core.rpc("order.finished_detail", [order_id])["result"] is not None
            for order_id in driver.cancels:
                assert order_id not in resting
            history = core.rpc("balance.history", [user, "BTC", "deposit", 0, 0, 0, 101])
            records = history["result"]["records"]
            offset = 101
            while True:
                page = core.rpc("balance.history", [user, "BTC", "deposit", 0, 0, offset, 101])
                if not page["result"]["records"]:
                    break
                records += page["result"]["records"]
                offset += 101
            present = {r["detail"]["id"] for r in records}
            assert driver.deposits <= present
            for business_id in driver.deposits:
                again = core.rpc("balance.update", [user, "BTC", "deposit", business_id,
                                                     "0.01", {}])
                assert again["error"]["code"] == 10
            # independent recomputation: no trades happened (asks >= 9000 > bids)
            btc_total = Decimal("50") + Decimal("0.01") * (len(present) - 1)
            btc_frozen = sum((Decimal(o["left"]) for o in resting.values() if o["side"] == 1),
                             Decimal(0))
            usdt_frozen = sum((Decimal(o["left"]) * Decimal(o["price"])
                               for o in resting.values() if o["side"] == 2), Decimal(0))
            balance = core.rpc("balance.query", [user, "BTC", "USDT"])["result"]
            assert Decimal(balance["BTC"]["freeze"]) == btc_frozen
            assert Decimal(balance["BTC"]["available"]) == btc_total - btc_frozen
            assert Decimal(balance["USDT"]["freeze"]) == usdt_frozen
            assert Decimal(balance["USDT"]["available"]) == Decimal(100000) - usdt_frozen
    finally:
        core.stop()
    assert core.proc is not None and core.proc.returncode == 0
