"""The real-node fixtures (litecoind regtest, anvil) and the project's TestToken on anvil."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException
from web3.exceptions import TransactionNotFound

from tests.support.nodes import AnvilNode, LitecoinNode, NodeError, close_rpc
from tests.support.wait import scaled, wait_until
from tools.contracts import deploy_test_token, load_artifact, send_reverting_transfer

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- litecoind


def test_litecoind_pays_bech32_and_legacy_addresses_with_exact_decimals(
    litecoin_node: LitecoinNode,
) -> None:
    node = litecoin_node
    assert node.rpc.getblockcount() == 101
    assert node.rpc_url.startswith("http://user:pass@127.0.0.1:")
    wallet = node.wallet_rpc
    bech32 = wallet.getnewaddress("", "bech32")
    legacy = wallet.getnewaddress("", "legacy")
    assert bech32.startswith("rltc1")
    txid_a = wallet.sendtoaddress(bech32, Decimal("0.12345678"))
    txid_b = wallet.sendtoaddress(legacy, Decimal("1.00000001"))
    [block_hash] = node.generate(1)

    block = node.rpc.getblock(block_hash, 2)
    assert block["height"] == 102 and block["confirmations"] == 1
    txs = {tx["txid"]: tx for tx in block["tx"]}
    assert {txid_a, txid_b} <= set(txs)
    paid = {
        out["scriptPubKey"]["addresses"][0]: (out["value"], out["n"])
        for txid in (txid_a, txid_b)
        for out in txs[txid]["vout"]
        if out["scriptPubKey"].get("addresses")  # the 0.21 shape: a list
    }
    assert paid[bech32][0] == Decimal("0.12345678")
    assert paid[legacy][0] == Decimal("1.00000001")
    assert all(isinstance(v, Decimal) for v, _ in paid.values())
    # -txindex: any tx is fetchable
    assert node.rpc.getrawtransaction(txid_a, True)["blockhash"] == block_hash


def test_litecoind_restart_keeps_chain_and_invalidateblock_works(tmp_path: Path) -> None:
    node = LitecoinNode(tmp_path / "ltc")
    try:
        node.start()
        hashes = node.generate(5)
        address = node.wallet_rpc.getnewaddress()
        scanner_like = AuthServiceProxy(node.rpc_url, timeout=10)  # keeps its connection open
        assert scanner_like.getblockcount() == 5
        close_rpc(scanner_like)  # else litecoind waits up to -rpcservertimeout to shut down
        started = time.monotonic()
        node.stop()
        assert not node.running
        assert time.monotonic() - started < scaled(10)
        node.stop()  # idempotent

        node.start()  # same datadir: chain and wallet come back
        assert node.rpc.getblockcount() == 5
        assert node.rpc.getbestblockhash() == hashes[-1]
        assert node.wallet_rpc.getaddressinfo(address)["ismine"] is True

        node.rpc.invalidateblock(hashes[3])
        assert node.rpc.getblockcount() == 3
        assert node.rpc.getblock(hashes[4])["confirmations"] == -1
        replacement = node.generate(2, node.wallet_rpc.getnewaddress())  # not the same block
        assert node.rpc.getblockhash(4) == replacement[0] != hashes[3]
        node.rpc.reconsiderblock(hashes[3])  # equal work: the active chain stays
        assert node.rpc.getblockcount() == 5

        node.kill()  # crash, then recover on the same datadir
        node.start()
        assert node.rpc.getblockcount() == 5
    finally:
        node.stop()
    assert not node.running


def test_litecoind_failure_to_start_reports_the_log(tmp_path: Path) -> None:
    node = LitecoinNode(tmp_path / "bad", extra_args=("-nosuchoption=1",))
    try:
        with pytest.raises(NodeError, match="exited with code"):
            node.start(timeout=20)
    finally:
        node.stop()


def test_wallet_rpc_errors_surface_as_jsonrpc_exceptions(
    litecoin_node: LitecoinNode,
) -> None:
    with pytest.raises(JSONRPCException) as info:
        litecoin_node.rpc.getblockhash(10_000)
    assert info.value.error["code"] == -8


# ----------------------------------------------------------------------------- anvil


def test_anvil_token_transfer_logs_and_reverted_transfer(anvil_node: AnvilNode) -> None:
    node = anvil_node
    w3 = node.w3
    owner, alice, bob = node.accounts[:3]
    start = w3.eth.block_number
    token = deploy_test_token(w3, owner, "Test USD", "TUSD", 6, 10**12, mine=node.mine)
    assert w3.eth.block_number == start + 1  # --no-mining: only our mine() made a block
    assert token.functions.decimals().call() == 6
    assert token.functions.balanceOf(owner).call() == 10**12

    tx_hash = token.functions.transfer(alice, 12_345_678).transact({"from": owner})
    with pytest.raises(TransactionNotFound):  # --no-mining: pending until mine()
        w3.eth.get_transaction_receipt(tx_hash)
    node.mine()
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt["status"] == 1
    logs = token.events.Transfer().get_logs(from_block=0, to_block="latest")
    assert [(e["args"]["from"], e["args"]["to"], e["args"]["value"]) for e in logs][-1] == (
        owner, alice, 12_345_678,
    )
    # raw eth_getLogs with 0x-string topics (HexBytes topics silently match nothing)
    topic = w3.keccak(text="Transfer(address,address,uint256)").to_0x_hex()
    raw = w3.eth.get_logs({"address": token.address, "topics": [topic],
                           "fromBlock": receipt["blockNumber"], "toBlock": "latest"})
    assert len(raw) == 1 and raw[0]["transactionHash"] == tx_hash

    reverted = send_reverting_transfer(token, alice, bob, mine=node.mine)
    assert reverted["status"] == 0 and reverted["logs"] == []
    assert token.functions.balanceOf(alice).call() == 12_345_678
    assert token.functions.balanceOf(bob).call() == 0

    token.functions.mint(bob, 5).transact({"from": owner})
    node.mine()
    wait_until(lambda: token.functions.balanceOf(bob).call() == 5, timeout=10,
               message="mint mined")
    failed = token.functions.mint(bob, 5).transact({"from": alice, "gas": 100_000})
    node.mine()
    assert w3.eth.wait_for_transaction_receipt(failed, timeout=10)["status"] == 0
    assert len(load_artifact()["abi"]) >= 10


def test_anvil_mine_snapshot_revert_and_reorg(anvil_node: AnvilNode) -> None:
    node = anvil_node
    w3 = node.w3
    sender, receiver = node.accounts[:2]
    assert node.mine(3) == 3
    snap = node.snapshot()
    value = w3.to_wei(1, "ether")
    tx_hash = w3.eth.send_transaction({"from": sender, "to": receiver, "value": value})
    assert node.mine(2) == 5
    assert w3.eth.get_transaction_receipt(tx_hash)["blockNumber"] == 4
    old_hash = w3.eth.get_block(4)["hash"]

    assert node.revert(snap) is True  # blocks 4 and 5 are gone, and so is the tx
    assert w3.eth.block_number == 3
    node.mine(2)
    assert w3.eth.get_block(4)["hash"] != old_hash

    balance = w3.eth.get_balance(receiver)
    tx_hash = w3.eth.send_transaction({"from": sender, "to": receiver, "value": value})
    node.mine(1)
    mined_in = w3.eth.get_transaction_receipt(tx_hash)["blockNumber"]
    hash_before = w3.eth.get_block(mined_in)["hash"]
    node.reorg(1)  # same height, new block, the tx dropped
    assert w3.eth.block_number == mined_in
    assert w3.eth.get_block(mined_in)["hash"] != hash_before
    assert w3.eth.get_balance(receiver) == balance

    node.rollback(2)
    assert w3.eth.block_number == mined_in - 2


def test_anvil_restart_and_kill(tmp_path: Path) -> None:
    node = AnvilNode(tmp_path / "anvil")
    try:
        node.start()
        port = node.port
        node.mine(4)
        node.kill()
        assert not node.running
        node.start()  # same port, fresh chain (anvil keeps no state)
        assert node.port == port and node.w3.eth.block_number == 0
    finally:
        node.stop()
    assert not node.running
