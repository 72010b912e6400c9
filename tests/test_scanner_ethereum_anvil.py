"""The Ethereum scanner against anvil (a real EVM over JSON-RPC), inside a running teller.

anvil runs with --no-mining: every block is mined by the test, so confirmations are exact.
ETH value transfers and the project's own ERC-20 (contracts/TestToken.json) are deposited;
a reverted token transfer and a Transfer from a token that is not configured are ignored;
reorgs come from anvil_reorg and from evm_snapshot/evm_revert.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import AnvilNode
from tests.support.service import TellerHarness, assert_json, sky_address, start_teller
from tests.support.wait import wait_until
from tools.contracts import deploy_test_token, send_reverting_transfer

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)


@dataclass
class EthSetup:
    node: AnvilNode
    teller: TellerHarness
    token: Any  # web3 Contract of the configured token (TUSD)
    accounts: list[str]

    def health(self) -> dict[str, Any]:
        return assert_json(self.teller.get(self.teller.public, "/api/health"))["scanners"]["ETH"]

    def mine_and_wait(self, n: int = 1) -> int:
        """Mine ``n`` blocks and wait until the scanner has seen the new tip."""
        tip = self.node.mine(n)
        wait_until(lambda: self.health()["tip"] == tip and self.health()["lag_blocks"] ==
                   self.health()["confirmations_required"] - 1, 10, message=f"ETH tip {tip}")
        return tip


def start_eth(tmp_path: Path, node: AnvilNode, confirmations: int) -> EthSetup:
    w3 = node.w3
    accounts = node.accounts
    token = deploy_test_token(w3, accounts[0], mine=lambda: node.mine(1))
    t = start_teller(tmp_path, f"""
[sky_exchanger]
send_enabled = false
[eth_scanner]
enabled = true
scan_period = "200ms"
confirmations_required = {confirmations}
initial_scan_height = 0
[eth_rpc]
url = "{node.url}"
[[eth_tokens]]
symbol = "TUSD"
address = "{token.address}"
decimals = 6
rate = "2"
[dummy]
scanner_coins = ["BTC"]
""", eth_addresses=accounts[5:10])
    return EthSetup(node, t, token, accounts)


@pytest.fixture
def eth(tmp_path: Path, anvil_node: AnvilNode) -> Iterator[EthSetup]:
    setup = start_eth(tmp_path, anvil_node, confirmations=2)
    try:
        yield setup
    finally:
        setup.teller.close()


def test_eth_and_token_deposits_after_n_confirmations_ignoring_failures(eth: EthSetup) -> None:
    t, w3, acc = eth.teller, eth.node.w3, eth.accounts
    buyer = sky_address(10)
    eth_addr = t.bind(buyer, "ETH")
    token_addr = t.bind(buyer, "TUSD")
    assert eth_addr == acc[5].lower() and token_addr == acc[6].lower()
    other = deploy_test_token(w3, acc[1], symbol="OTHER", mine=lambda: eth.node.mine(1))
    log.info("ETH transfer, TUSD transfer, a reverted TUSD transfer, an OTHER-token transfer")
    eth_tx = w3.eth.send_transaction({"from": acc[1], "to": acc[5],
                                      "value": 1_500_000_000_000_000_001})
    token_tx = eth.token.functions.transfer(acc[6], 12_345_678).transact({"from": acc[0]})
    other.functions.transfer(acc[6], 99).transact({"from": acc[1]})
    eth.mine_and_wait(1)
    receipt = w3.eth.get_transaction_receipt(token_tx)
    assert t.statuses(buyer) == ["waiting_deposit", "waiting_deposit"]
    send_reverting_transfer(eth.token, acc[2], acc[6], mine=lambda: eth.node.mine(1))
    log.info("the reverting transfer's block gives the first block its 2nd confirmation")
    t.wait_status(buyer, ["waiting_send", "waiting_send"])
    eth.mine_and_wait(2)
    deposits = {d["coin_type"]: d for d in t.deposits()}
    assert set(deposits) == {"ETH", "TUSD"}, "reverted and foreign-token transfers ignored"
    assert deposits["ETH"]["deposit_id"] == f"{eth_tx.to_0x_hex()}:0"
    assert deposits["ETH"]["deposit_value"] == 1_500_000_000_000_000_001
    assert deposits["ETH"]["deposit_address"] == eth_addr
    log_index = next(lg["logIndex"] for lg in receipt["logs"])
    assert deposits["TUSD"]["deposit_id"] == f"{token_tx.to_0x_hex()}:{log_index}"
    assert deposits["TUSD"]["deposit_value"] == 12_345_678
    assert deposits["TUSD"]["conversion_rate"] == "2"
    assert deposits["TUSD"]["block_hash"] == receipt["blockHash"].to_0x_hex()
    config = assert_json(t.get(t.public, "/api/config"))
    assert config["deposits"]["tusd"]["confirmations_required"] == 2
    assert config["deposits"]["tusd"]["enabled"] is True
    assert eth.health()["confirmations_required"] == 2


def test_anvil_reorg_after_crediting_cancels_unpaid_deposits(eth: EthSetup) -> None:
    t, w3, acc = eth.teller, eth.node.w3, eth.accounts
    buyer = sky_address(11)
    t.bind(buyer, "ETH")
    token_buyer = sky_address(12)
    t.bind(token_buyer, "TUSD")
    w3.eth.send_transaction({"from": acc[1], "to": acc[5], "value": 10**18})
    eth.token.functions.transfer(acc[6], 5).transact({"from": acc[0]})
    eth.mine_and_wait(2)
    t.wait_status(buyer, ["waiting_send"])
    t.wait_status(token_buyer, ["waiting_send"])
    log.info("anvil_reorg replaces the 2 top blocks with empty ones")
    eth.node.reorg(2)
    t.wait_status(buyer, ["cancelled"])
    t.wait_status(token_buyer, ["cancelled"])
    assert {d["coin_type"] for d in t.deposits("cancelled")} == {"ETH", "TUSD"}


def test_snapshot_revert_drops_a_credited_transfer_and_remining_credits_it_once(
        eth: EthSetup) -> None:
    t, w3, acc = eth.teller, eth.node.w3, eth.accounts
    buyer = sky_address(13)
    t.bind(buyer, "ETH")
    eth.mine_and_wait(1)
    snapshot = eth.node.snapshot()
    tx = w3.eth.send_transaction({"from": acc[2], "to": acc[5], "value": 7})
    raw = eth.node.request("eth_getRawTransactionByHash", [tx.to_0x_hex()])
    eth.mine_and_wait(2)
    t.wait_status(buyer, ["waiting_send"])
    log.info("evm_revert to before the transfer; the new branch outgrows the old one")
    assert eth.node.revert(snapshot)
    eth.mine_and_wait(3)
    t.wait_status(buyer, ["cancelled"])
    log.info("the same signed transfer mined on the new branch: revived, one record")
    again = eth.node.request("eth_sendRawTransaction", [raw])
    assert again == tx.to_0x_hex()
    eth.mine_and_wait(2)
    t.wait_status(buyer, ["waiting_send"])
    [dep] = t.deposits()
    assert dep["deposit_id"] == f"{again}:0"
