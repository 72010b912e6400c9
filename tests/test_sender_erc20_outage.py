"""The ERC-20 sender when its node is down or answers garbage: every call raises
``NodeUnavailable`` (the exchanger waits and retries), never a web3/requests exception.

The node is a closed port, or a plain HTTP server on 127.0.0.1 that answers each JSON-RPC
request with a fixed body; no anvil is needed because no answer is ever valid.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from eth_account import Account

from common.storage import Storage
from sender.base import NodeUnavailable, PayoutOutput, SignedPayout
from sender.erc20 import ERC20Sender
from tests.support.nodes import free_port

BUYER = "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0"
TOKEN = "0x" + "12" * 20
SIGNED = SignedPayout(txid="0x" + "ab" * 32, raw="0x02f86c0180", outputs=(
    PayoutOutput(BUYER, 5, "BTC/aa:0"),), meta={
        "nonce": 0, "gas": 60_000, "maxFeePerGas": "10", "maxPriorityFeePerGas": "1"})

GARBAGE = {
    "html": (200, b"<html>502 Bad Gateway</html>"),
    "not an object": (200, b"[]"),
    "no jsonrpc field": (200, b"{}"),
    "bad hex": (200, b'{"jsonrpc": "2.0", "id": 0, "result": "0xzz"}'),
    "error not an object": (200, b'{"jsonrpc": "2.0", "id": 0, "error": "boom"}'),
    "http 500": (500, b"internal error"),
}


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = Storage(tmp_path / "data")
    yield st
    st.close()


@pytest.fixture
def garbage_node() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    answer = {"now": (200, b"")}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("content-length", 0)))
            status, body = answer["now"]
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", answer
    finally:
        server.shutdown()
        server.server_close()


def every_call(sender: ERC20Sender) -> list[tuple[str, object]]:
    return [("balance", sender.balance),
            ("build", lambda: sender.build([PayoutOutput(BUYER, 5, "BTC/aa:0")], "p")),
            ("broadcast", lambda: sender.broadcast(SIGNED)),
            ("tx_state", lambda: sender.tx_state(SIGNED)),
            ("replace", lambda: sender.replace(SIGNED))]


def test_closed_port_is_node_unavailable_everywhere(storage) -> None:
    sender = ERC20Sender(storage, Account.create(), url=f"http://127.0.0.1:{free_port()}",
                         token_address=TOKEN, timeout=2)
    assert sender.probe() == [], "unreachable is not a configuration problem"
    for _name, call in every_call(sender):
        with pytest.raises(NodeUnavailable, match="unreachable"):
            call()  # type: ignore[operator]


def test_garbage_answers_are_node_unavailable_everywhere(storage, garbage_node) -> None:
    url, answer = garbage_node
    key = Account.create()
    for label, reply in GARBAGE.items():
        answer["now"] = reply
        sender = ERC20Sender(storage, key, url=url, token_address=TOKEN, timeout=2)
        assert sender.probe() == [], label
        for name, call in every_call(sender):
            with pytest.raises(NodeUnavailable) as exc:
                call()  # type: ignore[operator]
            assert key.key.hex() not in str(exc.value), (label, name)


def test_a_hanging_node_costs_one_timeout_not_web3_retries(storage) -> None:
    """web3's HTTPProvider retries reads five times with backoff on a timeout or HTTP error:
    with a 10 s timeout a hanging node held each call (and /api/health, which reads the
    balance) for ~50 s. The exchanger has its own persisted backoff, so one try is enough."""
    with socket.socket() as hanging:  # accepts connections (backlog), never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
        sender = ERC20Sender(storage, Account.create(), url=url, token_address=TOKEN,
                             timeout=0.5)
        started = time.monotonic()
        with pytest.raises(NodeUnavailable, match="unreachable"):
            sender.balance()
        assert time.monotonic() - started < 2.0
