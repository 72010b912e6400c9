"""``teller run`` as a real subprocess on free loopback ports, with a generated config.

The one way to run the product as an operator does, for every caller that needs a process that
can die with SIGKILL in the middle of a payout and come back on the same data directory: the
crash tests, the benchmarks (bench/_teller.py) and the ERC-20 soak (bench/soak.py). The
in-process harness (tests/support/service.py) is enough for API tests.

The config starts from ``DEFAULTS`` (dummy scanner and sender, throttling off, fast retries)
and takes overrides per section.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from common.storage import Storage
from tests.support.nodes import free_port
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]

Sections = dict[str, dict[str, Any]]  # "" holds the top-level keys

DEFAULTS: Sections = {
    "": {"debug": True, "logfile": ""},
    "teller": {"max_bound_addrs": 0, "addr_low_water": 0},
    "sky_exchanger": {"sky_btc_exchange_rate": "500", "sky_eth_exchange_rate": "100",
                      "max_decimals": 3, "tx_confirmation_check_wait": "100ms"},
    "sender": {"retry_max_wait": "1s"},
    "btc_scanner": {"enabled": True},
    "eth_scanner": {"enabled": False},
    "web": {"throttle_max": 0},
    "admin_panel": {},
    "dummy": {"scanner": True, "sender": True, "sender_coins": "1000000"},
}


def render_config(sections: Sections) -> str:
    """TOML for str/int/bool/list values (strings JSON-quoted: valid TOML basic strings)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(item) for item in v) + "]"
        return str(v) if isinstance(v, int) else json.dumps(str(v))

    lines = [f"{k} = {value(v)}" for k, v in sections.get("", {}).items()]
    for name, keys in sections.items():
        if name:
            lines += ["", f"[{name}]", *(f"{k} = {value(v)}" for k, v in keys.items())]
    return "\n".join(lines) + "\n"


class TellerProcess:
    """A teller subprocess on fixed free ports, restartable on the same data directory."""

    def __init__(self, root: Path, addresses: list[str], *,
                 config: Sections | None = None) -> None:
        self.root = Path(root)
        self.dir = self.root / "data"
        self.dir.mkdir(parents=True, exist_ok=True)
        btc_file, eth_file = self.root / "btc_addresses.txt", self.root / "eth_addresses.txt"
        btc_file.write_text("".join(f"{a}\n" for a in addresses))
        eth_file.write_text("")
        self.ports = {"public": free_port(), "admin": free_port(), "dummy": free_port()}
        sections = {name: dict(keys) for name, keys in DEFAULTS.items()}
        sections[""].update(btc_addresses=str(btc_file), eth_addresses=str(eth_file))
        sections["web"]["http_addr"] = f"127.0.0.1:{self.ports['public']}"
        sections["admin_panel"]["host"] = f"127.0.0.1:{self.ports['admin']}"
        sections["dummy"]["http_addr"] = f"127.0.0.1:{self.ports['dummy']}"
        for name, keys in (config or {}).items():
            sections.setdefault(name, {}).update(keys)
        self.config = self.root / "config.toml"
        self.config.write_text(render_config(sections))
        self.log_path = self.root / "teller.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self.starts = 0
        self.failpoints = ""

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, failpoints: str = "", wait: bool = True, timeout: float = 20) -> None:
        env = {**os.environ, "TELLER_FAILPOINTS": failpoints}
        self.failpoints = failpoints
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from teller.cli import main; main()", "run",
                 "-c", str(self.config), "-d", str(self.dir)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        self.starts += 1
        if wait:
            wait_until(self.ready, timeout=timeout, message="teller to answer /api/health")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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

    def persisted_payouts(self) -> list[dict[str, Any]]:
        """Payout records straight from LMDB (only while the teller is down: no lock held)."""
        with Storage(self.dir) as storage, storage.read() as txn:
            return [payout for _, payout in storage.items(txn, "payouts")]

    # -- API shortcuts ---------------------------------------------------------------------

    def bind(self, skyaddr: str, coin: str = "BTC") -> str:
        r = self.session.post(self.url("public") + "/api/bind",
                              json={"skyaddr": skyaddr, "coin_type": coin}, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["deposit_address"]

    def deposit(self, addr: str, value: int, tx: str, n: int = 0, height: int = 1) -> None:
        """Report a deposit through the dummy scanner. With a failpoint armed the process may
        kill itself before it answers (the deposit is committed first, and the processing that
        reaches the failpoint runs beside the request): a dropped connection then counts as
        sent, and the test proves the crash from the marker file and the exit code."""
        try:
            r = self.session.get(self.url("dummy") + "/dummy/scanner/deposit", timeout=5,
                                 params={"addr": addr, "value": value, "height": height,
                                         "tx": tx, "n": n})
        except requests.ConnectionError:
            if not self.failpoints:
                raise
            return
        assert r.status_code == 200, r.text

    def broadcasts(self) -> list[dict[str, Any]]:
        return self.session.get(self.url("dummy") + "/dummy/sender/broadcasts", timeout=5).json()

    def confirm(self, txid: str) -> None:
        r = self.session.get(self.url("dummy") + "/dummy/sender/confirm",
                             params={"txid": txid}, timeout=5)
        assert r.status_code == 200, r.text

    def deposits(self, status: str = "") -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        r = self.session.get(self.url("admin") + "/api/deposits", params=params, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["deposits"]

    def accounting(self) -> dict[str, Any]:
        return self.session.get(self.url("admin") + "/api/accounting", timeout=10).json()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
