"""`teller core run` (or `teller core ws`) as a real subprocess on free loopback ports, plus a
market maker. The one way tests and benches start the exchange core as a process.

``CoreProcess`` starts, restarts, kills and stops it and speaks its JSON-RPC (``rpc`` gives the
whole reply, ``ok`` the result); tests/support/wscore.py's ``WsCore`` adds a written config with
a [ws] section. ``MarketMaker`` funds a maker account with ``balance.update`` and places asks
with ``order.put_limit`` over the same wire. Used by the passthrough tests and
bench/passthrough.py (the teller buys on this core over its JSON-RPC exactly as in
production), the core's crash test, and through ``WsCore`` the WebSocket tests and bench/ws.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.core import ROOT
from tests.support.nodes import free_port
from tests.support.wait import wait_until

ASK, BID = 1, 2
CORE = [sys.executable, "-c", "from teller.cli_core import core_group; core_group()"]


class CoreError(AssertionError):
    """The core answered a JSON-RPC error the test did not expect."""


class CoreProcess:
    """One `teller core <command> -c config` on ``data_dir``; restartable on the same data.
    `run` listens on ``http_port`` (a free one unless given); `ws` (a standalone gateway) reads
    its core's address from the config. ``args`` are added to the command line."""

    def __init__(self, data_dir: Path, config: Path = ROOT / "core.toml", *,
                 command: str = "run", http_port: int | None = None,
                 args: Sequence[str] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.command = command
        self.args = list(args)
        self.http_port = http_port or free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-core.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self._id = 0

    def start(self, timeout: float = 30) -> CoreProcess:
        where = (["-d", str(self.data_dir), "--http-addr", f"127.0.0.1:{self.http_port}"]
                 if self.command == "run" else [])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*CORE, self.command, "-c", str(self.config), *where, *self.args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wait_until(self.ready, timeout, message=f"teller core {self.command} to answer")
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"core exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.rpc("asset.list", [])["error"] is None
        except requests.RequestException:
            return False

    def rpc(self, method: str, params: list) -> dict[str, Any]:
        self._id += 1
        reply = self.session.post(self.url + "/", timeout=10,
                                  json={"id": self._id, "method": method, "params": params})
        return reply.json()

    def ok(self, method: str, params: list) -> Any:
        reply = self.rpc(method, params)
        if reply["error"] is not None:
            raise CoreError(f"{method} {params}: {reply['error']}")
        return reply["result"]

    def deposit(self, user: int, asset: str, amount: str) -> None:
        self._id += 1
        self.ok("balance.update", [user, asset, "deposit", self._id, amount, {}])

    def finished_orders(self, user: int, market: str) -> list[dict[str, Any]]:
        """Every finished order of ``user`` on ``market`` (paged, newest first)."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.ok("order.finished", [user, market, 0, 0, len(out), 101])["records"]
            out.extend(page)
            if len(page) < 101:
                return out

    def balance(self, user: int, asset: str) -> Decimal:
        return Decimal(self.ok("balance.query", [user, asset])[asset]["available"])

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


class MarketMaker:
    """A maker account on the core: funded with the stock, resting asks over JSON-RPC."""

    def __init__(self, core: CoreProcess, user: int = 100, market: str = "SKYBTC",
                 stock: str = "SKY") -> None:
        self.core, self.user, self.market, self.stock = core, user, market, stock
        self._business = 0

    def fund(self, amount: str) -> None:
        self._business += 1
        self.core.ok("balance.update", [self.user, self.stock, "deposit",
                                        self._business, amount, {}])

    def ask(self, amount: str, price: str) -> dict[str, Any]:
        return self.core.ok("order.put_limit", [self.user, self.market, ASK, amount, price,
                                                "0", "0", "maker"])


@pytest.fixture
def core(tmp_path: Path) -> Iterator[CoreProcess]:
    """A started `teller core run` in ``tmp_path/core``; stopped after the test."""
    proc = CoreProcess(tmp_path / "core").start()
    try:
        yield proc
    finally:
        proc.stop()
