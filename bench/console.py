#!/usr/bin/env python3
"""The operator console's admin API on 100,000 deposits: page, filter, search, CSV, per day.

The data directory is filled through the deposit store itself (bindings, ``record_deposit``,
compare-and-set transitions; LMDB without fsync to build it quickly), then a real
``teller run`` (sending disabled, so nothing moves) serves it and each request is timed over
HTTP, best of ``--repeat``.

    .venv/bin/python bench/console.py [--deposits 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import requests
from _teller import MNEMONIC, REPO  # noqa: F401 - sets sys.path for the imports below

from addrs.derive import deriver_from_seed
from addrs.pool import AddressPool
from common.storage import Storage
from ledger.status import Status
from ledger.store import Deposit, DepositStore
from tests.support.process import TellerProcess
from tests.support.service import sky_address

BUYERS = 200


def fill(data_dir: object, addresses: list[str], count: int) -> None:
    storage = Storage(data_dir, sync=False)
    try:
        pool = AddressPool(storage)
        pool.add("BTC", addresses)
        store = DepositStore(storage, pool)
        for i in range(BUYERS):
            store.bind("BTC", sky_address(i))
        bound = [store.bindings_of(sky_address(i))[0]["address"] for i in range(BUYERS)]
        started = time.perf_counter()
        for i in range(count):
            store.record_deposit(Deposit("BTC", bound[i % BUYERS], 10_000 + i, 1 + i // 1000,
                                         f"{i:064x}", 0), "500")
        keys = [f"BTC/{i:064x}:0" for i in range(count)]
        store.transition_many(keys[::2], Status.WAITING_DECIDE, Status.WAITING_SEND)
        store.transition_many(keys[::4], Status.WAITING_SEND, Status.DONE)
        print(f"filled {count} deposits in {time.perf_counter() - started:.1f} s "
              "(store API, no fsync)")
    finally:
        storage.close()


def timed(session: requests.Session, url: str, repeat: int) -> tuple[float, float, int]:
    """(first, best, size): the first call pays for any scan a cache then keeps."""
    times = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        resp = session.get(url, timeout=300)
        resp.raise_for_status()
        size = len(resp.content)
        times.append(time.perf_counter() - started)
    return times[0], min(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    deriver, _ = deriver_from_seed("BTC", MNEMONIC)
    addresses = list(deriver.addresses(0, BUYERS + 10))
    root = Path(tempfile.mkdtemp(prefix="teller-bench-console-"))
    teller = TellerProcess(root, addresses, config={
        "": {"debug": False}, "sky_exchanger": {"send_enabled": False},
        "web": {"static_dir": str(REPO / "web")}})
    fill(teller.dir, addresses, args.deposits)
    teller.start(timeout=60)
    try:
        admin = teller.url("admin")
        session = requests.Session()
        n = args.deposits
        cases = [
            ("first page (50, newest first)", "/api/deposits?limit=50"),
            ("last page", f"/api/deposits?limit=50&offset={n - 50}"),
            ("status=done, middle page", f"/api/deposits?status=done&limit=50&offset={n // 8}"),
            ("coin_type=BTC, page 100", "/api/deposits?coin_type=BTC&limit=50&offset=5000"),
            (f"q=receive address ({n // BUYERS} deposits), first page",
             f"/api/deposits?q={sky_address(7)}&limit=50"),
            ("q=txid", f"/api/deposits?q={n - 1:064x}"),
            ("q=txid prefix matching every deposit (worst)", "/api/deposits?q=000000&limit=50"),
            ("detail", f"/api/deposits/detail?coin_type=BTC&deposit_id={n // 2:064x}:0"),
            ("overview (accounting: a scan, then cached)", "/api/overview"),
            ("daily (a scan, then cached)", "/api/deposits/daily"),
            ("CSV of every deposit", "/api/deposits.csv"),
            ("Go-shape /api/deposits (all, unpaged)", "/api/deposits"),
        ]
        print(f"{n} deposits, {BUYERS} receive addresses; first call and best of "
              f"{args.repeat} (shared 2-core machine)")
        for name, path in cases:
            first, best, size = timed(session, admin + path, args.repeat)
            print(f"  {name:45s} first {first * 1000:8.1f} ms  best {best * 1000:8.1f} ms"
                  f"  {size / 1024:7.0f} KiB")
    finally:
        teller.terminate()


if __name__ == "__main__":
    main()
