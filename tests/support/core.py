"""Test helpers for the exchange core (like flask.testing): the shipped config, and a real core
(market data composed in, as `teller core run` has it) behind its RPC server on a free port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from exchangecore import open_core
from matchengine.config import CoreConfig, load
from matchengine.rpcserver import RpcServer
from matchengine.service import now

ROOT = Path(__file__).resolve().parents[2]  # the repository (core.toml)


def core_config() -> CoreConfig:
    return load(ROOT / "core.toml")


class CoreServer:
    """A CoreService served by its RpcServer on 127.0.0.1:<free port>."""

    def __init__(self, data_dir: Path, config: CoreConfig | None = None,
                 clock: Callable[[], float] = now) -> None:
        self.service = open_core(config or core_config(), data_dir, clock=clock)
        self.server = RpcServer(self.service, "127.0.0.1", 0)
        self.url = self.server.url + "/"
        self.server.start()
        self.session = requests.Session()
        self._id = 0

    def post(self, body, **kw) -> requests.Response:
        return self.session.post(self.url, json=body, timeout=10, **kw)

    def rpc(self, method: str, params: list) -> dict:
        self._id += 1
        reply = self.post({"id": self._id, "method": method, "params": params})
        return reply.json()

    def ok(self, method: str, params: list):
        reply = self.rpc(method, params)
        assert reply["error"] is None, (method, params, reply)
        return reply["result"]

    def close(self) -> None:
        self.session.close()
        self.server.stop(timeout=2)
        self.service.stop()


@contextmanager
def disk_held(env: Any) -> Iterator[None]:
    """Hold the LMDB write lock of ``env`` for the duration, as a stuck disk would: no commit
    can finish until the block exits (then everything queued commits)."""
    held, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        txn = env.begin(write=True)
        held.set()
        release.wait(20)
        txn.abort()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    held.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join(10)
