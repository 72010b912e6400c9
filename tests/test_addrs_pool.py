"""Deposit-address pools: loaded from .json/.txt at start-up, bad files refused with line
numbers, allocation atomic under concurrent binds."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from addrs.pool import AddressPool
from common.storage import Storage
from ledger.store import BindLimitReached, DepositStore, PoolEmpty
from teller.config import ConfigError
from tests.support.service import (
    BTC_ADDRESSES,
    assert_json,
    sky_address,
    start_teller,
    write_config,
)

log = logging.getLogger(__name__)


def test_pool_hands_out_in_order_once(tmp_path: Path) -> None:
    with Storage(tmp_path) as storage:
        pool = AddressPool(storage)
        assert pool.add("BTC", BTC_ADDRESSES[:3]).added == 3
        result = pool.add("BTC", BTC_ADDRESSES[1:5])
        assert (result.added, result.already_known) == (2, 2)
        assert pool.remaining("BTC") == 5 and pool.remaining("ETH") == 0
        with storage.write() as txn:
            taken = [pool.take(txn, "BTC") for _ in range(6)]
        assert taken == [*BTC_ADDRESSES[:5], None]
        log.info("a used address is never added back")
        assert pool.add("BTC", BTC_ADDRESSES[:1]).added == 0
        assert pool.remaining("BTC") == 0
        assert pool.used("BTC") == set(BTC_ADDRESSES[:5])


def test_take_rolls_back_with_its_transaction(tmp_path: Path) -> None:
    with Storage(tmp_path) as storage:
        pool = AddressPool(storage)
        pool.add("BTC", BTC_ADDRESSES[:2])
        with pytest.raises(RuntimeError), storage.write() as txn:
            assert pool.take(txn, "BTC") == BTC_ADDRESSES[0]
            raise RuntimeError("bind failed after taking")
        assert pool.remaining("BTC") == 2
        assert pool.known("BTC", BTC_ADDRESSES[0]) == {"seq": 1, "used": False}


@pytest.mark.parametrize("suffix", [".json", ".txt"])
def test_service_loads_json_and_txt_files(tmp_path: Path, suffix: str) -> None:
    t = start_teller(tmp_path, start=False)
    path = tmp_path / f"pool{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"btc_addresses": BTC_ADDRESSES[:4]}))
    else:
        path.write_text("# pool\n\n" + "\n".join(BTC_ADDRESSES[:4]) + "\n")
    write_config(tmp_path, f'btc_addresses = "pool{suffix}"\n')
    t.start()
    try:
        pools = assert_json(t.get(t.admin, "/api/deposit-addresses"))
        assert pools["BTC"]["remaining_addresses"] == 4
        assert t.bind(sky_address(1)) == BTC_ADDRESSES[0]
        log.info("restart: the file is merged again; the used address stays used")
        t.restart()
        pools = assert_json(t.get(t.admin, "/api/deposit-addresses"))
        assert pools["BTC"]["remaining_addresses"] == 3
        assert t.bind(sky_address(2)) == BTC_ADDRESSES[1]
    finally:
        t.close()


def test_bad_address_file_stops_start_up_with_every_line(tmp_path: Path) -> None:
    lines = ["# header", BTC_ADDRESSES[0], BTC_ADDRESSES[1][:-1] + "x", "",
             "bc1qnotanaddress", BTC_ADDRESSES[0]]
    t = start_teller(tmp_path, start=False, btc_addresses=lines)
    path = tmp_path / "btc_addresses.txt"
    with pytest.raises(ConfigError) as info:
        t.start()
    problems = info.value.problems
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:3", f"{path}:5", f"{path}:6"]
    assert problems[2] == f"{path}:6: {BTC_ADDRESSES[0]}: duplicate of line 2"
    log.info("nothing was loaded and the data dir is free for the next try")
    t.root.joinpath("btc_addresses.txt").write_text(BTC_ADDRESSES[0] + "\n")
    t.start()
    try:
        pools = assert_json(t.get(t.admin, "/api/deposit-addresses"))
        assert pools["BTC"]["remaining_addresses"] == 1
    finally:
        t.close()


def test_bad_json_address_file_names_the_entry(tmp_path: Path) -> None:
    t = start_teller(tmp_path, 'btc_addresses = "pool.json"\n', start=False)
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"btc_addresses": [BTC_ADDRESSES[0], 7, "nope"]}))
    with pytest.raises(ConfigError) as info:
        t.start()
    assert [p.split(": ", 1)[0] for p in info.value.problems] == [f"{path}:2", f"{path}:3"]
    path.write_text(json.dumps({"eth_addresses": []}))
    with pytest.raises(ConfigError, match="expected a JSON object with key 'btc_addresses'"):
        t.start()


def run_threads(count: int, work) -> None:  # noqa: ANN001 - a test helper
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_binds_never_exceed_limits_or_repeat_an_address(tmp_path: Path) -> None:
    with Storage(tmp_path) as storage:
        pool = AddressPool(storage)
        pool.add("BTC", BTC_ADDRESSES)
        store = DepositStore(storage, pool)
        outcomes: list[str] = []
        lock = threading.Lock()

        def bind(i: int) -> None:
            # 16 threads for one receive address, 16 for others; 10 addresses in the pool
            sky = sky_address(0) if i % 2 == 0 else sky_address(i)
            try:
                result = store.bind("BTC", sky, max_bound=3)["address"]
            except BindLimitReached:
                result = "limit"
            except PoolEmpty:
                result = "empty"
            with lock:
                outcomes.append(result)

        run_threads(32, bind)
        handed = [o for o in outcomes if o not in ("limit", "empty")]
        log.info("every pool address handed out exactly once; none lost")
        assert sorted(handed) == sorted(BTC_ADDRESSES)
        assert pool.remaining("BTC") == 0
        assert pool.used("BTC") == set(BTC_ADDRESSES)
        assert len(store.bindings_of(sky_address(0))) <= 3
        assert outcomes.count("limit") + outcomes.count("empty") == 22
        assert store.watched("BTC") == set(BTC_ADDRESSES)
        bound = {b["address"]: b["sky_address"] for i in range(32)
                 for b in store.bindings_of(sky_address(i))}
        assert set(bound) == set(BTC_ADDRESSES)


def test_concurrent_binds_for_one_address_stop_at_max_bound(tmp_path: Path) -> None:
    with Storage(tmp_path) as storage:
        pool = AddressPool(storage)
        pool.add("BTC", BTC_ADDRESSES)
        store = DepositStore(storage, pool)
        run_threads(20, lambda i: _try_bind(store, sky_address(0), 4))
        assert len(store.bindings_of(sky_address(0))) == 4
        assert pool.remaining("BTC") == 6


def _try_bind(store: DepositStore, sky: str, max_bound: int) -> None:
    try:
        store.bind("BTC", sky, max_bound=max_bound)
    except BindLimitReached:
        pass
