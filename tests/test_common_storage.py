"""The LMDB environment: schema version recorded, one teller per data dir, no floats stored."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from pathlib import Path

import pytest

from common.storage import SCHEMA_VERSION, Storage, StorageError, dumps, loads
from teller.config import load_config
from teller.service import Service
from tests.support.service import start_teller

log = logging.getLogger(__name__)


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    with Storage(tmp_path) as storage, storage.read() as txn:
        assert storage.get(txn, "meta", "schema_version") == SCHEMA_VERSION == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with Storage(tmp_path) as storage, storage.write() as txn:
        storage.put(txn, "meta", "schema_version", SCHEMA_VERSION + 1)
    with pytest.raises(StorageError, match="has schema version 2, newer than this teller") \
            as first:
        Storage(tmp_path)
    log.info("the failed open released its lock and environment (while its error is alive)")
    with pytest.raises(StorageError, match="has schema version 2, newer than this teller"):
        Storage(tmp_path)
    assert first.value is not None


def test_second_storage_on_the_same_dir_fails_clearly(tmp_path: Path) -> None:
    with Storage(tmp_path):
        with pytest.raises(StorageError) as info:
            Storage(tmp_path)
        assert str(info.value) == (
            f"data directory {tmp_path} is in use by another teller process (lock held on "
            f"{tmp_path / 'teller.lock'}); stop it or use another -d/--dir")
    with Storage(tmp_path):  # released on close
        pass


def test_second_service_on_the_same_dir_fails_clearly(tmp_path: Path) -> None:
    t = start_teller(tmp_path)
    try:
        with pytest.raises(StorageError, match="in use by another teller process"):
            Service(load_config(t.config_path), t.data_dir)
        assert t.get(t.public, "/api/config").status_code == 200  # the first one is unharmed
    finally:
        t.close()


def test_values_are_json_and_floats_are_refused(tmp_path: Path) -> None:
    assert loads(dumps({"b": 1, "a": Decimal("0.1")})) == {"a": "0.1", "b": 1}
    assert loads(b'{"x": 0.1}') == {"x": Decimal("0.1")}
    with pytest.raises(TypeError, match="refusing to store a float"):
        dumps({"nested": [1, {"amount": 0.1}]})
    with Storage(tmp_path) as storage:
        with pytest.raises(TypeError), storage.write() as txn:
            storage.put(txn, "deposits", "k", {"value": 1.5})
        with storage.read() as txn:
            assert storage.get(txn, "deposits", "k") is None  # the transaction rolled back


def test_items_count_and_counters(tmp_path: Path) -> None:
    with Storage(tmp_path) as storage:
        with storage.write() as txn:
            for key in ("BTC/b", "BTC/a", "ETH/a"):
                storage.put(txn, "bindings", key, key)
            assert [storage.next_counter(txn, "n") for _ in range(3)] == [1, 2, 3]
        with storage.read() as txn:
            assert list(storage.items(txn, "bindings", "BTC/")) == [("BTC/a", "BTC/a"),
                                                                     ("BTC/b", "BTC/b")]
            assert storage.count(txn, "bindings") == 3
            assert storage.count(txn, "bindings", "ETH/") == 1
            assert list(storage.items(txn, "bindings", "LTC/")) == []
    with Storage(tmp_path) as storage, storage.write() as txn:
        assert storage.next_counter(txn, "n") == 4  # persisted


def test_write_batched_shares_commits_and_isolates_failures(tmp_path: Path) -> None:
    """Concurrent callers share commits; one caller's exception rolls back only its writes."""
    import threading

    storage = Storage(tmp_path)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        def write(txn):
            storage.put(txn, "meta", f"item/{i:03d}", i)
            if i % 10 == 0:
                raise ValueError(f"caller {i} fails")
            return i * 2

        try:
            assert storage.write_batched(write) == i * 2
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with storage.read() as txn:
        stored = {key: value for key, value in storage.items(txn, "meta", "item/")}
    assert len(errors) == 10
    assert sorted(stored.values()) == [i for i in range(100) if i % 10]
    storage.close()


def test_write_batched_leader_returns_after_its_own_commit(tmp_path: Path) -> None:
    """The caller that led a group commit hands the lead on: it does not stay behind to commit
    the writes that queued meanwhile (a request thread would answer only once the load stops)."""
    import threading

    storage = Storage(tmp_path)
    a_running, release_a, release_b, b_calling = (threading.Event() for _ in range(4))

    def write_a(txn):
        a_running.set()
        release_a.wait(10)
        storage.put(txn, "meta", "item/a", 1)

    def write_b(txn):
        release_b.wait(10)
        storage.put(txn, "meta", "item/b", 2)

    def call_b() -> None:
        b_calling.set()
        storage.write_batched(write_b)

    leader = threading.Thread(target=storage.write_batched, args=(write_a,))
    follower = threading.Thread(target=call_b)
    leader.start()
    assert a_running.wait(10)
    follower.start()
    assert b_calling.wait(10)
    time.sleep(0.2)  # b is queued behind a's batch
    release_a.set()
    leader.join(3)
    try:
        assert not leader.is_alive(), "the leader waited for the next batch's writes"
    finally:
        release_b.set()
        leader.join(10)
        follower.join(10)
    with storage.read() as txn:
        assert dict(storage.items(txn, "meta", "item/")) == {"item/a": 1, "item/b": 2}
    storage.close()
