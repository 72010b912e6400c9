"""The scanner cursor in LMDB and the fork-point walk-back, without any node."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.storage import Storage
from scanner.bitcoind import RPCSettings, rpc_url, satoshi
from scanner.cursor import Cursor, CursorStore, find_fork_point
from scanner.errors import ReorgTooDeep


@pytest.fixture
def storage(tmp_path: Path):
    st = Storage(tmp_path / "data")
    yield st
    st.close()


def chain(prefix: str, start: int, end: int) -> dict[int, str]:
    return {h: f"{prefix}{h}" for h in range(start, end + 1)}


def test_fresh_cursor_starts_at_initial_height_and_persists(tmp_path: Path) -> None:
    st = Storage(tmp_path / "data")
    cursors = CursorStore(st, "LTC")
    assert cursors.load() is None
    cursor = cursors.load_or_init(100)
    assert cursor == Cursor(99, "", 100) and cursor.next_height == 100
    cursor = cursors.advance(cursor, 100, "a100")
    cursor = cursors.advance(cursor, 101, "a101")
    with pytest.raises(ValueError, match="cannot advance"):
        cursors.advance(cursor, 103, "a103")
    st.close()
    st = Storage(tmp_path / "data")
    try:
        again = CursorStore(st, "LTC")
        assert again.load_or_init(0) == Cursor(101, "a101", 100), "initial height ignored"
        assert again.recent() == [(101, "a101"), (100, "a100")]
        assert CursorStore(st, "BTC").load() is None, "chains are separate"
    finally:
        st.close()


def test_only_the_last_k_hashes_are_kept(storage: Storage) -> None:
    cursors = CursorStore(storage, "BTC", keep=5)
    cursor = cursors.load_or_init(0)
    for h in range(20):
        cursor = cursors.advance(cursor, h, f"a{h}")
    assert [h for h, _ in cursors.recent()] == [19, 18, 17, 16, 15]


def test_fork_point_is_the_newest_stored_block_the_node_agrees_with(storage: Storage) -> None:
    cursors = CursorStore(storage, "BTC")
    cursor = cursors.load_or_init(10)
    for h, block_hash in chain("a", 10, 20).items():
        cursor = cursors.advance(cursor, h, block_hash)
    node = {**chain("a", 10, 16), **chain("b", 17, 22)}  # fork after 16
    fork = find_fork_point(cursor, cursors.recent(), node.get)
    assert fork.cursor == Cursor(16, "a16", 10)
    assert fork.orphaned == [(h, f"a{h}") for h in range(20, 16, -1)]
    cursor = cursors.rewind(fork.cursor)
    assert cursors.load() == Cursor(16, "a16", 10)
    assert cursors.recent()[0] == (16, "a16")
    shortened = {**chain("a", 10, 12)}  # node's chain now ends at 12 (invalidateblock)
    fork = find_fork_point(cursor, cursors.recent(), shortened.get)
    assert fork.cursor.height == 12 and [h for h, _ in fork.orphaned] == [16, 15, 14, 13]


def test_fork_below_the_first_scanned_block_restarts_at_the_start(storage: Storage) -> None:
    cursors = CursorStore(storage, "ETH")
    cursor = cursors.load_or_init(5)
    for h, block_hash in chain("a", 5, 7).items():
        cursor = cursors.advance(cursor, h, block_hash)
    fork = find_fork_point(cursor, cursors.recent(), chain("b", 0, 9).get)
    assert fork.cursor == Cursor(4, "", 5)
    assert len(fork.orphaned) == 3


def test_fork_deeper_than_the_kept_hashes_is_refused(storage: Storage) -> None:
    cursors = CursorStore(storage, "BTC", keep=3)
    cursor = cursors.load_or_init(0)
    for h, block_hash in chain("a", 0, 9).items():
        cursor = cursors.advance(cursor, h, block_hash)
    with pytest.raises(ReorgTooDeep, match="deeper than the scanner keeps"):
        find_fork_point(cursor, cursors.recent(), chain("b", 0, 12).get)
    assert cursors.load() == cursor, "nothing changed"


def test_satoshi_is_exact_and_refuses_sub_satoshi() -> None:
    from decimal import Decimal

    assert satoshi(Decimal("21000000.00000001")) == 2_100_000_000_000_001
    assert satoshi(Decimal("0.00000001")) == 1
    assert satoshi(0) == 0
    with pytest.raises(ValueError, match="whole number of satoshi"):
        satoshi(Decimal("0.000000001"))


def test_rpc_url_from_host_port_url_default_port_and_cookie(tmp_path: Path) -> None:
    assert rpc_url("BTC", "regtest", RPCSettings("127.0.0.1:18443", "u", "p")) == \
        "http://u:p@127.0.0.1:18443"
    assert rpc_url("LTC", "mainnet", RPCSettings("node.local", "u", "p:x@y")) == \
        "http://u:p:x@y@node.local:9332"
    assert rpc_url("BTC", "testnet", RPCSettings("https://rpc.example/wallet/w", "u", "p")) == \
        "https://u:p@rpc.example:18332/wallet/w"
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:abc123\n")
    assert rpc_url("BTC", "mainnet", RPCSettings("h:1", cookie_file=str(cookie))) == \
        "http://__cookie__:abc123@h:1"
    with pytest.raises(ValueError, match="python-bitcoinrpc cannot send"):
        rpc_url("BTC", "mainnet", RPCSettings("h:1", "u", "a/b"))
    with pytest.raises(ValueError, match="is not host:port or a URL"):
        rpc_url("BTC", "mainnet", RPCSettings("ftp://h:1", "u", "p"))
