"""Benchmark: BTC scanner catch-up speed against raw block fetching.

Starts the bitcoind simulator (tools/btcsim.py) in a child process, fills it with 200 blocks of
3,000 outputs each (plus a block paying 200 watched addresses), binds 100,000 watched deposit
addresses in a throw-away LMDB, then measures over the same chain and the same HTTP client:

* raw fetch: getblockhash + ``getblock <hash> 2`` for every block (python-bitcoinrpc, JSON
  parsed to Decimal), batched as the scanner does, and unbatched for comparison;
* scanner: ``BitcoindScanner.scan_once()`` from height 0, i.e. the same fetches plus deposit
  extraction (a set lookup per output), recording, and a cursor write per block.

Prints blocks/s for each and the scanner/raw ratio (target >= 90 %).

    .venv/bin/python bench/scan.py [--blocks 200] [--outputs 3000] [--watched 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from addrs.pool import AddressPool  # noqa: E402
from common.storage import Storage  # noqa: E402
from ledger.intake import DepositIntake  # noqa: E402
from ledger.store import DepositStore  # noqa: E402
from scanner.base import ScanSettings  # noqa: E402
from scanner.bitcoind import BitcoindScanner, RPCSettings  # noqa: E402
from tools.btcsim import SimulatorControl, output  # noqa: E402

SIM_SCRIPT = """
import sys, time
from tools.btcsim import start_simulator
handle = start_simulator(port=0, threads=2)
print(handle.port, flush=True)
sys.stdin.read()
handle.stop()
"""


def start_sim(root: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", SIM_SCRIPT], cwd=root, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def timed(label: str, fn: object, blocks: int) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    rate = blocks / seconds
    print(f"{label:<34} {blocks} blocks in {seconds:6.2f} s = {rate:7.1f} blocks/s", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--outputs", type=int, default=3000)
    parser.add_argument("--watched", type=int, default=100_000)
    parser.add_argument("--deposits", type=int, default=200)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    proc, port = start_sim(root)
    try:
        control = SimulatorControl(f"http://127.0.0.1:{port}", timeout=600)
        with tempfile.TemporaryDirectory() as tmp:
            storage = Storage(Path(tmp) / "data", sync=False)
            pool = AddressPool(storage)
            store = DepositStore(storage, pool, rate_for=lambda _coin: "500")
            watched = [f"bcrt1qbenchwatched{i:024d}" for i in range(args.watched)]
            paid = [watched[i * 397 % args.watched] for i in range(args.deposits)]
            t0 = time.perf_counter()
            pool.add("BTC", paid)
            for i in range(len(paid)):
                store.bind("BTC", f"buyer{i}")
            # The other watched addresses only make the lookup set realistic: binding 100,000
            # through the store one transaction each would take longer than the benchmark, so
            # they are added to the store's live watch set directly (never paid, never bound).
            store.watched("BTC").update(watched)
            print(f"watching {len(store.watched('BTC'))} addresses ({len(paid)} bound) "
                  f"after {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            half = args.blocks // 2
            control.filler(half, args.outputs, seed=1)
            control.mine([[output(address, 10_000 + i) for i, address in enumerate(paid)]])
            control.filler(args.blocks - half, args.outputs, seed=2)
            control.generate(1)  # the last filler block gets its confirmation
            tip = control.state()["height"]
            print(f"simulator: {tip} blocks built in {time.perf_counter() - t0:.1f} s "
                  f"({args.blocks} x {args.outputs} outputs + {args.deposits} deposits)")
            blocks = tip + 1  # heights 0 .. tip, all scanned with confirmations_required = 1
            rpc = RPCSettings(f"127.0.0.1:{port}", "user", "pass", timeout=120)
            settings = ScanSettings(confirmations_required=1, batch_blocks=20)

            def raw(batched: bool, count: int = blocks) -> None:
                fetcher = BitcoindScanner("BTC", "regtest", rpc, storage, DepositIntake(store), settings,
                                          batched=batched)
                for start in range(0, count, settings.batch_blocks):
                    heights = range(start, min(count, start + settings.batch_blocks))
                    for _ in fetcher.fetch_raw(heights):
                        pass
                fetcher.close()

            def scan() -> None:
                scanner = BitcoindScanner("BTC", "regtest", rpc, storage, DepositIntake(store),
                                          settings)
                assert scanner.scan_once() == blocks
                assert len(store.all_deposits()) == args.deposits

            some = min(blocks, 50)
            raw_unbatched = timed("raw getblock, unbatched", lambda: raw(False, some), some)
            raw_rate = timed("raw getblock, batched", lambda: raw(True), blocks)
            scan_rate = timed("scanner (batched)", scan, blocks)
            storage.close()
        print(f"batching: {raw_rate / raw_unbatched * 100:.0f} % of the unbatched raw rate")
        print(f"scanner / raw fetch = {scan_rate / raw_rate * 100:.1f} % (target >= 90 %)")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
