"""`teller core run` with its WebSocket gateway as a real subprocess, a real auth_url server,
and a small synchronous WebSocket client (websockets.sync) that separates replies from pushes.

Used by tests/test_wsgateway_*.py and bench/ws.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from websockets.sync.client import ClientConnection, connect

from tests.support.core_process import CoreProcess
from tests.support.nodes import free_port
from tests.support.process import REPO
from tests.support.wait import scaled


def traded(rows: list[list]) -> list[list]:
    """The kline rows with volume: a push's window can reach into a newer, flat bucket when a
    second (or minute) turns between the deal and the read."""
    return [row for row in rows if row[5] != "0"]


def sign(secret: str, access_id: str, tonce: int) -> str:
    """The signature `AuthServer`'s sign_url expects (a stand-in for an exchange's API-key
    scheme: HMAC-SHA256 of the query string)."""
    message = f"access_id={access_id}&tonce={tonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class AuthServer:
    """viabtc's auth_url and sign_url contracts on 127.0.0.1. `/auth`: `Authorization: <token>`
    -> user id, from `tokens`. `/sign?access_id=..&tonce=..`: `Authorization: <signature>` ->
    user id, from `keys` (access_id -> (secret, user)); a tonce is accepted once. Anything else
    gets a code-401 refusal."""

    def __init__(self, tokens: dict[str, int],
                 keys: dict[str, tuple[str, int]] | None = None) -> None:
        self.tokens = dict(tokens)
        self.keys = dict(keys or {})
        self.requests: list[str] = []
        self.tonces: set[tuple[str, str]] = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                token = self.headers.get("Authorization", "")
                owner.requests.append(token)
                path, _, query = self.path.partition("?")
                if path == "/sign":
                    user = owner.signed(dict(parse_qsl(query)), token)
                else:
                    user = owner.tokens.get(token)
                body = ({"code": 0, "message": None, "data": {"user_id": user}} if user
                        else {"code": 401, "message": "invalid token", "data": None})
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/auth"
        self.sign_url = f"http://127.0.0.1:{self.server.server_port}/sign"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def signed(self, query: dict[str, str], signature: str) -> int | None:
        access_id, tonce = query.get("access_id", ""), query.get("tonce", "")
        secret, user = self.keys.get(access_id, ("", None))
        if user is None or not tonce.lstrip("-").isdigit() or (access_id, tonce) in self.tonces:
            return None
        if not hmac.compare_digest(signature, sign(secret, access_id, int(tonce))):
            return None
        self.tonces.add((access_id, tonce))
        return user

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WsCore(CoreProcess):
    """A core subprocess (HTTP + WebSocket on free ports) with its own config in `root`,
    restartable on the same data. With `command="ws"` it is a standalone gateway
    (`teller core ws`) for the core whose HTTP port is `http_port` (its [ws] events_addr must
    be in `ws`)."""

    def __init__(self, root: Path, ws: dict[str, Any] | None = None,
                 command: str = "run", http_port: int | None = None) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        http_port = http_port or free_port()
        self.ws_port = free_port()
        self.ws_enabled = (ws or {}).get("addr") != ""
        with open(REPO / "core.toml", "rb") as fh:
            base = tomllib.load(fh)
        sections = {"core": {"http_addr": f"127.0.0.1:{http_port}", "snapshot_interval": 0},
                    "ws": {"addr": f"127.0.0.1:{self.ws_port}", **(ws or {})}}
        text = "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
                       + "\n" for name, keys in sections.items())
        for table in ("assets", "markets"):
            for item in base[table]:
                text += f"\n[[{table}]]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                     for k, v in item.items())
        config = root / "core.toml"
        config.write_text(text)
        super().__init__(root / "data", config, command=command, http_port=http_port)
        self.log_path = root / "core.log"

    @property
    def http(self) -> str:
        return self.url + "/"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.ws_port}{path}"

    def ready(self) -> bool:
        if not super().ready():
            return False
        if not self.ws_enabled:
            return True
        with connect(self.ws_url(), open_timeout=2):
            return True


class Client:
    """A real WebSocket client; `call` returns the reply to its request, pushes are kept."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        # entered as a context manager (websockets 17 warns about a bare connect())
        self.ws: ClientConnection = connect(url, open_timeout=5, **kwargs).__enter__()
        self.pushes: list[dict] = []
        self._id = 0

    def send(self, message: Any) -> None:
        self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    def recv(self, timeout: float = 5) -> dict:
        return json.loads(self.ws.recv(timeout=scaled(timeout)))

    def reply(self, id_: Any = None, timeout: float = 5) -> dict:
        """The next message that is not a push (viabtc: `method` absent; CONNMIX: `event`)."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            message = self.recv(max(0.01, deadline - time.monotonic()))
            if "method" in message or "event" in message:
                self.pushes.append(message)
                continue
            if id_ is None or message.get("id") == id_:
                return message

    def call(self, method: str, params: list, timeout: float = 5) -> dict:
        self._id += 1
        self.send({"id": self._id, "method": method, "params": params})
        return self.reply(self._id, timeout)

    def ok(self, method: str, params: list) -> Any:
        reply = self.call(method, params)
        assert reply["error"] is None, (method, params, reply)
        return reply["result"]

    def push(self, name: str, timeout: float = 5, where: Any = None) -> dict:
        """The next push named `name` (viabtc method or CONNMIX event), kept ones first."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            for i, message in enumerate(self.pushes):
                if message.get("method", message.get("event")) == name and (
                        where is None or where(message)):
                    return self.pushes.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {name} push; kept: {self.pushes[-5:]}")
            try:
                self.pushes.append(self.recv(remaining))
            except TimeoutError:
                continue

    def no_push(self, name: str, wait: float = 0.5) -> None:
        """Nothing named `name` arrives within `wait` seconds."""
        try:
            message = self.push(name, timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected push {message}")

    def close(self) -> None:
        self.ws.close()
