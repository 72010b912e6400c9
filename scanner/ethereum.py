"""ETH and ERC-20 deposits from an Ethereum JSON-RPC node through web3.

Per block (``eth_getBlockByNumber(n, true)``):

* **ETH value transfers**: a transaction whose ``to`` is a watched ETH deposit address
  (compared lower-case), with ``value > 0``, whose receipt ``status`` is 1 (receipts are
  fetched only for such transactions). Deposit id ``<txhash>:0``, value in wei.
  Ether moved by internal calls (a contract forwarding ETH) is not seen: only top-level
  transfers count.
* **ERC-20 deposits**: ``eth_getLogs`` for exactly this block hash (so a log can never come
  from a sibling block), the configured token contracts and the ``Transfer`` topic. A log whose
  ``to`` (topic 2) is a watched address of that token's coin_type (the token symbol) is a
  deposit with id ``<txhash>:<logIndex>`` and value = the log's data in token base units. Logs
  with ``removed = true``, without exactly three topics (ERC-721 has four), or whose
  transaction receipt says ``status = 0`` are skipped.

web3 and requests exceptions are translated here into ``scanner.errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledger.intake import DepositIntake
from ledger.store import Deposit

from .base import ChainScanner, ScannedBlock, ScanSettings
from .errors import ChainMoved, NodeRejected, NodeUnavailable

log = logging.getLogger(__name__)

# keccak256("Transfer(address,address,uint256)"), as a 0x string (web3 silently matches
# nothing when topics are given as bytes).
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@dataclass(frozen=True)
class Token:
    """A watched ERC-20 contract; ``symbol`` is its coin_type."""

    symbol: str
    address: str  # contract address, any case


def _hex(value: Any) -> str:
    """HexBytes / bytes / str → lower-case 0x hex."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


class EthereumScanner(ChainScanner):
    """ETH plus every configured ERC-20 token, one scanner (one cursor, key "ETH")."""

    def __init__(self, endpoint: str, storage: Any, intake: DepositIntake,
                 settings: ScanSettings, tokens: list[Token] | None = None,
                 timeout: float = 30.0) -> None:
        self.tokens = list(tokens or [])
        super().__init__("ETH", ["ETH", *(t.symbol for t in self.tokens)], storage, intake,
                         settings)
        from web3 import Web3  # imported here: web3 takes about a second to import

        self.endpoint = endpoint
        # One try per call: the scanner loop already backs off (web3's own retries would hold
        # each poll five timeouts long on a hanging node).
        self.w3 = Web3(Web3.HTTPProvider(endpoint, request_kwargs={"timeout": timeout},
                                         exception_retry_configuration=None))
        self._token_by_address = {t.address.lower(): t for t in self.tokens}
        self._token_filter = [Web3.to_checksum_address(t.address) for t in self.tokens]

    # -- error translation -----------------------------------------------------------------

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests
        from web3 import exceptions as w3e

        try:
            return fn(*args, **kwargs)
        except (w3e.BlockNotFound, w3e.TransactionNotFound) as exc:
            raise ChainMoved(f"ETH node {what}: {exc}") from exc
        except w3e.Web3RPCError as exc:
            error: Any = (exc.rpc_response or {}).get("error") or {}
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message", str(exc)) if isinstance(error, dict) else str(exc)
            raise NodeRejected(code, f"ETH node {what}: {message}") from exc
        except (requests.RequestException, OSError, w3e.ProviderConnectionError) as exc:
            raise NodeUnavailable(f"ETH node {what}: {type(exc).__name__}: {exc}") from exc
        except w3e.Web3Exception as exc:
            raise NodeRejected(None, f"ETH node {what}: {type(exc).__name__}: {exc}") from exc

    # -- node questions --------------------------------------------------------------------

    def node_tip(self) -> int:
        return int(self._call("eth_blockNumber", lambda: self.w3.eth.block_number))

    def node_hash_at(self, height: int) -> str | None:
        if height < 0:
            return None
        try:
            block = self._call("eth_getBlockByNumber", self.w3.eth.get_block, height)
        except ChainMoved:
            return None
        return _hex(block["hash"])

    def _status(self, tx_hash: str) -> int:
        receipt = self._call("eth_getTransactionReceipt", self.w3.eth.get_transaction_receipt,
                             tx_hash)
        return int(receipt["status"])

    def fetch_blocks(self, heights: range) -> Iterator[ScannedBlock]:
        watched_eth = self.intake.watched("ETH")
        watched_tokens = {t.symbol: self.intake.watched(t.symbol) for t in self.tokens}
        for height in heights:
            block = self._call("eth_getBlockByNumber", self.w3.eth.get_block, height, True)
            if block["number"] != height:
                raise ChainMoved(f"ETH block {height} answered as {block['number']}")
            block_hash = _hex(block["hash"])
            deposits = self._value_deposits(block, block_hash, height, watched_eth)
            if any(watched_tokens.values()):
                deposits += self._token_deposits(block_hash, height, watched_tokens)
            yield ScannedBlock(height, block_hash, _hex(block["parentHash"]), deposits)

    def _value_deposits(self, block: Any, block_hash: str, height: int,
                        watched: set[str]) -> list[Deposit]:
        found = []
        for tx in block["transactions"]:
            to = tx.get("to")
            if not to or tx["value"] <= 0:
                continue
            to = to.lower()
            if to not in watched:
                continue
            tx_hash = _hex(tx["hash"])
            if self._status(tx_hash) != 1:
                log.info("ETH transfer %s to %s failed (status 0): ignored", tx_hash, to)
                continue
            found.append(Deposit("ETH", to, int(tx["value"]), height, tx_hash, 0, block_hash))
        return found

    def _token_deposits(self, block_hash: str, height: int,
                        watched: dict[str, set[str]]) -> list[Deposit]:
        logs = self._call("eth_getLogs", self.w3.eth.get_logs, {
            "blockHash": block_hash, "address": self._token_filter,
            "topics": [TRANSFER_TOPIC]})
        found = []
        for entry in logs:
            token = self._token_by_address.get(str(entry["address"]).lower())
            topics = entry["topics"]
            if token is None or entry.get("removed") or len(topics) != 3:
                continue
            if _hex(topics[0]) != TRANSFER_TOPIC or _hex(entry["blockHash"]) != block_hash:
                continue
            to = "0x" + _hex(topics[2])[-40:]
            if to not in watched[token.symbol]:
                continue
            tx_hash = _hex(entry["transactionHash"])
            if self._status(tx_hash) != 1:
                continue
            value = int.from_bytes(bytes(entry["data"]), "big") if not isinstance(
                entry["data"], str) else int(entry["data"], 16)
            if value <= 0:
                continue
            found.append(Deposit(token.symbol, to, value, height, tx_hash,
                                 int(entry["logIndex"]), block_hash))
        return found
