"""Real chain nodes for tests, in the style of Bitcoin Core's test_framework ``TestNode``.

``LitecoinNode``: ``litecoind -regtest`` (Bitcoin Core 0.21 code base, the closest real
"bitcoind" this machine can run) on free loopback ports with user/password auth, -txindex and
no network. ``AnvilNode``: Foundry's anvil (a real Ethereum JSON-RPC node) without automine, so
tests decide when blocks happen.

Both: ``start()`` waits until the RPC answers and fails at once, with the log tail, if the
process dies; ``stop()`` is clean and idempotent (kill after a timeout); ``kill()`` is SIGKILL;
``start()`` again reuses the same data directory (LitecoinNode) or port (both). Binaries that
are missing raise ``NodeError`` telling the user to run ``make tools`` — tests never skip.
Every process started here is also killed at interpreter exit, as a last resort.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from tests.support.wait import scaled

REPO = Path(__file__).resolve().parents[2]

_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def _kill_leftovers() -> None:
    for proc in list(_LIVE.values()):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_kill_leftovers)


class NodeError(RuntimeError):
    """A node could not be found, started or stopped."""


class _ClosingConnection(http.client.HTTPConnection):
    """Sends ``Connection: close``: litecoind 0.21 (like Bitcoin Core of that age) will not
    finish a clean shutdown while a keep-alive RPC connection is open — it waits up to
    ``-rpcservertimeout`` (30 s) for it."""

    def request(self, method: str, url: str, body: Any = None, headers: Any = None,
                **kwargs: Any) -> None:
        super().request(method, url, body, {**(headers or {}), "Connection": "close"},
                        **kwargs)


def closing_proxy(url: str, timeout: float = 30.0) -> AuthServiceProxy:
    """An ``AuthServiceProxy`` that opens a new connection per call (see ``_ClosingConnection``)."""
    parsed = urllib.parse.urlsplit(url)
    conn = _ClosingConnection(parsed.hostname, parsed.port or 80, timeout=timeout)
    return AuthServiceProxy(url, timeout=timeout, connection=conn)


def close_rpc(proxy: AuthServiceProxy) -> None:
    """Close a python-bitcoinrpc proxy's keep-alive connection (it has no public close), so a
    clean ``LitecoinNode.stop()`` is not held up by it."""
    conn = getattr(proxy, "_AuthServiceProxy__conn", None)
    if conn is not None:
        conn.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:])


def find_litecoind() -> str:
    found = shutil.which("litecoind")
    if not found:
        raise NodeError(
            "litecoind not found on PATH: run `make tools` (apt-get install litecoind)"
        )
    return found


def find_anvil() -> str:
    """The native anvil binary. Never ``node_modules/.bin/anvil``: that is a Node wrapper, and
    killing it would orphan the real anvil (still holding the port)."""
    packages = REPO / "node_modules" / "@foundry-rs"
    for path in sorted(packages.glob("anvil-*/bin/anvil")):
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    on_path = shutil.which("anvil")
    if on_path and Path(on_path).resolve().suffix not in (".js", ".mjs", ".cjs"):
        return on_path
    raise NodeError(
        f"native anvil not found under {packages}/anvil-*/bin/ or on PATH: "
        "run `make tools` (npm install)"
    )


class _Process:
    """Shared start/stop/kill plumbing around one child process."""

    name = "node"

    def __init__(self, datadir: Path) -> None:
        self.datadir = Path(datadir)
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.datadir / f"{self.name}.out"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _spawn(self, argv: list[str]) -> None:
        if self.running:
            raise NodeError(f"{self.name} is already running (pid {self.process.pid})")  # type: ignore[union-attr]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        try:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.datadir,
            )
        finally:
            log.close()
        _LIVE[self.process.pid] = self.process

    def _log_tail(self) -> str:
        return _tail(self.log_path)

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            _LIVE.pop(self.process.pid, None)
            self.process = None
            raise NodeError(f"{self.name} exited with code {code} while starting:\n"
                            f"{self._log_tail()}")

    def _wait_exit(self, timeout: float) -> bool:
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _forget(self) -> None:
        if self.process is not None:
            _LIVE.pop(self.process.pid, None)
        self.process = None

    def kill(self) -> None:
        """SIGKILL (a crash): no clean shutdown, data directory left as it is."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._forget()


# ----------------------------------------------------------------------------- litecoind


class LitecoinNode(_Process):
    """``litecoind -regtest`` with a loaded wallet; RPC on a free 127.0.0.1 port.

    ``rpc`` / ``wallet_rpc`` give a fresh ``AuthServiceProxy`` on each access (safe across
    restarts and threads) that does not keep its connection open; ``rpc_url`` is
    ``http://user:pass@127.0.0.1:PORT``. A client of yours that keeps a keep-alive connection
    open delays a clean ``stop()`` by up to ``rpc_server_timeout`` seconds (litecoind waits for
    it): ``close_rpc(proxy)`` first, or ``kill()`` when a crash is what you want.
    Regtest addresses look like ``rltc1q…`` (bech32), ``m…``/``n…`` (P2PKH), ``Q…`` (P2SH).
    """

    name = "litecoind"

    def __init__(
        self,
        datadir: Path,
        user: str = "user",
        password: str = "pass",
        wallet: str = "w",
        extra_args: tuple[str, ...] = (),
        rpc_server_timeout: int = 30,
    ) -> None:
        super().__init__(datadir)
        self.rpc_server_timeout = rpc_server_timeout
        self.user = user
        self.password = password
        self.wallet = wallet
        self.extra_args = extra_args
        self.rpc_port = free_port()
        self._miner_address: str | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.rpc_port}"

    @property
    def wallet_url(self) -> str:
        return f"{self.rpc_url}/wallet/{self.wallet}"

    @property
    def rpc(self) -> AuthServiceProxy:
        return closing_proxy(self.rpc_url, timeout=scaled(30))

    @property
    def wallet_rpc(self) -> AuthServiceProxy:
        return closing_proxy(self.wallet_url, timeout=scaled(30))

    @property
    def debug_log(self) -> Path:
        return self.datadir / "regtest" / "debug.log"

    def _log_tail(self) -> str:
        return f"--- stdout ---\n{_tail(self.log_path, 10)}\n--- debug.log ---\n" + _tail(
            self.debug_log
        )

    def start(self, timeout: float = 30.0) -> LitecoinNode:
        """Start (or restart on the same datadir), wait for RPC, load or create the wallet."""
        argv = [
            find_litecoind(),
            "-regtest",
            f"-datadir={self.datadir}",
            "-server",
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
            f"-rpcport={self.rpc_port}",
            f"-rpcuser={self.user}",
            f"-rpcpassword={self.password}",
            "-listen=0",
            "-dnsseed=0",
            "-upnp=0",
            "-connect=0",
            "-discover=0",
            "-fallbackfee=0.0002",
            "-txindex=1",
            "-printtoconsole=0",
            f"-rpcservertimeout={self.rpc_server_timeout}",
            *self.extra_args,
        ]
        self._spawn(argv)
        deadline = time.monotonic() + scaled(timeout)
        while True:
            self._check_alive()
            try:
                closing_proxy(self.rpc_url, timeout=5).getblockchaininfo()
                break
            except (OSError, JSONRPCException, ValueError):
                # connection refused, RPC warm-up (-28), or an HTTP answer that is not JSON yet
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise NodeError(f"litecoind RPC not ready after {timeout}s:\n{self._log_tail()}")
            time.sleep(0.05)
        self._ensure_wallet()
        return self

    def _ensure_wallet(self) -> None:
        rpc = self.rpc
        if self.wallet in rpc.listwallets():
            return
        try:
            rpc.loadwallet(self.wallet)
        except JSONRPCException as exc:
            if exc.code != -18:  # -18: wallet not found → first start
                raise
            rpc.createwallet(self.wallet)

    def generate(self, n: int = 1, address: str | None = None) -> list[str]:
        """Mine ``n`` blocks to ``address`` (default: one wallet address); returns their hashes.

        After ``invalidateblock``, mine the replacement to another address: the same address in
        the same second rebuilds the very block just invalidated, which is rejected."""
        if address is None:
            if self._miner_address is None:
                self._miner_address = self.wallet_rpc.getnewaddress()
            address = self._miner_address
        return self.rpc.generatetoaddress(n, address)

    def stop(self, timeout: float = 45.0) -> None:
        """Clean shutdown via the ``stop`` RPC; SIGKILL if it takes longer than ``timeout``."""
        if not self.running:
            self._forget()
            return
        try:
            closing_proxy(self.rpc_url, timeout=5).stop()
        except (OSError, JSONRPCException, ValueError):
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
        if not self._wait_exit(scaled(timeout)):
            self.kill()
            return
        self._forget()


# ----------------------------------------------------------------------------- anvil


class AnvilNode(_Process):
    """anvil on a free 127.0.0.1 port with ``--no-mining``: blocks only via ``mine()``.

    ``w3`` is a web3 8 ``Web3`` over ``HTTPProvider(url)``; ``accounts`` are anvil's ten funded
    dev accounts (unlocked, so ``transact({'from': a})`` works).
    """

    name = "anvil"

    def __init__(
        self,
        datadir: Path,
        extra_args: tuple[str, ...] = (),
        chain_id: int = 31337,
    ) -> None:
        super().__init__(datadir)
        self.port = free_port()
        self.chain_id = chain_id
        self.extra_args = extra_args
        self._w3: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def w3(self) -> Any:
        if self._w3 is None:
            from web3 import Web3  # local: web3 takes ~1 s to import

            self._w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))
        return self._w3

    @property
    def accounts(self) -> list[str]:
        return list(self.w3.eth.accounts)

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        """A raw JSON-RPC call (no web3 middleware); raises ``NodeError`` on an RPC error."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": params or []}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=scaled(30)) as resp:
            reply = json.loads(resp.read())
        if reply.get("error"):
            raise NodeError(f"anvil {method}: {reply['error']}")
        return reply.get("result")

    def start(self, timeout: float = 15.0) -> AnvilNode:
        argv = [
            find_anvil(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--no-mining",
            "--silent",
            *self.extra_args,
        ]
        self._spawn(argv)
        deadline = time.monotonic() + scaled(timeout)
        while True:
            self._check_alive()
            try:
                if int(self.request("eth_chainId"), 16) == self.chain_id:
                    return self
            except (OSError, urllib.error.URLError, ValueError, NodeError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise NodeError(f"anvil not ready after {timeout}s:\n{self._log_tail()}")
            time.sleep(0.02)

    def mine(self, n: int = 1) -> int:
        """Mine ``n`` blocks (``anvil_mine``); returns the new block number."""
        self.request("anvil_mine", [hex(n)])
        return int(self.request("eth_blockNumber"), 16)

    def snapshot(self) -> str:
        """``evm_snapshot``: an id to ``revert`` to (a revert drops every later block)."""
        return self.request("evm_snapshot")

    def revert(self, snapshot_id: str) -> bool:
        return bool(self.request("evm_revert", [snapshot_id]))

    def reorg(self, depth: int, txs: list[tuple[dict[str, Any] | str, int]] | None = None) -> None:
        """``anvil_reorg``: replace the top ``depth`` blocks by as many new ones (same height,
        new hashes), optionally putting ``(tx, block_offset)`` pairs into them, where tx is a
        transaction request dict or signed raw tx hex. Transactions of the replaced blocks
        are dropped."""
        self.request("anvil_reorg", [depth, [list(t) for t in txs or []]])

    def rollback(self, depth: int) -> None:
        """``anvil_rollback``: drop the top ``depth`` blocks (the chain gets shorter)."""
        self.request("anvil_rollback", [depth])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (anvil keeps no state on disk); SIGKILL after ``timeout``."""
        if not self.running:
            self._forget()
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        if not self._wait_exit(scaled(timeout)):
            self.kill()
            return
        self._forget()
