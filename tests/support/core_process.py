"""`teller core run` as a real subprocess on a free loopback port, plus a market maker.

For the passthrough tests and bench/passthrough.py: the teller buys on this core over its
JSON-RPC exactly as in production. ``CoreProcess.rpc`` is a plain JSON-RPC call;
``MarketMaker`` funds a maker account with ``balance.update`` and places asks with
``order.put_limit`` over the same wire.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.core import ROOT
from tests.support.nodes import free_port
from tests.support.wait import wait_until

ASK, BID = 1, 2


class CoreError(AssertionError):
    """The core answered a JSON-RPC error the test did not expect."""


class CoreProcess:
    """One `teller core run -c core.toml` on ``data_dir``; restartable."""

    def __init__(self, data_dir: Path, config: Path = ROOT / "core.toml") -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self._id = 0

    def start(self, timeout: float = 30) -> CoreProcess:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-core.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from teller.cli_core import core_group; core_group()",
                 "run", "-c", str(self.config), "-d", str(self.data_dir),
                 "--http-addr", f"127.0.0.1:{self.port}"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wait_until(self._up, timeout, message="teller core run to answer asset.list")
        return self

    def _up(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_tail()
        try:
            return self.call("asset.list", [])["error"] is None
        except requests.RequestException:
            return False

    def call(self, method: str, params: list) -> dict[str, Any]:
        self._id += 1
        reply = self.session.post(self.url + "/", timeout=10,
                                  json={"id": self._id, "method": method, "params": params})
        return reply.json()

    def ok(self, method: str, params: list) -> Any:
        reply = self.call(method, params)
        if reply["error"] is not None:
            raise CoreError(f"{method} {params}: {reply['error']}")
        return reply["result"]

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
        path = getattr(self, "log_path", None)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.session.close()


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
