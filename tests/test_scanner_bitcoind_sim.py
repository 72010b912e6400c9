"""The bitcoind scanner against the simulator (tools/btcsim.py) through python-bitcoinrpc.

The simulator covers what litecoind cannot show: Bitcoin Core >= 22 block shapes, bare
multisig, double spends, deep reorgs, reorgs while the scanner is down, and node outages of
every kind. Scanners run on a real LMDB store; the last scenario runs a whole teller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bip_utils import SegwitBech32Encoder

from addrs.pool import AddressPool
from common.storage import Storage
from ledger.intake import DepositIntake
from ledger.store import DepositStore
from scanner.base import ScanSettings
from scanner.bitcoind import BitcoindScanner, RPCSettings
from scanner.cursor import CursorStore
from scanner.errors import NodeUnavailable, ReorgTooDeep
from tests.support.process import TellerProcess
from tests.support.service import assert_json, btcsim_scanner, sky_address, start_teller
from tests.support.wait import wait_until
from tools.btcsim import SimulatorHandle, multisig_output, output, start_simulator

log = logging.getLogger(__name__)


def regtest_address(i: int) -> str:
    return SegwitBech32Encoder.Encode("bcrt", 0, bytes([i]) * 20)


@dataclass
class Env:
    storage: Storage
    pool: AddressPool
    store: DepositStore

    def bind(self, count: int) -> list[str]:
        self.pool.add("BTC", [regtest_address(i) for i in range(1, count + 1)])
        return [self.store.bind("BTC", sky_address(i))["address"] for i in range(count)]

    def deposits(self) -> list[dict]:
        return self.store.all_deposits()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    storage = Storage(tmp_path / "data")
    pool = AddressPool(storage)
    yield Env(storage, pool, DepositStore(storage, pool, rate_for=lambda _coin: "500"))
    storage.close()


def scanner(env: Env, sim: SimulatorHandle, confirmations: int = 1,
            **settings: float) -> BitcoindScanner:
    rpc = RPCSettings(f"127.0.0.1:{sim.port}", sim.user, sim.password, timeout=5)
    return BitcoindScanner("BTC", "regtest", rpc, env.storage, DepositIntake(env.store),
                           ScanSettings(confirmations_required=confirmations, **settings))


def statuses(env: Env) -> list[tuple[str, str]]:
    return [(d["deposit_id"], d["status"]) for d in env.deposits()]


@pytest.mark.parametrize("core_version", [22, 21])
def test_only_single_address_outputs_to_watched_addresses_count(
        env: Env, core_version: int) -> None:
    sim = start_simulator(core_version=core_version)
    try:
        a, b = env.bind(2)
        log.info("core %d: one tx pays a, b, a stranger, a multisig with a, and OP_RETURN",
                 core_version)
        mined = sim.control.mine([
            [output("bcrt1qstranger", 5), output(a, 12_345_678_901), output(b, 1),
             multisig_output([a, b], 777), {"nulldata": "68656c6c6f", "value": 0}],
            [multisig_output([a], 999, required=1)],  # 1-of-1 bare multisig lists one address
        ])
        tx = mined["blocks"][0]["txs"][0]
        block_hash = mined["blocks"][0]["hash"]
        assert scanner(env, sim).scan_once() == 2  # genesis + the block
        found = {(d["deposit_address"], d["deposit"]["n"], d["deposit_value"], d["block_hash"])
                 for d in env.deposits()}
        assert found == {(a, 1, 12_345_678_901, block_hash), (b, 2, 1, block_hash)}
        assert {d["deposit_id"] for d in env.deposits()} == {f"{tx['txid']}:1",
                                                               f"{tx['txid']}:2"}
    finally:
        sim.stop()


def test_catching_up_in_batches_works_against_core_28(env: Env) -> None:
    """Core >= 28 answers python-bitcoinrpc's JSON-RPC 2.0 batch elements without "error"."""
    with start_simulator(core_version=28) as sim:
        [a] = env.bind(1)
        sim.control.mine([[output(a, 1000)]])
        sim.control.mine([[output(a, 2000)]])
        sim.control.generate(2)
        assert scanner(env, sim).scan_once() == 5
        assert sorted(d["deposit_value"] for d in env.deposits()) == [1000, 2000]


def test_upper_case_bech32_from_the_node_matches_the_stored_form(
        env: Env, btcsim: SimulatorHandle) -> None:
    [a] = env.bind(1)
    btcsim.control.mine([[output(a.upper(), 1000)]])
    scanner(env, btcsim).scan_once()
    [dep] = env.deposits()
    assert dep["deposit_address"] == a


def test_shallow_reorg_before_n_confirmations_credits_nothing(
        env: Env, btcsim: SimulatorHandle) -> None:
    [a] = env.bind(1)
    s = scanner(env, btcsim, confirmations=3)
    btcsim.control.mine([[output(a, 5000)]])
    btcsim.control.generate(1)
    s.scan_once()
    assert env.deposits() == []
    log.info("reorg of depth 2 (< N) drops the tx; the new branch is longer")
    btcsim.control.reorg(2, new_blocks=4)
    s.scan_once()
    btcsim.control.generate(3)
    s.scan_once()
    assert env.deposits() == []
    assert s.health()["cursor_height"] == btcsim.control.state()["height"] - 2


def test_same_tx_remined_on_the_winning_branch_is_credited_once(
        env: Env, btcsim: SimulatorHandle) -> None:
    [a] = env.bind(1)
    s = scanner(env, btcsim, confirmations=1)
    mined = btcsim.control.mine([[output(a, 5000)]])
    s.scan_once()
    [before] = env.deposits()
    assert before["deposit"]["height"] == mined["height"]
    log.info("reorg depth 1: an empty block, then the same tx one block higher")
    reorg = btcsim.control.reorg(1, blocks=[{"txs": []}, {"reinclude": True}])
    s.scan_once()
    [after] = env.deposits()
    assert after["deposit_id"] == before["deposit_id"] and after["seq"] == before["seq"]
    assert after["status"] == "waiting_decide"
    assert after["deposit"]["height"] == mined["height"] + 1
    assert after["block_hash"] == reorg["blocks"][1]["hash"]


def test_double_spend_winning_the_reorg_cancels_the_deposit(
        env: Env, btcsim: SimulatorHandle) -> None:
    [a] = env.bind(1)
    s = scanner(env, btcsim, confirmations=1)
    coin = {"txid": "ab" * 32, "vout": 0}
    btcsim.control.mine([{"outputs": [output(a, 7000)], "vin": [coin]}])
    s.scan_once()
    assert [st for _, st in statuses(env)] == ["waiting_decide"]
    log.info("the same coin spent elsewhere wins the reorg")
    btcsim.control.reorg(1, blocks=[{"txs": [{"outputs": [output("bcrt1qthief", 6000)],
                                              "vin": [coin]}]}], new_blocks=2)
    s.scan_once()
    [dep] = env.deposits()
    assert dep["status"] == "cancelled" and dep["error_kind"] == "reorged"


def test_restart_gap_credits_every_deposit_exactly_once(
        env: Env, btcsim: SimulatorHandle) -> None:
    addresses = env.bind(12)
    btcsim.control.generate(1)
    first = scanner(env, btcsim, confirmations=2)
    assert first.scan_once() == 1  # block 0
    cursor = first.cursors.load()
    log.info("scanner gone; 5 blocks with 120 deposits to 12 addresses are mined")
    for block in range(5):
        btcsim.control.mine([[output(addresses[(block * 24 + i) % 12], 1000 + block * 24 + i)
                              for i in range(24)]])
    btcsim.control.generate(1)
    second = scanner(env, btcsim, confirmations=2)
    assert second.scan_once() == 6  # block 1 and the 5 deposit blocks
    deposits = env.deposits()
    assert len(deposits) == 120
    assert sorted(d["deposit_value"] for d in deposits) == list(range(1000, 1120))
    assert len({d["deposit_address"] for d in deposits}) == 12
    log.info("rescan the same range again: the credit count is unchanged")
    second.cursors.rewind(cursor)
    third = scanner(env, btcsim, confirmations=2)
    assert third.scan_once() == 6
    assert env.deposits() == deposits


def test_deep_reorg_while_down_cancels_orphaned_deposits_and_credits_the_new_branch(
        env: Env, btcsim: SimulatorHandle) -> None:
    addresses = env.bind(3)
    s = scanner(env, btcsim, confirmations=2)
    for i in range(10):
        btcsim.control.mine([[output(addresses[i % 3], 100 + i)]])
    btcsim.control.generate(1)
    s.scan_once()
    assert len(env.deposits()) == 10
    log.info("while the scanner is down: reorg 11 blocks, one new deposit on the new branch")
    btcsim.control.reorg(11, blocks=[{"txs": [[output(addresses[0], 4242)]]}], new_blocks=12)
    assert scanner(env, btcsim, confirmations=2).scan_once() == 11
    by_status: dict[str, list[int]] = {}
    for d in env.deposits():
        by_status.setdefault(d["status"], []).append(d["deposit_value"])
    assert sorted(by_status["cancelled"]) == list(range(100, 110))
    assert by_status["waiting_decide"] == [4242]


def test_reorg_deeper_than_the_kept_hashes_stops_the_scanner_and_changes_nothing(
        env: Env, btcsim: SimulatorHandle) -> None:
    [a] = env.bind(1)
    btcsim.control.generate(5)
    s = scanner(env, btcsim, confirmations=1, keep_hashes=3)
    s.scan_once()
    btcsim.control.mine([[output(a, 100)]])
    s.scan_once()
    cursor = s.cursors.load()
    btcsim.control.reorg(5, new_blocks=6)
    with pytest.raises(ReorgTooDeep):
        s.scan_once()
    assert s.cursors.load() == cursor
    assert [st for _, st in statuses(env)] == ["waiting_decide"]


def test_node_outages_back_off_keep_the_cursor_and_recover(
        env: Env, btcsim: SimulatorHandle) -> None:
    [a] = env.bind(1)
    s = scanner(env, btcsim, confirmations=1, scan_period=0.05, max_backoff=0.3)
    s.start()
    try:
        # last_scan_at is set when a poll ends; node_reachable already when it begins
        wait_until(lambda: s.health()["last_scan_at"], 5, message="first poll")
        cursor = s.health()["cursor_height"]
        for mode, expected in (("error", "node is starting"), ("http503", "503"),
                               ("refuse", "Connection")):
            log.info("outage %s", mode)
            if mode == "refuse":
                btcsim.pause()
            else:
                btcsim.control.set_outage(mode)
            health = wait_until(lambda: (h := s.health())["node_reachable"] is False and h,
                                5, message=f"{mode} seen")
            assert expected in health["last_error"], health
            assert health["cursor_height"] == cursor
            if mode == "refuse":
                btcsim.resume()
            else:
                btcsim.control.clear_outage()
            wait_until(lambda: s.health()["node_reachable"], 5, message=f"{mode} recovered")
        btcsim.control.mine([[output(a, 1)]])
        wait_until(lambda: env.deposits(), 5, message="deposit after the outages")
    finally:
        s.stop()
    with pytest.raises(NodeUnavailable):
        btcsim.pause()
        s.scan_once()


@pytest.mark.slow
def test_reorg_deeper_than_n_after_payout_holds_the_deposit_for_review(
        tmp_path: Path, btcsim: SimulatorHandle,
        caplog: pytest.LogCaptureFixture) -> None:
    address = regtest_address(7)
    t = start_teller(tmp_path, btcsim_scanner(btcsim, confirmations=2),
                     btc_addresses=[address])
    try:
        buyer = sky_address(7)
        assert t.bind(buyer) == address
        btcsim.control.generate(3)
        btcsim.control.mine([[output(address, 200_000)]])
        btcsim.control.generate(1)
        log.info("credited at 2 confirmations, paid, payout confirmed")
        t.wait_status(buyer, ["waiting_confirm"])
        [payout] = t.broadcasts()
        t.confirm(payout["txid"])
        t.wait_status(buyer, ["done"])
        log.info("reorg of 3 blocks (deeper than N = 2) drops the paid deposit")
        with caplog.at_level(logging.ERROR, logger="scanner.base"):
            btcsim.control.reorg(3, new_blocks=4)
            t.wait_status(buyer, ["needs_review"])
        [held] = t.deposits("needs_review")
        assert held["error_kind"] == "reorged_after_payout"
        assert "chain reorganisation" in held["review_reason"]
        assert any("notice=WATCH" in r.getMessage() and held["deposit_id"] in r.getMessage()
                   for r in caplog.records)
        health = assert_json(t.get(t.public, "/api/health"))
        assert "1 deposit(s) need operator review" in health["warnings"]
        assert health["scanners"]["BTC"]["node_reachable"] is True
    finally:
        t.close()


@pytest.mark.slow
def test_crash_after_recording_then_reorg_while_down_orphans_the_recorded_deposit(
        tmp_path: Path, btcsim: SimulatorHandle) -> None:
    """SIGKILL between recording a block's deposits and moving the cursor onto it; the block
    leaves the chain while the teller is down. The restarted scanner must still cancel the
    deposit: nothing else remembers which block it came from."""
    address = regtest_address(9)
    proc = TellerProcess(tmp_path, [address], config={
        "dummy": {"scanner_coins": ["ETH"]},
        "btc_rpc": {"server": f"127.0.0.1:{btcsim.port}", "user": btcsim.user,
                    "pass": btcsim.password},
        "btc_scanner": {"network": "regtest", "scan_period": "100ms",
                        "confirmations_required": 1, "initial_scan_height": 0},
        "sky_exchanger": {"send_enabled": False}})
    try:
        btcsim.control.generate(1)  # blocks 0 and 1: two blocks without deposits
        proc.start(failpoints="scanner_after_record")
        assert proc.bind(sky_address(9)) == address
        coin = {"txid": "cd" * 32, "vout": 0}
        btcsim.control.mine([{"outputs": [output(address, 9000)], "vin": [coin]}])
        assert proc.wait_exit() == -9, proc.log_tail()
        assert (proc.dir / "failpoint-scanner_after_record").exists()
        with Storage(proc.dir) as storage:
            [recorded] = DepositStore(storage, AddressPool(storage)).all_deposits()
            assert CursorStore(storage, "BTC").load().height == 1, "cursor not moved yet"
            assert recorded["status"] in ("waiting_decide", "waiting_send")  # unpaid
        log.info("while down: the coin is spent elsewhere and that branch wins")
        btcsim.control.reorg(1, blocks=[{"txs": [{"outputs": [output("bcrt1qthief", 8000)],
                                                  "vin": [coin]}]}], new_blocks=2)
        proc.start()
        tip = btcsim.control.state()["height"]
        wait_until(lambda: proc.session.get(proc.url("public") + "/api/health", timeout=5)
                   .json()["scanners"]["BTC"]["cursor_height"] == tip, 20,
                   message="scanner at the tip")
        [dep] = proc.deposits()
        assert dep["deposit_id"] == recorded["deposit_id"]
        assert dep["status"] == "cancelled" and dep["error_kind"] == "reorged", dep
    finally:
        proc.kill()
