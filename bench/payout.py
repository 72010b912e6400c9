#!/usr/bin/env python3
"""Deposits per second through a real teller in dummy mode, with instant confirmation.

N buyers bind, N deposits are injected through the dummy API from 4 client threads, and a
confirmer confirms every broadcast as soon as it appears; the clock runs from the first
deposit to the moment all N are ``done``. The Go teller, with its defaults, pays one deposit
per confirmation check (5 s) and one at a time: about 0.2 deposits/s.

    .venv/bin/python bench/payout.py [-n 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import requests
from _teller import BUYER, BenchTeller

GO_TELLER_DEPOSITS_PER_S = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="deposits (default 1000)")
    parser.add_argument("--max-outputs", type=int, default=1,
                        help="outputs per payout transaction ([sender] max_outputs, default 1)")
    args = parser.parse_args()
    teller = BenchTeller(args.n, max_outputs=args.max_outputs)
    try:
        session = requests.Session()
        addresses = [session.post(teller.url("public") + "/api/bind",
                                  json={"skyaddr": BUYER, "coin_type": "BTC"}).json()
                     ["deposit_address"] for _ in range(args.n)]
        stop = threading.Event()

        def client(name: str) -> http.client.HTTPConnection:
            """A keep-alive connection: the load client must not be the bottleneck."""
            return http.client.HTTPConnection("127.0.0.1", teller.ports[name], timeout=30)

        def get(conn: http.client.HTTPConnection, path: str, **params: object) -> bytes:
            conn.request("GET", path + ("?" + urlencode(params) if params else ""))
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"{path}: HTTP {response.status} {body!r}")
            return body

        def confirmer() -> None:
            conn = client("dummy")
            while not stop.is_set():
                try:
                    pending = json.loads(get(conn, "/dummy/sender/broadcasts",
                                             confirmed="false"))
                except (OSError, http.client.HTTPException):
                    if stop.is_set():
                        return
                    raise
                for b in pending:
                    get(conn, "/dummy/sender/confirm", txid=b["txid"])
                if not pending:
                    time.sleep(0.01)

        local = threading.local()

        def inject(i: int) -> None:
            conn = getattr(local, "conn", None) or client("dummy")
            local.conn = conn
            get(conn, "/dummy/scanner/deposit", addr=addresses[i], value=100_000, height=1,
                tx=f"{i:064x}", n=0)

        threading.Thread(target=confirmer, daemon=True).start()
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(inject, range(args.n)))
        injected = time.perf_counter() - started
        while True:
            done = session.get(teller.url("admin") + "/metrics").text
            count = sum(int(line.rsplit(" ", 1)[1]) for line in done.splitlines()
                        if line.startswith("teller_deposits{") and 'status="done"' in line)
            if count >= args.n:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        rate = args.n / elapsed
        print(f"deposits: {args.n}, payout outputs per transaction: {args.max_outputs}")
        print(f"injected in {injected:.2f} s; all done in {elapsed:.2f} s")
        print(f"deposits/s: {rate:.1f} (target >= 200; Go teller ~{GO_TELLER_DEPOSITS_PER_S}/s, "
              f"ratio {rate / GO_TELLER_DEPOSITS_PER_S:.0f}x)")
    finally:
        teller.stop()


if __name__ == "__main__":
    main()
