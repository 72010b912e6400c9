#!/usr/bin/env python3
"""Requests per second and p50/p99 latency for every public route of a real teller (wrk).

16 keep-alive connections (as the Go teller's reference figures were taken) on /api/status,
/api/config, /api/health and /api/bind. The buyer has 5 bound addresses (``max_bound_addrs``
5), 2 of them with deposits, so /api/status reads bindings and deposits from LMDB, and a bind
for that buyer runs the whole path (body decoding, address check, a store read) to its
``409`` answer: a benchmark of successful binds would empty any pool within a second.
Throttling is off (it would answer 429). wrk comes with `make tools`.

    .venv/bin/python bench/api.py [--duration 10] [--connections 16] [--runs 1]
        [--route /api/status ...]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from _teller import BUYER, BenchTeller

# The Go teller on this kind of 2-core machine, same wrk settings (issue 14).
GO_REFERENCE = {"/api/status": 10_000, "/api/config": 20_000, "/api/health": 17_000}
TARGET = {"/api/status": 1.0}  # every other route: 0.5x the Go teller
ROUTES = ("/api/status", "/api/config", "/api/health", "/api/bind")


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]  # float-ok: time


def run_wrk(wrk: str, url: str, connections: int, duration: int,
            script: Path | None) -> dict[str, float]:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    distribution = out.split("Latency Distribution", 1)[1]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": _seconds(re.search(r"50%\s+(\S+)", distribution).group(1)),
            "p99": _seconds(re.search(r"99%\s+(\S+)", distribution).group(1)),
            "non2xx": int(errors.group(1)) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="default 16")
    parser.add_argument("--runs", type=int, default=1, help="runs per route; the median")
    parser.add_argument("--route", action="append", choices=ROUTES, help="default: all")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: run `make tools`")
    teller = BenchTeller(10, extra={"teller": {"max_bound_addrs": 5}})
    scratch = Path(tempfile.mkdtemp(prefix="teller-bench-wrk-"))
    try:
        session = requests.Session()
        public = teller.url("public")
        addresses = [session.post(public + "/api/bind",
                                  json={"skyaddr": BUYER, "coin_type": "BTC"}).json()
                     ["deposit_address"] for _ in range(5)]
        for i, address in enumerate(addresses[:2]):
            session.get(teller.url("dummy") + "/dummy/scanner/deposit",
                        params={"addr": address, "value": 100_000, "height": 1,
                                "tx": f"{i:064x}", "n": 0}).raise_for_status()
        time.sleep(0.5)
        assert session.get(f"{public}/api/status?skyaddr={BUYER}").json()["statuses"]
        bind_script = scratch / "bind.lua"
        bind_script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps({'skyaddr': BUYER, 'coin_type': 'BTC'}))}\n")
        assert session.post(public + "/api/bind", json={"skyaddr": BUYER, "coin_type": "BTC"}
                            ).status_code == 409, "the buyer should be at max_bound_addrs"
        print(f"wrk, {args.connections} connections, {args.duration} s per run, "
              f"median of {args.runs} run(s)")
        print(f"{'route':<12} {'req/s':>8} {'p50':>9} {'p99':>9}  vs Go teller")
        for route in args.route or ROUTES:
            url = f"{public}{route}" + (f"?skyaddr={BUYER}" if route == "/api/status" else "")
            runs = [run_wrk(wrk, url, args.connections, args.duration,
                            bind_script if route == "/api/bind" else None)
                    for _ in range(args.runs)]
            rate = statistics.median(r["rate"] for r in runs)
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
            go = GO_REFERENCE.get(route)
            versus = (f"{rate / go:.2f}x of ~{go:,} (target >= {TARGET.get(route, 0.5)}x)"
                      if go else "(409 at the buyer's limit: no Go figure)")
            each = ", ".join(f"{r['rate']:.0f}" for r in runs)
            print(f"{route:<12} {rate:>8.0f} {p50 * 1e3:>7.2f}ms {p99 * 1e3:>7.2f}ms  {versus}"
                  f"  runs: {each}")
            non2xx = sum(r["non2xx"] for r in runs)
            if non2xx and route != "/api/bind":
                print(f"  non-2xx responses: {non2xx}")
    finally:
        teller.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
