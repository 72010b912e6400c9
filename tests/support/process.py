"""``teller run`` as a real subprocess, for tests that kill it and start it again.

The in-process harness (tests/support/service.py) is enough for API tests; crash tests need a
process that can die with SIGKILL in the middle of a payout and come back on the same data
directory, exactly as an operator's would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.support.nodes import free_port
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]

BASE_CONFIG = """
debug = true
logfile = ""
btc_addresses = "{addresses}"
eth_addresses = "{addresses_eth}"

[teller]
max_bound_addrs = 0
addr_low_water = 0

[sky_exchanger]
sky_btc_exchange_rate = "500"
sky_eth_exchange_rate = "100"
max_decimals = 3
tx_confirmation_check_wait = "100ms"

[sender]
retry_max_wait = "1s"

[btc_scanner]
enabled = true

[eth_scanner]
enabled = false

[web]
http_addr = "127.0.0.1:{public}"
throttle_max = 0

[admin_panel]
host = "127.0.0.1:{admin}"

[dummy]
scanner = true
sender = true
http_addr = "127.0.0.1:{dummy}"
sender_coins = "{coins}"
"""


class TellerProcess:
    """A teller subprocess on fixed free ports, restartable on the same data directory."""

    def __init__(self, tmp_path: Path, addresses: list[str], *, coins: str = "1000000",
                 extra_config: str = "") -> None:
        self.dir = tmp_path / "data"
        self.dir.mkdir(parents=True, exist_ok=True)
        address_file = tmp_path / "btc_addresses.txt"
        address_file.write_text("\n".join(addresses) + "\n")
        eth_file = tmp_path / "eth_addresses.txt"
        eth_file.write_text("")
        self.ports = {"public": free_port(), "admin": free_port(), "dummy": free_port()}
        self.config = tmp_path / "config.toml"
        self.config.write_text(BASE_CONFIG.format(
            addresses=address_file, addresses_eth=eth_file, coins=coins, **self.ports)
            + extra_config)
        self.log_path = tmp_path / "teller.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self.starts = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, failpoints: str = "", wait: bool = True) -> None:
        env = {**os.environ, "TELLER_FAILPOINTS": failpoints}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from teller.cli import main; main()", "run",
             "-c", str(self.config), "-d", str(self.dir)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        if wait:
            wait_until(self.ready, timeout=20, message="teller to answer /api/health")

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"teller exited with {self.proc.returncode}:\n{self.log_tail()}")
        return self.session.get(self.url("public") + "/api/health", timeout=2).ok

    def wait_exit(self, timeout: float = 20) -> int:
        assert self.proc is not None
        wait_until(lambda: self.proc.poll() is not None, timeout=timeout,
                   message="teller to exit")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- API shortcuts ---------------------------------------------------------------------

    def bind(self, skyaddr: str, coin: str = "BTC") -> str:
        r = self.session.post(self.url("public") + "/api/bind",
                              json={"skyaddr": skyaddr, "coin_type": coin}, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["deposit_address"]

    def deposit(self, addr: str, value: int, tx: str, n: int = 0, height: int = 1) -> None:
        r = self.session.get(self.url("dummy") + "/dummy/scanner/deposit", timeout=5,
                             params={"addr": addr, "value": value, "height": height, "tx": tx,
                                     "n": n})
        assert r.status_code == 200, r.text

    def broadcasts(self) -> list[dict[str, Any]]:
        return self.session.get(self.url("dummy") + "/dummy/sender/broadcasts", timeout=5).json()

    def confirm(self, txid: str) -> None:
        r = self.session.get(self.url("dummy") + "/dummy/sender/confirm",
                             params={"txid": txid}, timeout=5)
        assert r.status_code == 200, r.text

    def deposits(self, status: str = "") -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        return self.session.get(self.url("admin") + "/api/deposits", params=params,
                                timeout=5).json()["deposits"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
