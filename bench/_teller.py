"""Start a real ``teller run`` for a benchmark: dummy mode, fresh data dir, free ports.

Benchmarks measure the product as an operator runs it (a separate process, real HTTP), not
functions in isolation.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from addrs.derive import deriver_from_seed  # noqa: E402

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
BUYER = "2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchTeller:
    def __init__(self, addresses: int, *, coins: str = "100000000",
                 max_outputs: int = 1, autoconfirm: bool = False) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="teller-bench-"))
        deriver, _ = deriver_from_seed("BTC", MNEMONIC)
        (self.tmp / "btc.txt").write_text("\n".join(deriver.addresses(0, addresses)) + "\n")
        (self.tmp / "eth.txt").write_text("")
        self.ports = {name: free_port() for name in ("public", "admin", "dummy")}
        (self.tmp / "config.toml").write_text(f"""
debug = false
logfile = ""
btc_addresses = "{self.tmp / 'btc.txt'}"
eth_addresses = "{self.tmp / 'eth.txt'}"
[teller]
max_bound_addrs = 0
addr_low_water = 0
[sky_exchanger]
sky_btc_exchange_rate = "500"
sky_eth_exchange_rate = "100"
tx_confirmation_check_wait = "1s"
[btc_scanner]
enabled = true
[sender]
max_outputs = {max_outputs}
[web]
http_addr = "127.0.0.1:{self.ports['public']}"
throttle_max = 0
[admin_panel]
host = "127.0.0.1:{self.ports['admin']}"
[dummy]
scanner = true
sender = true
http_addr = "127.0.0.1:{self.ports['dummy']}"
sender_coins = "{coins}"
sender_autoconfirm = {str(autoconfirm).lower()}
""")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from teller.cli import main; main()", "run",
             "-c", str(self.tmp / "config.toml"), "-d", str(self.tmp / "data")],
            cwd=REPO, stdout=open(self.tmp / "teller.log", "wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "TELLER_FAILPOINTS": ""})
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url("public") + "/api/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("teller did not start; see " + str(self.tmp / "teller.log"))
            time.sleep(0.1)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
