"""BTC and LTC deposits from a bitcoind-family node (Bitcoin Core, litecoind) over HTTP JSON-RPC.

The Go teller spoke btcd's websocket dialect; this scanner speaks bitcoind's plain HTTP
JSON-RPC through python-bitcoinrpc, using only ``getblockcount``, ``getblockhash`` and
``getblock <hash> 2`` (so it works against a pruned node and needs no wallet or ``-txindex``).
While catching up, hashes and blocks are fetched with ``batch_`` (several calls per HTTP round
trip; fixed up for Bitcoin Core >= 28's strict JSON-RPC 2.0 replies, see ``_Proxy``).

An output is a deposit when its script has exactly one address (``scriptPubKey.address``,
Bitcoin Core >= 22, or a one-element ``scriptPubKey.addresses``, older nodes and litecoind
0.21) that is a watched deposit address; bare multisig, OP_RETURN and anything else is ignored.
Its id is ``txid:n`` with the output's real index; its value is exact integer satoshi
(python-bitcoinrpc parses amounts as ``Decimal``).

Every library exception is translated here into ``scanner.errors``; one
``AuthServiceProxy`` (one HTTP connection) is used by the scanner thread only.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from ledger.store import Deposit, DepositStore

from .base import ChainScanner, ScannedBlock, ScanSettings
from .errors import ChainMoved, NodeRejected, NodeUnavailable

log = logging.getLogger(__name__)

SAT_PER_COIN = Decimal(100_000_000)

# RPC ports of bitcoind / litecoind per network, used when btc_rpc.server names no port.
DEFAULT_PORTS = {
    ("BTC", "mainnet"): 8332, ("BTC", "testnet"): 18332, ("BTC", "regtest"): 18443,
    ("LTC", "mainnet"): 9332, ("LTC", "testnet"): 19332, ("LTC", "regtest"): 19443,
}

# JSON-RPC error codes with a meaning for the scanner (bitcoind's rpc/protocol.h).
RPC_IN_WARMUP = -28  # "Loading block index...": the node is starting
RPC_INVALID_PARAMETER = -8  # getblockhash: "Block height out of range"
RPC_INVALID_ADDRESS_OR_KEY = -5  # getblock: "Block not found"
HTTP_LEVEL_ERRORS = (-342, -343)  # python-bitcoinrpc: non-JSON HTTP answer / no result


@dataclass(frozen=True)
class RPCSettings:
    """How to reach the node (from ``[btc_rpc]`` / ``[ltc_rpc]``)."""

    server: str  # "host:port", "host", or a URL "http(s)://host:port/path"
    user: str = ""
    password: str = ""
    cookie_file: str = ""  # bitcoind's .cookie ("__cookie__:<secret>"), re-read on reconnect
    timeout: float = 30.0


def satoshi(value: Any) -> int:
    """A node amount (Decimal from python-bitcoinrpc) → int satoshi; sub-satoshi is an error."""
    sats = Decimal(value) * SAT_PER_COIN
    if sats != sats.to_integral_value():
        raise ValueError(f"node reported {value} (not a whole number of satoshi)")
    return int(sats)


def _credentials(rpc: RPCSettings) -> tuple[str, str]:
    if rpc.cookie_file:
        try:
            text = Path(rpc.cookie_file).expanduser().read_text().strip()
        except OSError as exc:
            raise NodeUnavailable(f"cannot read cookie file {rpc.cookie_file}: "
                                  f"{exc.strerror}") from None
        user, sep, secret = text.partition(":")
        if not sep:
            raise NodeUnavailable(f"cookie file {rpc.cookie_file} is not 'user:secret'")
        return user, secret
    return rpc.user, rpc.password


def rpc_url(coin: str, network: str, rpc: RPCSettings) -> str:
    """The URL python-bitcoinrpc wants: ``http://user:pass@host:port/path``.

    python-bitcoinrpc sends the userinfo without percent-decoding, so credentials go in
    literally; ``/ ? #`` (and ``@`` in the user name) would break the URL and are refused.
    """
    user, password = _credentials(rpc)
    for name, value in (("user", user), ("password", password)):
        bad = set(value) & set("/?#" + ("@" if name == "user" else ""))
        if bad:
            raise ValueError(f"{coin.lower()}_rpc {name} contains {''.join(sorted(bad))!r}, "
                             "which python-bitcoinrpc cannot send; change it on the node")
    server = rpc.server if "://" in rpc.server else f"http://{rpc.server}"
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{coin.lower()}_rpc.server {rpc.server!r} is not host:port or a URL")
    port = parts.port or DEFAULT_PORTS.get((coin, network), 8332)
    if not user and parts.username:
        user, password = parts.username, parts.password or ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{user}:{password}@{host}:{port}{parts.path}"


class _Proxy(AuthServiceProxy):
    """python-bitcoinrpc's proxy, fit for Bitcoin Core >= 28.

    ``batch_`` sends JSON-RPC 2.0 elements and then reads ``response["error"]``; Core >= 28
    answers 2.0 strictly and leaves ``error`` out of every success, so each batch would fail
    with KeyError. Fill it in before ``batch_`` looks (older nodes already send it).
    """

    def _get_response(self) -> Any:
        response = super()._get_response()
        if isinstance(response, list):
            for item in response:
                if isinstance(item, dict):
                    item.setdefault("error", None)
        return response


class BitcoindRPC:
    """python-bitcoinrpc behind a small interface; raises only ``scanner.errors``.

    The proxy (and its HTTP connection) is rebuilt after any transport failure, so a
    restarted node or a rotated cookie is picked up on the next call.
    """

    def __init__(self, coin: str, network: str, settings: RPCSettings) -> None:
        self.coin = coin
        self.network = network
        self.settings = settings
        rpc_url(coin, network, settings)  # bad settings fail at start-up, not in the thread
        self._proxy: _Proxy | None = None

    def _connection(self) -> _Proxy:
        if self._proxy is None:
            self._proxy = _Proxy(rpc_url(self.coin, self.network, self.settings),
                                           timeout=self.settings.timeout)
        return self._proxy

    def close(self) -> None:
        """Drop the keep-alive connection (a node shutting down waits for open ones)."""
        proxy, self._proxy = self._proxy, None
        conn = getattr(proxy, "_AuthServiceProxy__conn", None)  # no public close()
        if conn is not None:
            conn.close()

    def call(self, method: str, *params: Any) -> Any:
        try:
            return getattr(self._connection(), method)(*params)
        except Exception as exc:  # noqa: BLE001 - translated below
            translated = self._translate(exc, method)
            if translated is exc:
                raise
            raise translated from exc

    def batch(self, calls: list[list[Any]]) -> list[Any]:
        """Several calls in one HTTP request (python-bitcoinrpc ``batch_``), results in order."""
        if not calls:
            return []
        try:
            return self._connection().batch_([list(c) for c in calls])
        except Exception as exc:  # noqa: BLE001 - translated below
            translated = self._translate(exc, calls[0][0])
            if translated is exc:
                raise
            raise translated from exc

    def _translate(self, exc: Exception, method: str) -> Exception:
        where = f"{self.coin} node {method}"
        if isinstance(exc, JSONRPCException):
            code, message = exc.code, exc.message or ""
            if code in HTTP_LEVEL_ERRORS:
                self.close()  # the body was not read: the connection is unusable
                hint = " (check user/pass or cookie_file)" if "401" in message else ""
                return NodeUnavailable(f"{where}: {message}{hint}")
            if code == RPC_IN_WARMUP:
                return NodeUnavailable(f"{where}: node is starting: {message}")
            return NodeRejected(code, f"{where}: {message}")
        self.close()
        if isinstance(exc, OSError | http.client.HTTPException):
            return NodeUnavailable(f"{where}: {type(exc).__name__}: {exc}")
        if isinstance(exc, ValueError | KeyError | TypeError):  # garbled JSON / batch reply
            return NodeUnavailable(f"{where}: bad answer: {type(exc).__name__}: {exc}")
        return exc


class BitcoindScanner(ChainScanner):
    """Deposits of one bitcoind-family coin (``BTC`` or ``LTC``)."""

    def __init__(self, coin: str, network: str, rpc: RPCSettings, storage: Any,
                 store: DepositStore, rate: str | Callable[[str], str], settings: ScanSettings,
                 *, blocks_per_batch: int = 4, batched: bool = True) -> None:
        # A callable is read at each deposit (runtime settings can change the rate).
        super().__init__(coin, [coin], storage, store,
                         rate if callable(rate) else (lambda _coin: rate), settings)
        self.coin = coin
        self.rpc = BitcoindRPC(coin, network, rpc)
        self.blocks_per_batch = max(1, blocks_per_batch)
        self.batched = batched

    def close(self) -> None:
        self.rpc.close()

    def scan_once(self) -> int:
        try:
            return super().scan_once()
        finally:
            self.rpc.close()  # no idle keep-alive between polls

    # -- node questions --------------------------------------------------------------------

    def node_tip(self) -> int:
        return int(self.rpc.call("getblockcount"))

    def node_hash_at(self, height: int) -> str | None:
        if height < 0:
            return None
        try:
            return str(self.rpc.call("getblockhash", height))
        except NodeRejected as exc:
            if exc.code == RPC_INVALID_PARAMETER:  # above the tip
                return None
            raise

    def fetch_raw(self, heights: range) -> Iterator[tuple[int, dict[str, Any]]]:
        """(height, ``getblock <hash> 2`` dict) for each height, batched while catching up."""
        try:
            if self.batched and len(heights) > 1:
                hashes = self.rpc.batch([["getblockhash", h] for h in heights])
            else:
                hashes = [self.rpc.call("getblockhash", h) for h in heights]
            step = self.blocks_per_batch if self.batched else 1
            for i in range(0, len(hashes), step):
                chunk = hashes[i:i + step]
                if len(chunk) > 1:
                    blocks = self.rpc.batch([["getblock", h, 2] for h in chunk])
                else:
                    blocks = [self.rpc.call("getblock", chunk[0], 2)]
                for j, block in enumerate(blocks):
                    height = heights[i + j]
                    if block.get("confirmations", 1) < 0 or block.get("height") != height:
                        raise ChainMoved(f"{self.coin} block {height} left the chain")
                    yield height, block
        except NodeRejected as exc:
            if exc.code in (RPC_INVALID_PARAMETER, RPC_INVALID_ADDRESS_OR_KEY):
                raise ChainMoved(str(exc)) from exc
            raise

    def fetch_blocks(self, heights: range) -> Iterator[ScannedBlock]:
        watched = self.store.watched(self.coin)
        for height, block in self.fetch_raw(heights):
            yield ScannedBlock(height, block["hash"], block.get("previousblockhash", ""),
                               self.deposits_in(block, height, watched))

    def deposits_in(self, block: dict[str, Any], height: int,
                    watched: set[str]) -> list[Deposit]:
        """Outputs of ``block`` paying exactly one watched address (a set lookup each)."""
        found: list[Deposit] = []
        block_hash = block["hash"]
        for tx in block["tx"]:
            for out in tx["vout"]:
                spk = out["scriptPubKey"]
                addr = spk.get("address")
                if addr is None:
                    addrs = spk.get("addresses")
                    if not addrs or len(addrs) != 1:
                        continue
                    addr = addrs[0]
                if addr not in watched:
                    # bech32 may be written all upper-case; stored addresses are lower-case
                    if not addr.isupper() or addr.lower() not in watched:
                        continue
                    addr = addr.lower()
                if spk.get("type") == "multisig":
                    continue  # a 1-of-1 bare multisig lists one address but is not a payment
                found.append(Deposit(self.coin, addr, satoshi(out["value"]), height,
                                     tx["txid"], int(out["n"]), block_hash))
        return found
