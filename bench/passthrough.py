#!/usr/bin/env python3
"""Deposits per second through a real teller buying on a real exchange core (passthrough).

Two processes, as an operator runs them: `teller core run` (core.toml, fresh data dir) with a
market maker's asks resting on SKYBTC, and `teller run` with ``buy_method = "passthrough"``,
``[passthrough] venue = "core"``, the dummy scanner and the dummy sender with instant
confirmation. N deposits of 0.001 BTC are injected through the dummy API from 16 client
threads; each one is credited to the teller's core account (balance.update), buys with one
order.put_market, and is paid what it bought. The clock runs from the first deposit to the
moment all N are ``done``. Then the same N deposits go through a direct-buy teller (the
bench/payout.py set-up) for the figure next to it, unless ``--skip-direct``.

    .venv/bin/python bench/passthrough.py [-n 1000] [--clients 16] [--skip-direct]
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import requests
from _teller import BUYER, BenchTeller

from tests.support.core_process import CoreProcess, MarketMaker

TARGET = 100  # deposits/s (issue 13)
TELLER_USER = 1
DEPOSIT_SAT = 100_000  # 0.001 BTC: 10 SKY at 0.0001 BTC/SKY


def run(teller: BenchTeller, n: int, clients: int) -> float:
    """Inject n deposits, wait until all are done; deposits per second."""
    session = requests.Session()
    addresses = [session.post(teller.url("public") + "/api/bind",
                              json={"skyaddr": BUYER, "coin_type": "BTC"}).json()
                 ["deposit_address"] for _ in range(n)]
    local = threading.local()

    def inject(i: int) -> None:
        conn = getattr(local, "conn", None) or http.client.HTTPConnection(
            "127.0.0.1", teller.ports["dummy"], timeout=30)
        local.conn = conn
        conn.request("GET", "/dummy/scanner/deposit?" + urlencode({
            "addr": addresses[i], "value": DEPOSIT_SAT, "height": 1, "tx": f"{i:064x}",
            "n": 0}))
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"deposit {i}: HTTP {response.status} {body!r}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(inject, range(n)))
    injected = time.perf_counter() - started
    while True:
        metrics = session.get(teller.url("admin") + "/metrics").text
        done = sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("teller_deposits{") and 'status="done"' in line)
        if done >= n:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    print(f"  injected in {injected:.2f} s; all done in {elapsed:.2f} s", flush=True)
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="deposits (default 1000)")
    parser.add_argument("--clients", type=int, default=16,
                        help="concurrent deposit injectors (default 16, as bench/payout.py)")
    parser.add_argument("--skip-direct", action="store_true",
                        help="do not measure the direct-buy teller for comparison")
    args = parser.parse_args()

    core = CoreProcess(Path(tempfile.mkdtemp(prefix="teller-bench-core-")) / "core").start()
    try:
        maker = MarketMaker(core)
        need = Decimal(args.n) * 10  # SKY the deposits will buy at 0.0001
        maker.fund(str(need * 2))
        for _ in range(20):  # 20 price levels' worth of asks, the first ones enough for all
            maker.ask(str(need / 10), "0.0001")
        teller = BenchTeller(args.n, autoconfirm=True, extra={
            "sky_exchanger": {"buy_method": "passthrough"},
            "passthrough": {"venue": "core"},
            "passthrough.markets": {"BTC": "SKYBTC"},
            "passthrough.core": {"url": core.url, "user_id": TELLER_USER,
                                 "taker_fee": "0.001"}})
        try:
            print(f"passthrough (core venue): {args.n} deposits", flush=True)
            rate = run(teller, args.n, args.clients)
            orders = core.finished_orders(TELLER_USER, "SKYBTC")
            sources = {o["source"] for o in orders}
            deposits = requests.get(teller.url("admin") + "/api/deposits",
                                    params={"status": "done"}, timeout=60).json()["deposits"]
            assert len(orders) == len(sources) == args.n, (len(orders), len(sources))
            assert all(d["sky_sent"] == 9_990_000 for d in deposits), "paid 9.99 SKY each"
            print(f"  orders on the core: {len(orders)} (one per deposit), each paid 9.99 SKY")
        finally:
            teller.stop()
    finally:
        core.stop()
    print(f"passthrough deposits/s: {rate:.1f} (target >= {TARGET})", flush=True)

    if not args.skip_direct:
        teller = BenchTeller(args.n, autoconfirm=True)
        try:
            print(f"direct buy (bench/payout.py set-up): {args.n} deposits", flush=True)
            direct = run(teller, args.n, args.clients)
        finally:
            teller.stop()
        print(f"direct deposits/s: {direct:.1f}; passthrough is {rate / direct:.0%} of it")


if __name__ == "__main__":
    main()
