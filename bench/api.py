#!/usr/bin/env python3
"""/api/status requests per second through a real teller, 16 keep-alive connections (wrk).

The buyer has 5 bound addresses, 2 of them with deposits, so each request reads bindings and
deposits from LMDB. Throttling is off (it would answer 429). wrk comes with `make tools`.

    .venv/bin/python bench/api.py [--duration 10] [--connections 16]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time

import requests
from _teller import BUYER, BenchTeller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="default 16")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run `make tools`")
    teller = BenchTeller(10)
    try:
        session = requests.Session()
        addresses = [session.post(teller.url("public") + "/api/bind",
                                  json={"skyaddr": BUYER, "coin_type": "BTC"}).json()
                     ["deposit_address"] for _ in range(5)]
        for i, address in enumerate(addresses[:2]):
            session.get(teller.url("dummy") + "/dummy/scanner/deposit",
                        params={"addr": address, "value": 100_000, "height": 1,
                                "tx": f"{i:064x}", "n": 0}).raise_for_status()
        time.sleep(0.5)
        url = f"{teller.url('public')}/api/status?skyaddr={BUYER}"
        assert session.get(url).json()["statuses"], "status should list the bindings"
        out = subprocess.run([wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}s",
                              "--latency", url], capture_output=True, text=True, check=True).stdout
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        distribution = out.split("Latency Distribution", 1)[1]
        p50 = re.search(r"50%\s+(\S+)", distribution).group(1)
        p99 = re.search(r"99%\s+(\S+)", distribution).group(1)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        print(f"/api/status with {args.connections} connections for {args.duration} s")
        print(f"requests/s: {rate:.0f} (target >= 2000)  latency p50 {p50}  p99 {p99}")
        if errors:
            print(f"non-2xx responses: {errors.group(1)}")
    finally:
        teller.stop()


if __name__ == "__main__":
    main()
