#!/usr/bin/env python3
"""Time to derive deposit addresses from a watch-only account key (target: 100,000 in < 30 s).

Runs the same code as `teller tool newaddresses` (BIP84 zpub -> bech32, and an ETH xpub),
without the file write.

    .venv/bin/python bench/addresses.py [-n 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from addrs.addrgen import generate_from_xpub  # noqa: E402
from addrs.derive import deriver_from_seed  # noqa: E402

# BIP84 test vector account key ("abandon ... about"): public, never holds funds.
ZPUB = ("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUk"
        "gDKf31mGDtKsAYz2oz2AGutZYs")
MNEMONIC = " ".join(["abandon"] * 11 + ["about"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="addresses per coin (default 100000)")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("-n must be at least 1")
    _, eth_xpub = deriver_from_seed("ETH", MNEMONIC)
    for coin, key in (("BTC", ZPUB), ("ETH", eth_xpub)):
        started = time.perf_counter()
        generated = generate_from_xpub(coin, key, args.n)
        elapsed = time.perf_counter() - started
        assert len(set(generated.addresses)) == args.n
        print(f"{coin}: {args.n} addresses in {elapsed:.1f} s "
              f"({args.n / elapsed:,.0f}/s; target < 30 s for 100,000)")


if __name__ == "__main__":
    main()
