"""The exchanger's pure modules stay pure: importing them loads no storage or network library.

In the style of click's tests/test_imports.py: a fresh interpreter imports the modules and
reports which forbidden packages ended up in sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("lmdb", "flask", "requests", "web3", "bitcoinrpc", "waitress")


def test_pure_exchanger_modules_import_no_io_libraries() -> None:
    code = (
        "import json, sys\n"
        "import exchanger.amounts, ledger.status\n"
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == []
