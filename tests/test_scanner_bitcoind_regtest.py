"""The bitcoind-family scanner against a real litecoind in regtest, inside a running teller.

Each scenario starts litecoind (fixture), a teller whose LTC deposits are scanned from that
node (BTC stays on the dummy scanner: mixed mode), binds over HTTP, drives the node with the
real wallet (sendtoaddress, sendmany, generate, invalidateblock, generateblock, stop/start) and
asserts what /api/status, the admin /api/deposits and /api/health show.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import LitecoinNode
from tests.support.service import TellerHarness, assert_json, sky_address, start_teller
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)


def ltc_config(node: LitecoinNode, confirmations: int, *, send: bool = False,
               initial_height: int = 100) -> str:
    return f"""
ltc_addresses = "ltc_addresses.txt"
[sky_exchanger]
sky_ltc_exchange_rate = "50"
send_enabled = {str(send).lower()}
[ltc_scanner]
enabled = true
network = "regtest"
scan_period = "200ms"
confirmations_required = {confirmations}
initial_scan_height = {initial_height}
[ltc_rpc]
server = "127.0.0.1:{node.rpc_port}"
user = "{node.user}"
pass = "{node.password}"
[dummy]
scanner_coins = ["BTC"]
"""


def start_ltc_teller(tmp_path: Path, node: LitecoinNode, confirmations: int,
                     **kw: Any) -> TellerHarness:
    """A teller scanning ``node``; its LTC pool holds fresh wallet addresses of every type."""
    wallet = node.wallet_rpc
    addresses = [wallet.getnewaddress("", kind) for kind in
                 ("bech32", "legacy", "p2sh-segwit", "bech32", "legacy", "bech32")]
    (tmp_path / "ltc_addresses.txt").write_text("".join(f"{a}\n" for a in addresses))
    return start_teller(tmp_path, ltc_config(node, confirmations, **kw))


@contextlib.contextmanager
def ltc_teller(tmp_path: Path, node: LitecoinNode, confirmations: int,
               buyer_no: int) -> Iterator[tuple[TellerHarness, str, str]]:
    """``start_ltc_teller`` (closed on exit), buyer ``sky_address(buyer_no)`` and the LTC
    deposit address bound to it."""
    t = start_ltc_teller(tmp_path, node, confirmations)
    try:
        buyer = sky_address(buyer_no)
        yield t, buyer, t.bind(buyer, "LTC")
    finally:
        t.close()


def ltc_health(t: TellerHarness) -> dict[str, Any]:
    return assert_json(t.get(t.public, "/api/health"))["scanners"]["LTC"]


def wait_scanned(t: TellerHarness, node: LitecoinNode, confirmations: int) -> None:
    """Wait until the scanner has looked at every block with enough confirmations."""
    tip = node.rpc.getblockcount()
    wait_until(lambda: ltc_health(t)["cursor_height"] == tip - confirmations + 1, 10,
               message=f"LTC cursor at {tip - confirmations + 1}")


def vout_index(node: LitecoinNode, txid: str, address: str) -> int:
    tx = node.rpc.getrawtransaction(txid, True)
    return next(out["n"] for out in tx["vout"]
                if out["scriptPubKey"].get("addresses") == [address])


def test_deposit_is_credited_only_after_n_confirmations(
        tmp_path: Path, litecoin_node: LitecoinNode) -> None:
    node = litecoin_node
    with ltc_teller(tmp_path, node, confirmations=3, buyer_no=1) as (t, buyer, address):
        assert address.startswith("rltc1")
        t.wait_status(buyer, ["waiting_deposit"])
        log.info("send 0.5 LTC and mine the block holding it (1 confirmation)")
        txid = node.wallet_rpc.sendtoaddress(address, Decimal("0.5"))
        [block_hash] = node.generate(1)
        height = node.rpc.getblock(block_hash)["height"]
        wait_until(lambda: ltc_health(t)["tip"] == height, 10, message="scanner saw the tip")
        assert t.statuses(buyer) == ["waiting_deposit"]
        log.info("second confirmation: still waiting_deposit")
        node.generate(1)
        wait_scanned(t, node, 3)
        assert t.statuses(buyer) == ["waiting_deposit"]
        assert t.deposits() == []
        log.info("third confirmation: the deposit is credited (send disabled: waiting_send)")
        node.generate(1)
        t.wait_status(buyer, ["waiting_send"])
        [dep] = t.deposits()
        n = vout_index(node, txid, address)
        assert dep["deposit_id"] == f"{txid}:{n}"
        assert dep["deposit_value"] == 50_000_000
        assert dep["deposit"]["height"] == height
        assert dep["block_hash"] == block_hash
        assert dep["conversion_rate"] == "50"
        health = ltc_health(t)
        assert health["node_reachable"] is True
        assert health["confirmations_required"] == 3
        assert health["lag_blocks"] == 2 and health["tip"] == height + 2
        config = assert_json(t.get(t.public, "/api/config"))
        assert config["deposits"]["ltc"]["confirmations_required"] == 3
        assert config["deposits"]["ltc"]["enabled"] is True


def test_two_outputs_of_one_transaction_are_two_deposits_with_their_index(
        tmp_path: Path, litecoin_node: LitecoinNode) -> None:
    node = litecoin_node
    t = start_ltc_teller(tmp_path, node, confirmations=1)
    try:
        buyer = sky_address(2)
        first, second = t.bind(buyer, "LTC"), t.bind(buyer, "LTC")
        assert first.startswith("rltc1") and second[0] in "mn"  # bech32 and P2PKH
        log.info("one sendmany pays both deposit addresses")
        txid = node.wallet_rpc.sendmany("", {first: Decimal("0.1"), second: Decimal("0.2")})
        node.generate(1)
        t.wait_status(buyer, ["waiting_send", "waiting_send"])
        found = {d["deposit_address"]: d for d in t.deposits()}
        assert set(found) == {first, second}
        for address, sats in ((first, 10_000_000), (second, 20_000_000)):
            n = vout_index(node, txid, address)
            assert found[address]["deposit_id"] == f"{txid}:{n}"
            assert found[address]["deposit"]["n"] == n
            assert found[address]["deposit_value"] == sats
        assert found[first]["deposit"]["n"] != found[second]["deposit"]["n"]
    finally:
        t.close()


def test_restart_resumes_from_the_cursor_without_rescan_or_duplicate(
        tmp_path: Path, litecoin_node: LitecoinNode) -> None:
    node = litecoin_node
    with ltc_teller(tmp_path, node, confirmations=1, buyer_no=3) as (t, buyer, address):
        node.wallet_rpc.sendtoaddress(address, Decimal("1"))
        node.generate(1)
        t.wait_status(buyer, ["waiting_send"])
        before = t.deposits()
        log.info("stop the teller; two more deposits and 3 blocks happen while it is down")
        t.stop()
        node.wallet_rpc.sendtoaddress(address, Decimal("2"))
        node.generate(1)
        node.wallet_rpc.sendtoaddress(address, Decimal("3"))
        node.generate(2)
        log.info("restart with initial_scan_height = 0: the persisted cursor wins")
        t.restart(ltc_config(node, 1, initial_height=0))
        t.wait_status(buyer, ["waiting_send"] * 3)
        wait_scanned(t, node, 1)
        scanner = t.service.scanners["LTC"]
        assert scanner.blocks_scanned == 3, "only the blocks mined while down are scanned"
        after = t.deposits()
        assert len(after) == 3
        assert after[0] == before[0], "the first deposit is untouched (no duplicate, same seq)"
        assert sorted(d["deposit_value"] for d in after) == [100_000_000, 200_000_000,
                                                             300_000_000]


def test_reorg_before_confirmation_never_credits(
        tmp_path: Path, litecoin_node: LitecoinNode) -> None:
    node = litecoin_node
    with ltc_teller(tmp_path, node, confirmations=3, buyer_no=4) as (t, buyer, address):
        node.wallet_rpc.sendtoaddress(address, Decimal("0.7"))
        [deposit_block] = node.generate(1)
        node.generate(1)
        wait_scanned(t, node, 3)
        log.info("invalidateblock under the 2-confirmation deposit; mine 4 empty blocks")
        node.rpc.invalidateblock(deposit_block)
        miner = node.wallet_rpc.getnewaddress()
        for _ in range(4):
            node.rpc.generateblock(miner, [])
        wait_scanned(t, node, 3)
        deposit_height = node.rpc.getblockheader(deposit_block)["height"]
        assert ltc_health(t)["cursor_height"] >= deposit_height
        assert t.statuses(buyer) == ["waiting_deposit"]
        assert t.deposits() == []


def test_invalidateblock_under_an_unpaid_deposit_cancels_it_and_remining_revives_it(
        tmp_path: Path, litecoin_node: LitecoinNode) -> None:
    node = litecoin_node
    with ltc_teller(tmp_path, node, confirmations=1, buyer_no=5) as (t, buyer, address):
        txid = node.wallet_rpc.sendtoaddress(address, Decimal("0.25"))
        [block] = node.generate(1)
        t.wait_status(buyer, ["waiting_send"])
        log.info("invalidateblock: the credited, unpaid deposit is withdrawn")
        node.rpc.invalidateblock(block)
        t.wait_status(buyer, ["cancelled"])
        [cancelled] = t.deposits("cancelled")
        assert cancelled["error_kind"] == "reorged"
        assert "chain reorganisation" in cancelled["error"]
        log.info("an empty block on the new branch: still cancelled")
        node.rpc.generateblock(node.wallet_rpc.getnewaddress(), [])
        wait_scanned(t, node, 1)
        assert t.statuses(buyer) == ["cancelled"]
        log.info("the same tx mined again: exactly one deposit, back to waiting_send")
        [new_block] = node.generate(1)
        assert txid in node.rpc.getblock(new_block)["tx"]
        t.wait_status(buyer, ["waiting_send"])
        [dep] = t.deposits()
        assert dep["block_hash"] == new_block
        assert dep["deposit_id"].startswith(txid + ":")


def test_node_stopped_and_restarted_scanner_recovers(
        tmp_path: Path, litecoin_node: LitecoinNode) -> None:
    node = litecoin_node
    with ltc_teller(tmp_path, node, confirmations=1, buyer_no=6) as (t, buyer, address):
        wait_until(lambda: ltc_health(t)["node_reachable"], 10, message="node reachable")
        cursor = ltc_health(t)["cursor_height"]
        log.info("stop litecoind: health shows it, the cursor stays")
        node.stop()
        wait_until(lambda: not ltc_health(t)["node_reachable"], 10, message="unreachable")
        health = assert_json(t.get(t.public, "/api/health"))
        assert any(w.startswith("LTC node unreachable") for w in health["warnings"])
        assert health["scanners"]["LTC"]["cursor_height"] == cursor
        assert health["scanners"]["LTC"]["last_error"]
        log.info("start litecoind again; a deposit is then credited")
        node.start()
        node.wallet_rpc.sendtoaddress(address, Decimal("0.3"))
        node.generate(1)
        t.wait_status(buyer, ["waiting_send"], timeout=30)
        health = ltc_health(t)
        assert health["node_reachable"] is True and health["last_error"] == ""
