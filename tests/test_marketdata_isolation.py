"""marketdata stays a pure in-memory package: importing it pulls in no storage, web or HTTP code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_pulls_in_no_io_packages():
    probe = (
        "import sys, marketdata\n"
        "md = marketdata.MarketData(['A'])\n"
        "md.on_deal([1700000000.0, 'A', 1, 2, 3, 4, '1', '1', '0', '0', 1, 1, 'X', 'Y'])\n"
        "md.kline('A', 1, 1700000000, 60); md.status('A', 60); md.status_today('A')\n"
        "bad = sorted(m for m in ('lmdb', 'flask', 'requests', 'waitress', 'web3')"
        " if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == ""
