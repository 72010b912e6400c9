"""ERC-20 payouts from a hot wallet over web3: one signed transfer per payout, exactly once.

Why it is shaped like this (``reference/reliability-anchors.md`` §5, Chainlink's tx manager):

- **Nonces are ours, gapless and persisted.** ``build`` takes the persisted next nonce
  (``erc20/<from>/next_nonce`` in the ``sender`` db; first use: the node's ``pending`` count,
  and never below it, so a transaction sent from the hot wallet by hand cannot make every later
  payout collide). It advances only in ``commit_built``, inside the exchanger's LMDB
  transaction that persists the payout: a build that is never persisted leaves no gap, and a
  persisted one is always broadcast with these exact bytes (after a crash, too).
- **Broadcast is idempotent.** "already known" / "already imported" is success; "nonce too
  low" or "replacement transaction underpriced" is success only if the node knows *our* txid,
  else the nonce went to someone else (``BroadcastRejected`` → operator review). "insufficient
  funds" is ``InsufficientFunds``: the exchanger keeps the signed bytes and sends them again
  after the operator adds ETH, so the same txid confirms.
- **Done means buried.** ``tx_state`` requires a receipt with status 1 and
  ``confirmations_required`` blocks (receipt block included); status 0 is FAILED; a nonce
  consumed by another transaction is CONFLICTED.
- **Spendable balance counts what is in flight.** ``balance()`` is the token balance minus the
  payouts signed but not yet mined (their nonces are at or above the account's mined nonce),
  so pipelined sends never overdraw the wallet into reverted transfers. A wallet without ETH
  for one transfer's gas is "not enough ETH for gas".

Fees: EIP-1559 (maxFee = 2 x baseFee + priority, capped by ``max_gas_price_gwei``) when the
latest block has ``baseFeePerGas``, else a legacy ``gasPrice`` (capped). Gas comes from
``estimate_gas`` of the transfer (a revert there = the token balance is short), capped by
``max_gas``. A payout stuck unmined is replaced by ``replace``: the same transfer, the same
nonce, fees raised by at least 12.5 % (geth wants 10 %; web3.py's own rule is 12.5 %) and never
above the cap; the exchanger persists each replacement before sending it, and whichever of them
is mined completes the payout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

from addrs.validate import validate_eth_address

from .base import (
    Balance,
    BroadcastRejected,
    InsufficientFunds,
    NodeUnavailable,
    PayoutOutput,
    Sender,
    SenderError,
    SignedPayout,
    TxState,
)
from .erc20_abi import ERC20_ABI

log = logging.getLogger(__name__)

DEFAULT_TRANSFER_GAS = 65_000  # ETH reserve check before the first estimate is known
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei when the node has no eth_maxPriorityFeePerGas
GAS_MARGIN_NUM, GAS_MARGIN_DEN = 5, 4  # +25 % over the estimate, within max_gas

_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown",
                  "already in the pool", "already exists")
_NONCE_USED = ("nonce too low", "replacement transaction underpriced", "nonce has already been",
               "oldnonce")


def _bumped(wei: int) -> int:
    """At least 12.5 % more (and always more): a replacement nodes accept."""
    return wei + wei // 8 + 1


def _gwei(wei: int) -> str:
    return f"{Decimal(wei).scaleb(-9).normalize():f}"


def _rpc_message(exc: Web3RPCError) -> str:
    response = getattr(exc, "rpc_response", None) or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(getattr(exc, "message", None) or exc)


class ERC20Sender(Sender):
    name = "erc20"
    max_outputs = 1

    def __init__(self, storage: Any, account: LocalAccount, *, url: str, token_address: str,
                 confirmations_required: int = 1, max_gas_price_gwei: Decimal = Decimal(200),
                 max_gas: int = 200_000, timeout: float = 10.0) -> None:
        self.storage = storage
        self._account = account  # holds the private key: never logged, never repr'd
        self.address = account.address
        parts = urlsplit(url)
        self.node = f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else \
            f"{parts.scheme}://{parts.hostname}"  # for messages: no path, no credentials
        # One try per call: web3's own retries (5, with backoff, on a timeout or an HTTP error)
        # would hold a pass, and /api/health, for minutes; the exchanger retries with backoff.
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout},
                                         exception_retry_configuration=None))
        self.token_address = to_checksum_address(token_address)
        self.contract = self.w3.eth.contract(address=self.token_address, abi=ERC20_ABI)
        self.confirmations_required = max(1, confirmations_required)
        self.max_fee_cap = int(Decimal(max_gas_price_gwei).scaleb(9))
        self.max_gas = max_gas
        self.token = "?"  # replaced by the contract's symbol once it is read
        self.decimals = 18
        self._chain_id: int | None = None
        self._meta_loaded = False
        self._gas_hint = DEFAULT_TRANSFER_GAS
        self._lock = threading.Lock()
        self._nonce_key = f"erc20/{self.address}/next_nonce"
        self._inflight_prefix = f"erc20/{self.address}/inflight/"
        self._meta_key = f"erc20/token/{self.token_address}"
        with storage.read() as txn:
            cached = storage.get(txn, "sender", self._meta_key)
        if cached:
            self.token, self.decimals = cached["symbol"], int(cached["decimals"])

    def __repr__(self) -> str:
        return f"ERC20Sender(from={self.address}, token={self.token_address})"

    # -- node access ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _rpc(self, what: str) -> Iterator[None]:
        """Translate web3/requests failures into the SenderError family."""
        try:
            yield
        except SenderError:
            raise
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable(f"{what}: ethereum node {self.node} unreachable "
                                  f"({type(exc).__name__})") from None
        except Web3RPCError as exc:
            raise SenderError(f"{what}: {_rpc_message(exc)}") from None
        except (Web3Exception, ValueError, TypeError, KeyError) as exc:
            raise NodeUnavailable(f"{what}: unexpected answer from ethereum node {self.node}: "
                                  f"{exc}") from None

    def probe(self) -> list[str]:
        """Start-up check: configuration problems the node proves (not mere unreachability)."""
        try:
            self._ensure_meta()
        except NodeUnavailable as exc:
            log.error("notice=WATCH erc20 sender: %s; payouts wait until it answers", exc)
        except SenderError as exc:
            return [str(exc)]
        return []

    def _ensure_meta(self) -> None:
        """Read symbol, decimals and chain id once (cached in storage for health output)."""
        if self._meta_loaded:
            return
        with self._rpc("reading the token contract"):
            chain_id = self.w3.eth.chain_id
            if not self.w3.eth.get_code(self.token_address):
                raise SenderError(f"erc20_sender.token: no contract at {self.token_address} "
                                  f"on the chain of {self.node} (chain id {chain_id})")
            symbol = str(self.contract.functions.symbol().call())
            decimals = int(self.contract.functions.decimals().call())
        if not 0 <= decimals <= 77:
            raise SenderError(f"token {self.token_address} reports {decimals} decimals")
        with self.storage.write() as txn:
            self.storage.put(txn, "sender", self._meta_key,
                             {"symbol": symbol, "decimals": decimals, "chain_id": chain_id})
        self.token, self.decimals, self._chain_id = symbol, decimals, chain_id
        self._meta_loaded = True
        log.info("erc20 sender: paying %s (%d decimals, contract %s, chain %d) from %s",
                 symbol, decimals, self.token_address, chain_id, self.address)

    def _fees(self) -> dict[str, int]:
        cap = self.max_fee_cap
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is not None:
            if base > cap:
                raise SenderError(f"network base fee {_gwei(base)} gwei is above "
                                  f"erc20_sender.max_gas_price_gwei ({_gwei(cap)}); waiting")
            try:
                priority = int(self.w3.eth.max_priority_fee)
            except (Web3RPCError, ValueError):
                priority = DEFAULT_PRIORITY_FEE
            max_fee = min(2 * base + priority, cap)
            return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": min(priority, max_fee)}
        price = int(self.w3.eth.gas_price)
        if price > cap:
            raise SenderError(f"network gas price {_gwei(price)} gwei is above "
                              f"erc20_sender.max_gas_price_gwei ({_gwei(cap)}); waiting")
        return {"gasPrice": price}

    def _knows(self, txid: str) -> bool:
        """Whether the node has our transaction (in its pool or in a block)."""
        try:
            return self.w3.eth.get_transaction(txid) is not None  # type: ignore[arg-type]  # 0x-hex
        except TransactionNotFound:
            return False

    # -- in-flight bookkeeping -------------------------------------------------------------------

    def _reserved(self, mined_nonce: int) -> int:
        """Token units in our payouts signed but not mined yet; prunes mined entries."""
        st = self.storage
        with st.read() as txn:
            entries = list(st.items(txn, "sender", self._inflight_prefix))
        stale = [key for key, e in entries if e["nonce"] < mined_nonce]
        if stale:
            with st.write() as txn:
                for key in stale:
                    st.delete(txn, "sender", key)
        return sum(e["amount"] for _, e in entries if e["nonce"] >= mined_nonce)

    # -- Sender ------------------------------------------------------------------------------

    def balance(self) -> Balance:
        self._ensure_meta()
        with self._rpc("reading the hot wallet balance"):
            tokens = int(self.contract.functions.balanceOf(self.address).call())
            mined = int(self.w3.eth.get_transaction_count(self.address, "latest"))
            eth = int(self.w3.eth.get_balance(self.address))
            fees = self._fees()
        per_gas = fees.get("maxFeePerGas", fees.get("gasPrice", 0))
        need = self._gas_hint * per_gas
        if eth < need:
            raise InsufficientFunds(
                f"not enough ETH for gas: hot wallet {self.address} has {_gwei(eth)} gwei, "
                f"one transfer may need {_gwei(need)} gwei; send ETH to it")
        return Balance(coins=max(0, tokens - self._reserved(mined)))

    def build(self, outputs: list[PayoutOutput], payout_id: str) -> SignedPayout:
        if len(outputs) != 1:
            raise SenderError("the ERC-20 sender pays exactly one output per transaction")
        out = outputs[0]
        if out.amount <= 0:
            raise SenderError(f"payout amount must be > 0, got {out.amount}")
        try:
            to = to_checksum_address(out.address)
        except ValueError:  # e.g. a SKY address bound before the backend was switched
            raise SenderError(f"payout address {out.address!r} is not an ethereum "
                              "address") from None
        self._ensure_meta()
        with self._lock, self._rpc("building the payout"):
            tokens = int(self.contract.functions.balanceOf(self.address).call())
            mined = int(self.w3.eth.get_transaction_count(self.address, "latest"))
            reserved = self._reserved(mined)
            if tokens - reserved < out.amount:
                raise InsufficientFunds(
                    f"hot wallet {self.token} balance is short for a payout of {out.amount} "
                    f"base units (balance {tokens}, in flight {reserved})")
            transfer = self.contract.functions.transfer(to, out.amount)
            try:
                estimate = int(transfer.estimate_gas({"from": self.address}))
            except ContractLogicError as exc:
                raise InsufficientFunds(f"the token transfer would revert ({exc.message or exc});"
                                        f" the hot wallet's {self.token} balance is short") \
                    from None
            if estimate > self.max_gas:
                raise SenderError(f"the transfer needs {estimate} gas, above "
                                  f"erc20_sender.max_gas ({self.max_gas})")
            self._gas_hint = estimate
            gas = min(self.max_gas, estimate * GAS_MARGIN_NUM // GAS_MARGIN_DEN)
            fees = self._fees()
            pending = int(self.w3.eth.get_transaction_count(self.address, "pending"))
            with self.storage.read() as txn:
                stored = self.storage.get(txn, "sender", self._nonce_key)
            nonce = pending if stored is None else max(int(stored), pending)
            tx: dict[str, Any] = {
                "to": self.token_address, "value": 0, "gas": gas, "nonce": nonce,
                "chainId": self._chain_id, "data": self.contract.encode_abi(
                    "transfer", args=[to, out.amount]), **fees,
            }
        signed = self._account.sign_transaction(tx)
        txid = signed.hash.to_0x_hex()
        return SignedPayout(txid=txid, raw=HexBytes(signed.raw_transaction).to_0x_hex(),
                            outputs=tuple(outputs),
                            meta={"nonce": nonce, "from": self.address, "gas": gas,
                                  **{k: str(v) for k, v in fees.items()}})

    def commit_built(self, storage: Any, txn: Any, signed: SignedPayout) -> None:
        nonce = int(signed.meta["nonce"])
        stored = storage.get(txn, "sender", self._nonce_key)
        if stored is not None and nonce < int(stored):
            raise SenderError(f"nonce {nonce} was already used by an earlier payout "
                              f"(next is {stored}); refusing to persist a second one")
        storage.put(txn, "sender", self._nonce_key, nonce + 1)
        storage.put(txn, "sender", f"{self._inflight_prefix}{nonce:016d}",
                    {"nonce": nonce, "txid": signed.txid,
                     "amount": sum(o.amount for o in signed.outputs)})

    def broadcast(self, signed: SignedPayout) -> None:
        nonce = signed.meta.get("nonce")
        with self._rpc(f"sending payout {signed.txid}"):
            try:
                self.w3.eth.send_raw_transaction(HexBytes(signed.raw))
                return
            except Web3RPCError as exc:  # the node's refusal: read below
                message = _rpc_message(exc)
        lowered = message.lower()
        if any(s in lowered for s in _ALREADY_KNOWN):
            return
        if any(s in lowered for s in _NONCE_USED):
            with self._rpc("checking an earlier broadcast"):
                if self._knows(signed.txid):
                    return  # our own transaction is pending or mined
            raise BroadcastRejected(f"{message}: nonce {nonce} was used by another transaction "
                                    f"from {self.address}")
        if "insufficient funds" in lowered:
            raise InsufficientFunds(f"not enough ETH for gas: the node refused payout "
                                    f"{signed.txid} ({message}); send ETH to {self.address}")
        raise SenderError(f"node refused payout {signed.txid}: {message}")

    def tx_state(self, signed: SignedPayout) -> TxState:
        with self._rpc("checking a payout"):
            try:
                receipt = self.w3.eth.get_transaction_receipt(signed.txid)  # type: ignore[arg-type]
            except TransactionNotFound:
                receipt = None
            if receipt is None:
                if self._knows(signed.txid):
                    return TxState.PENDING
                mined = int(self.w3.eth.get_transaction_count(self.address, "latest"))
                if mined > int(signed.meta.get("nonce", mined)):
                    return TxState.CONFLICTED  # another transaction took our nonce
                return TxState.UNKNOWN
            if receipt["status"] != 1:
                return TxState.FAILED
            tip = int(self.w3.eth.block_number)
        confirmations = tip - int(receipt["blockNumber"]) + 1
        if confirmations >= self.confirmations_required:
            return TxState.CONFIRMED
        return TxState.PENDING

    def replace(self, signed: SignedPayout) -> SignedPayout | None:
        """The same transfer and nonce with fees raised >= 12.5 %, or None.

        None when a transaction with this nonce is already mined (the payout is no longer
        stuck) or when the bump would go above ``max_gas_price_gwei``.
        """
        out = signed.outputs[0]
        nonce = int(signed.meta["nonce"])
        self._ensure_meta()
        with self._lock, self._rpc("replacing a stuck payout"):
            if int(self.w3.eth.get_transaction_count(self.address, "latest")) > nonce:
                return None
            current = self._fees()
        if "gasPrice" in signed.meta:
            fees = {"gasPrice": max(_bumped(int(signed.meta["gasPrice"])),
                                    current.get("gasPrice", 0))}
            top = fees["gasPrice"]
        else:
            max_fee = max(_bumped(int(signed.meta["maxFeePerGas"])),
                          current.get("maxFeePerGas", 0))
            priority = max(_bumped(int(signed.meta["maxPriorityFeePerGas"])),
                           current.get("maxPriorityFeePerGas", 0))
            fees = {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": min(priority, max_fee)}
            top = max_fee
        if top > self.max_fee_cap:
            log.warning("notice=WATCH payout %s is stuck and a replacement would pay %s gwei, "
                        "above erc20_sender.max_gas_price_gwei (%s)", signed.txid, _gwei(top),
                        _gwei(self.max_fee_cap))
            return None
        gas = int(signed.meta["gas"])
        tx: dict[str, Any] = {
            "to": self.token_address, "value": 0, "gas": gas, "nonce": nonce,
            "chainId": self._chain_id, "data": self.contract.encode_abi(
                "transfer", args=[to_checksum_address(out.address), out.amount]), **fees,
        }
        new = self._account.sign_transaction(tx)
        return SignedPayout(txid=new.hash.to_0x_hex(),
                            raw=HexBytes(new.raw_transaction).to_0x_hex(), outputs=signed.outputs,
                            meta={"nonce": nonce, "from": self.address, "gas": gas,
                                  "replaces": signed.txid,
                                  **{k: str(v) for k, v in fees.items()}})

    def validate_address(self, address: str) -> str:
        return validate_eth_address(address)
