"""Durability of the exchange core: replay equals live bit for bit, snapshots, durable
idempotency keys, refusal to start on a damaged log, and the `teller core` commands."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from exchangecore import open_core
from matchengine.engine import Engine
from matchengine.errors import CoreError
from matchengine.service import CoreService, RecoveryError, recover
from matchengine.store import Store, u64
from teller.cli_core import core_group
from tests.support.core import ROOT, core_config


def random_calls(seed: int, count: int) -> list[tuple[str, list]]:
    """A deterministic mix of deposits, crossing limit orders, market orders and cancels."""
    rng = random.Random(seed)
    calls: list[tuple[str, list]] = []
    for user in range(1, 11):
        calls.append(("balance.update", [user, "BTC", "deposit", user, "10", {}]))
        calls.append(("balance.update", [user, "USDT", "deposit", user, "100000", {}]))
        calls.append(("balance.update", [user, "SKY", "deposit", user, "5000", {}]))
    for _ in range(count):
        user = rng.randint(1, 10)
        roll = rng.random()
        if roll < 0.6:
            market, price = rng.choice([("BTCUSDT", 8000), ("SKYBTC", 0.0002)])
            price = f"{price * rng.uniform(0.97, 1.03):.8f}"
            amount = f"{rng.uniform(0.01, 0.3):.9f}" if market == "BTCUSDT" else \
                f"{rng.uniform(1, 40):.7f}"
            calls.append(("order.put_limit", [user, market, rng.choice([1, 2]), amount, price,
                                              "0.0021", "0.0013", "t"]))
        elif roll < 0.7:
            side = rng.choice([1, 2])
            amount = f"{rng.uniform(0.001, 0.05):.9f}" if side == 1 else f"{rng.uniform(5, 300):.9f}"
            calls.append(("order.put_market", [user, "BTCUSDT", side, amount, "0.002", "m"]))
        elif roll < 0.9:
            calls.append(("order.cancel", [user, rng.choice(["BTCUSDT", "SKYBTC"]),
                                           rng.randint(1, len(calls))]))
        else:
            calls.append(("balance.update", [user, "BTC", "withdraw", len(calls),
                                              f"-{rng.uniform(0, 0.5):.12f}", {"x": 1}]))
    return calls


def live_state(service: CoreService) -> str:
    engine = service.engine
    state = Engine.encode(engine.capture())
    state["update_keys"] = sorted(engine.update_keys)
    return json.dumps(state, sort_keys=True)


def replayed_state(path) -> str:
    store = Store(path)
    try:
        engine, _ = recover(core_config(), store)
    finally:
        store.close()
    state = Engine.encode(engine.capture())
    state["update_keys"] = sorted(engine.update_keys)
    return json.dumps(state, sort_keys=True)


def run(service: CoreService, calls) -> list:
    return service.call_many(calls)


def test_replay_equals_live_bit_for_bit(tmp_path):
    service = open_core(core_config(), tmp_path)
    results = []
    for chunk in range(0, 1200, 100):  # several group-commit batches
        results += run(service, random_calls(7, 1200)[chunk:chunk + 100])
    results += run(service, random_calls(7, 1200)[1200:])
    deals = service.engine.deal_id
    assert deals > 20, "the mix should trade"
    assert any(isinstance(r, CoreError) for r in results)  # rejections are not logged
    live = live_state(service)
    service.stop()
    assert replayed_state(tmp_path) == live  # from the log alone, ctime/mtime included
    again = open_core(core_config(), tmp_path)
    assert live_state(again) == live
    again.stop()


def test_snapshot_then_more_operations_replays_identically(tmp_path):
    calls = random_calls(11, 600)
    service = open_core(core_config(), tmp_path)
    run(service, calls[:300])
    service.snapshot()
    run(service, calls[300:])
    live = live_state(service)
    last_book = service.call("order.book", ["BTCUSDT", 2, 0, 101])
    service.stop()
    store = Store(tmp_path)
    assert len(store.snapshot_ids()) == 1
    store.close()
    restarted = open_core(core_config(), tmp_path)
    assert live_state(restarted) == live
    assert restarted.call("order.book", ["BTCUSDT", 2, 0, 101]) == last_book
    restarted.stop()


def test_deposits_stay_idempotent_across_restarts_and_snapshots(tmp_path):
    service = open_core(core_config(), tmp_path)
    deposit = ["balance.update", [42, "BTC", "deposit", 900, "1.5", {"txid": "ab:0"}]]
    assert service.call(*deposit) == {"status": "success"}
    service.snapshot()
    service.stop()
    for _ in range(2):
        service = open_core(core_config(), tmp_path)
        again = service.call(*deposit)
        assert isinstance(again, CoreError) and again.code == 10
        assert service.call("balance.query", [42, "BTC"])["BTC"]["available"] == "1.5"
        service.snapshot()
        service.stop()


def test_change_is_truncated_once_live_and_replay_agree(tmp_path):
    service = open_core(core_config(), tmp_path)
    service.call("balance.update", [1, "BTC", "deposit", 1, "0.123456789999", {}])
    live = service.call("balance.query", [1, "BTC"])
    service.stop()
    restarted = open_core(core_config(), tmp_path)
    assert restarted.call("balance.query", [1, "BTC"]) == live == {
        "BTC": {"available": "0.12345678", "freeze": "0"}}
    restarted.stop()


def _log_with_entries(path, n: int = 5) -> None:
    service = open_core(core_config(), path)
    for i in range(n):
        service.call("balance.update", [1, "BTC", "deposit", i, "1", {}])
    service.stop()


def test_refuses_to_start_on_a_gap_in_the_log(tmp_path):
    _log_with_entries(tmp_path)
    store = Store(tmp_path)
    with store.env.begin(write=True, db=store.db["oplog"]) as txn:
        txn.delete(u64(3))
    store.close()
    with pytest.raises(RecoveryError, match="gap in the operation log.*after operation 2"):
        open_core(core_config(), tmp_path)


def test_refuses_to_start_on_a_corrupt_entry(tmp_path):
    _log_with_entries(tmp_path)
    store = Store(tmp_path)
    with store.env.begin(write=True, db=store.db["oplog"]) as txn:
        txn.put(u64(4), b'["update_balance", 1.0, [1, "BTC"')
    store.close()
    with pytest.raises(RecoveryError, match="entry 4 .* is corrupt"):
        open_core(core_config(), tmp_path)


def test_market_data_is_rebuilt_from_stored_deals(tmp_path):
    service = open_core(core_config(), tmp_path)
    run(service, random_calls(3, 300))
    before = [service.call("market.deals", ["BTCUSDT", 100, 0]),
              service.call("market.last", ["BTCUSDT"])]
    service.stop()
    restarted = open_core(core_config(), tmp_path)
    after = [restarted.call("market.deals", ["BTCUSDT", 100, 0]),
             restarted.call("market.last", ["BTCUSDT"])]
    restarted.stop()
    assert before[0] and after == before


def test_snapshot_command_works_offline(tmp_path):
    _log_with_entries(tmp_path, 4)
    runner = CliRunner()
    result = runner.invoke(core_group, ["snapshot", "-d", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "snapshot written at operation 4" in result.output
    store = Store(tmp_path)
    assert store.snapshot_ids() == [4]
    store.close()
    missing = runner.invoke(core_group, ["snapshot", "-d", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "holds no exchange-core data" in missing.output


def test_prune_deletes_only_log_entries_a_kept_snapshot_covers(tmp_path):
    service = open_core(core_config(), tmp_path)
    calls = random_calls(5, 400)
    snapshot_at = []
    for part in range(5):  # 5 snapshots; the store keeps the newest 3
        run(service, calls[part * 80:(part + 1) * 80])
        service.snapshot()
        snapshot_at.append(service.oper_id)
    run(service, random_calls(6, 50))  # and entries after the newest snapshot
    live = Engine.encode(service.engine.capture())
    last = service.oper_id
    service.stop()
    runner = CliRunner()
    refused = runner.invoke(core_group, ["prune", "-d", str(tmp_path)], input="n\n")
    assert refused.exit_code != 0
    store = Store(tmp_path)
    assert store.first_oper_id() == 1  # asked, refused: nothing deleted
    store.close()
    result = runner.invoke(core_group, ["prune", "-d", str(tmp_path), "--yes"])
    assert result.exit_code == 0, result.output
    assert f"operations 1..{snapshot_at[2]}" in result.output
    store = Store(tmp_path)
    assert store.snapshot_ids() == snapshot_at[2:]
    assert (store.first_oper_id(), store.last_oper_id()) == (snapshot_at[2] + 1, last)
    store.close()
    again = runner.invoke(core_group, ["prune", "-d", str(tmp_path), "--yes"])
    assert again.exit_code == 0 and "nothing to prune" in again.output
    restarted = open_core(core_config(), tmp_path)  # replays after the newest snapshot
    try:
        assert Engine.encode(restarted.engine.capture()) == live
        assert restarted.oper_id == last
    finally:
        restarted.stop()


def test_cli_help_and_bad_config(tmp_path):
    runner = CliRunner()
    assert "Serve the exchange core" in runner.invoke(core_group, ["run", "--help"]).output
    assert "snapshot" in runner.invoke(core_group, ["--help"]).output
    assert "no kept snapshot needs" in runner.invoke(core_group, ["prune", "--help"]).output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[assets]]\nname = "BTC"\nprec_save = 8\n[[markets]]\nname = "X"\n'
                   'stock = "BTC"\nmoney = "USD"\nstock_prec = 8\nmoney_prec = 8\n')
    result = runner.invoke(core_group, ["run", "-c", str(bad), "-d", str(tmp_path / "d")])
    assert result.exit_code != 0
    assert "money 'USD' is not a configured asset" in result.output
    assert (ROOT / "core.toml").exists()


@pytest.mark.parametrize("entry", [
    b'["update_balance", 1.0, [1, "BTC", "deposit", 4, "12x", {}]]',  # not a decimal
    b'["put_limit", 1.0, [1, "SKYBTC", 2, "1", "1e999999999", "0", "0", ""]]',  # overflows
    b'{"method": "update_balance"}',
])
def test_refuses_to_start_with_a_clear_message_on_any_bad_entry(tmp_path, entry):
    """A decimal that does not parse used to escape as a raw decimal.InvalidOperation
    traceback instead of the RecoveryError that `teller core run` reports."""
    _log_with_entries(tmp_path)
    store = Store(tmp_path)
    with store.env.begin(write=True, db=store.db["oplog"]) as txn:
        txn.put(u64(4), entry)
    store.close()
    with pytest.raises(RecoveryError, match="entry 4"):
        open_core(core_config(), tmp_path)


def test_refuses_to_start_on_a_snapshot_with_a_bad_decimal(tmp_path):
    _log_with_entries(tmp_path)
    store = Store(tmp_path)
    store.put_snapshot(5, b'{"order_id": 0, "deal_id": 0, "available": [[1, "BTC", "5x"]], '
                          b'"frozen": [], "orders": []}')
    store.close()
    with pytest.raises(RecoveryError, match="snapshot at operation 5"):
        open_core(core_config(), tmp_path)


def test_cli_refuses_a_bad_http_addr_before_opening_the_data(tmp_path):
    """`--http-addr nope` used to open the data directory, start the core's threads and then
    die in int('') with a traceback."""
    result = CliRunner().invoke(core_group, ["run", "-c", str(ROOT / "core.toml"),
                                             "-d", str(tmp_path / "d"), "--http-addr", "nope"])
    assert result.exit_code != 0
    assert "--http-addr must be host:port, got 'nope'" in result.output
    assert not (tmp_path / "d").exists()
