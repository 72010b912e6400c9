#!/usr/bin/env python3
"""Deposits per second through a real teller in dummy mode, with instant confirmation.

N buyers bind, N deposits are injected through the dummy API from 16 client threads (one
keep-alive connection each, the concurrency bench/api.py uses), and every
payout is confirmed at once: by the dummy chain itself (``[dummy] sender_autoconfirm``, the
default here, as a real chain that the teller polls), or with ``--confirm api`` by a client
that confirms each broadcast through ``/dummy/sender/confirm`` as soon as it appears (one more
HTTP request per deposit into the same process). The clock runs from the first deposit to the
moment all N are ``done``. The Go teller, with its defaults, pays one deposit per confirmation
check (5 s) and one at a time: about 0.2 deposits/s.

    .venv/bin/python bench/payout.py [-n 1000] [--clients 16] [--confirm instant|api] [--max-outputs K]
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
CONFIRMERS = 4  # --confirm api: client threads confirming broadcasts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="deposits (default 1000)")
    parser.add_argument("--max-outputs", type=int, default=1,
                        help="outputs per payout transaction ([sender] max_outputs, default 1)")
    parser.add_argument("--clients", type=int, default=16,
                        help="concurrent deposit injectors, one keep-alive connection each "
                             "(default 16, as bench/api.py)")
    parser.add_argument("--confirm", choices=("instant", "api"), default="instant",
                        help="instant: the dummy chain confirms on broadcast (default); "
                             "api: a client confirms each broadcast over HTTP")
    args = parser.parse_args()
    teller = BenchTeller(args.n, max_outputs=args.max_outputs,
                         autoconfirm=args.confirm == "instant")
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

        def confirmer(part: int, parts: int) -> None:
            """Confirms its share of the unconfirmed broadcasts, over and over."""
            conn = client("dummy")
            while not stop.is_set():
                try:
                    pending = json.loads(get(conn, "/dummy/sender/broadcasts",
                                             confirmed="false"))
                except (OSError, http.client.HTTPException):
                    if stop.is_set():
                        return
                    raise
                for b in pending[part::parts]:
                    get(conn, "/dummy/sender/confirm", txid=b["txid"])
                if not pending:
                    time.sleep(0.01)

        local = threading.local()

        def inject(i: int) -> None:
            conn = getattr(local, "conn", None) or client("dummy")
            local.conn = conn
            get(conn, "/dummy/scanner/deposit", addr=addresses[i], value=100_000, height=1,
                tx=f"{i:064x}", n=0)

        print(f"injecting {args.n} deposits", flush=True)
        if args.confirm == "api":
            for part in range(CONFIRMERS):
                threading.Thread(target=confirmer, args=(part, CONFIRMERS), daemon=True).start()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
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
        print(f"deposits: {args.n}, payout outputs per transaction: {args.max_outputs}, "
              f"confirmation: {args.confirm}, clients: {args.clients}")
        print(f"injected in {injected:.2f} s; all done in {elapsed:.2f} s")
        print(f"deposits/s: {rate:.1f} (target >= 200; Go teller ~{GO_TELLER_DEPOSITS_PER_S}/s, "
              f"ratio {rate / GO_TELLER_DEPOSITS_PER_S:.0f}x)")
    finally:
        teller.stop()


if __name__ == "__main__":
    main()
