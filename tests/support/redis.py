"""A real ``redis-server`` for tests, on a free loopback port, with nothing persisted.

The binary is Debian's ``redis-server`` (``make tools`` installs it); a missing one raises
``NodeError`` naming that target — tests never skip. ``redis_server`` is the fixture.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.nodes import _LIVE, NodeError, free_port
from tests.support.wait import wait_until


class RedisServer:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = self._client()

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        """Start (or start again, on the same port and directory)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise NodeError("redis-server not found: run `make tools` (Debian package redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        _LIVE[self.proc.pid] = self.proc
        self.client = self._client()  # start() after stop() reuses the port
        wait_until(self._ping, timeout=10, message="redis-server to answer PING")
        return self

    def _ping(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise NodeError(f"redis-server exited with {self.proc.returncode}")
        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            return False

    def messages(self, key: str = "alert:message") -> list[dict[str, Any]]:
        """The list's JSON messages, oldest first (LPUSH puts the newest at the head)."""
        return [json.loads(raw) for raw in reversed(self.client.lrange(key, 0, -1))]

    def stop(self) -> None:
        self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            _LIVE.pop(self.proc.pid, None)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
