"""The project's own ERC-20 (``contracts/TestToken.sol``) for tests, demos and benchmarks.

Loads the committed artifact ``contracts/TestToken.json`` (abi + shanghai bytecode, made by
``node contracts/compile.js``; no compiler is needed at test time), deploys it on any web3 8
node (anvil, eth-tester, ganache), and makes a *reverted* token transfer on purpose: the
scanner must not credit a mined transaction whose status is 0.

``mine``: nodes without automine (``AnvilNode`` runs ``--no-mining``) need a block after each
send; pass ``mine=node.mine`` and it is called once after the transaction is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "contracts"


@cache
def _read_artifact(name: str) -> str:
    path = CONTRACTS_DIR / f"{name}.json"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} missing: run `node contracts/compile.js` (needs `make tools`)"
        ) from None


def load_artifact(name: str = "TestToken") -> dict[str, Any]:
    """``{"abi": [...], "bytecode": "0x...", ...}`` of a compiled contract (a fresh copy)."""
    artifact = json.loads(_read_artifact(name))
    if not artifact.get("abi") or not str(artifact.get("bytecode", "")).startswith("0x"):
        raise ValueError(f"contracts/{name}.json has no abi/bytecode")
    return artifact


def wait_receipt(
    w3: Any, tx_hash: Any, mine: Callable[[], Any] | None = None, timeout: float = 30.0
) -> Any:
    """Mine (if given) and wait for the receipt of ``tx_hash``."""
    if mine is not None:
        mine()
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.05)


def deploy_test_token(
    w3: Any,
    deployer: str,
    name: str = "Test USD",
    symbol: str = "TUSD",
    decimals: int = 6,
    supply: int = 10**12,
    mine: Callable[[], Any] | None = None,
) -> Any:
    """Deploy TestToken from ``deployer`` (an unlocked account; it gets the whole ``supply``,
    in base units, and may ``mint``); returns the web3 ``Contract`` at its address."""
    if not 0 <= decimals <= 255 or supply < 0:
        raise ValueError("decimals must be 0..255 and supply >= 0")
    artifact = load_artifact("TestToken")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx_hash = factory.constructor(name, symbol, decimals, supply).transact({"from": deployer})
    receipt = wait_receipt(w3, tx_hash, mine)
    if receipt["status"] != 1:
        raise RuntimeError(f"TestToken deployment reverted: {receipt}")
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def send_reverting_transfer(
    token: Any,
    sender: str,
    to: str,
    amount: int | None = None,
    gas: int = 100_000,
    mine: Callable[[], Any] | None = None,
) -> Any:
    """Send ``transfer(to, amount)`` that must revert (default: ``sender``'s balance + 1) with
    an explicit gas limit, so no gas estimation refuses it and it is mined with status 0.
    Returns the receipt (``status == 0``, no ``Transfer`` log)."""
    if amount is None:
        amount = token.functions.balanceOf(sender).call() + 1
    tx_hash = token.functions.transfer(to, amount).transact({"from": sender, "gas": gas})
    receipt = wait_receipt(token.w3, tx_hash, mine)
    if receipt["status"] != 0:
        raise RuntimeError("the transfer was meant to revert but succeeded")
    return receipt
