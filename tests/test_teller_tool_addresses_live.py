"""Address files made by ``teller tool`` feed a running teller: in order, topped up live.

The operator's path from issue 3: derive addresses from a watch-only xpub, start the teller on
the file, watch /api/bind hand them out in file order, get the low-water warning, and add more
with ``teller tool addaddresses`` while the teller keeps running.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.process import REPO, TellerProcess

# BIP84 test vector: account zpub of "abandon ... about"; its first receive addresses.
ZPUB = ("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUk"
        "gDKf31mGDtKsAYz2oz2AGutZYs")
BIP84_FIRST = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
BUYER = "2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW"

pytestmark = pytest.mark.slow


def teller_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from teller.cli import main; main()", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_generated_file_is_handed_out_in_order_and_topped_up_live(tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    result = teller_cli("tool", "newaddresses", "--coin", "BTC", "--xpub", ZPUB, "-n", "4",
                        "-o", str(first))
    assert result.returncode == 0, result.stderr
    generated = json.loads(first.read_text())["btc_addresses"]
    assert generated[0] == BIP84_FIRST

    proc = TellerProcess(tmp_path, generated, config={"teller": {"addr_low_water": 2}})
    try:
        proc.start()
        bound = [proc.bind(BUYER) for _ in range(3)]
        assert bound == generated[:3]

        health = proc.session.get(proc.url("public") + "/api/health").json()
        assert any("BTC deposit address pool is low: 1 free" in w for w in health["warnings"])
        assert "notice=WATCH" in proc.log_tail(200)

        more = tmp_path / "more.txt"
        result = teller_cli("tool", "newaddresses", "--coin", "BTC", "--xpub", ZPUB,
                            "--start", "4", "-n", "3", "-o", str(more))
        assert result.returncode == 0, result.stderr
        result = teller_cli("tool", "addaddresses", str(more), "--coin", "BTC",
                            "-d", str(proc.dir))
        assert result.returncode == 0, result.stderr
        assert "added 3 BTC address(es); 0 already known; 4 free in the pool" in result.stdout

        pools = requests.get(proc.url("admin") + "/api/deposit-addresses").json()
        assert pools["BTC"]["remaining_addresses"] == 4
        later = [proc.bind(BUYER) for _ in range(4)]
        assert later == [generated[3], *more.read_text().split()]

        result = teller_cli("tool", "checkaddresses", str(first), "--coin", "BTC",
                            "-d", str(proc.dir))
        assert result.returncode == 1
        assert result.stdout.count("already used in the data dir") == 4
    finally:
        proc.kill()

    # After a restart nothing is handed out twice: the pool remembers what was used.
    proc.start()
    try:
        r = proc.session.post(proc.url("public") + "/api/bind",
                              json={"skyaddr": BUYER, "coin_type": "BTC"})
        assert r.status_code == 503 and r.text == "Deposit address pool is empty\n"
    finally:
        proc.kill()
