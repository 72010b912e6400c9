"""LMDB persistence of the exchange core: operation log, snapshots, idempotency keys, history.

One LMDB environment in the data directory, opened with sync on: a commit returns only once it
is on disk. The writer puts a whole batch of operations (plus the history rows and idempotency
keys they produced) in ONE write transaction, so many acknowledged operations share one fsync.

Named databases (keys are big-endian so LMDB order = numeric order):
  oplog      oper_id(8)                         -> [method, time, args]
  snapshots  oper_id(8)                         -> engine state after that operation
  idem       json [user, asset, business, id]   -> oper_id(8)  (kept forever)
  meta       name                               -> json (e.g. the config in use)
  h_balance  user(4) seq(8)                     -> balance.history record
  h_order    user(4) market seq(8)              -> order.finished record
  h_detail   order_id(8)                        -> order.finished_detail record
  h_odeal    order_id(8) deal_id(8)             -> order.deals record
  h_udeal    user(4) market deal_id(8) side(1)  -> market.user_deals record
  h_deal     deal_id(8)                         -> the viabtc `deals` message (market data)
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb

DBS = ("oplog", "snapshots", "idem", "meta", "h_balance", "h_order", "h_detail", "h_odeal",
       "h_udeal", "h_deal")
MAP_SIZE = 1 << 36  # 64 GiB of address space; the file grows as needed
U64 = struct.Struct(">Q")
U32 = struct.Struct(">I")


def u64(n: int) -> bytes:
    return U64.pack(n)


def u32(n: int) -> bytes:
    return U32.pack(n)


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps builds one per call


def dumps(value: Any) -> bytes:
    """Compact JSON, the same text as json.dumps(value, separators=(",", ":"))."""
    return _ENCODER.encode(value).encode()


class Store:
    """The data directory's LMDB environment."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        self.env = lmdb.open(str(self.path), map_size=MAP_SIZE, max_dbs=len(DBS) + 2,
                             sync=True, metasync=True, writemap=False, max_readers=256)
        self.db = {name: self.env.open_db(name.encode()) for name in DBS}

    def close(self) -> None:
        self.env.close()

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, name: str) -> Any:
        with self.env.begin(db=self.db["meta"]) as txn:
            raw = txn.get(name.encode())
        return None if raw is None else json.loads(raw)

    def put_meta(self, name: str, value: Any) -> None:
        with self.env.begin(write=True, db=self.db["meta"]) as txn:
            txn.put(name.encode(), dumps(value))

    # -- operation log ------------------------------------------------------------------------

    def last_oper_id(self) -> int:
        with self.env.begin(db=self.db["oplog"]) as txn:
            cursor = txn.cursor()
            return U64.unpack(cursor.key())[0] if cursor.last() else 0

    def commit(self, oplog: list[tuple[int, bytes]], idem: list[tuple[bytes, int]],
               writes: list[tuple[str, bytes, bytes]]) -> None:
        """Write one batch durably (returns after fsync)."""
        with self.env.begin(write=True) as txn:
            db = self.db["oplog"]
            for oper_id, value in oplog:
                if not txn.put(u64(oper_id), value, db=db, overwrite=False):
                    raise RuntimeError(f"operation {oper_id} already in the log")
            db = self.db["idem"]
            for key, oper_id in idem:
                txn.put(key, u64(oper_id), db=db)
            for name, key, value in writes:
                txn.put(key, value, db=self.db[name])

    def oplog_from(self, first: int) -> Iterator[tuple[int, bytes]]:
        with self.env.begin(db=self.db["oplog"]) as txn:
            cursor = txn.cursor()
            if cursor.set_range(u64(first)):
                for key, value in cursor:
                    yield U64.unpack(key)[0], bytes(value)

    def idem_keys(self) -> Iterator[bytes]:
        with self.env.begin(db=self.db["idem"]) as txn:
            for key in txn.cursor().iternext(values=False):
                yield bytes(key)

    # -- snapshots ----------------------------------------------------------------------------

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        with self.env.begin(db=self.db["snapshots"]) as txn:
            cursor = txn.cursor()
            if not cursor.last():
                return None
            return U64.unpack(cursor.key())[0], bytes(cursor.value())

    def put_snapshot(self, oper_id: int, value: bytes, keep: int = 3) -> None:
        with self.env.begin(write=True, db=self.db["snapshots"]) as txn:
            txn.put(u64(oper_id), value)
            keys = list(txn.cursor().iternext(values=False))
            for key in keys[:-keep]:
                txn.delete(key)

    def snapshot_ids(self) -> list[int]:
        with self.env.begin(db=self.db["snapshots"]) as txn:
            return [U64.unpack(k)[0] for k in txn.cursor().iternext(values=False)]

    # -- history reads ------------------------------------------------------------------------

    def scan_prefix_desc(self, name: str, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Newest-first scan of keys starting with `prefix`."""
        with self.env.begin(db=self.db[name]) as txn:
            cursor = txn.cursor()
            upper = prefix + b"\xff" * 32
            if cursor.set_range(upper):
                if not cursor.prev():
                    return
            elif not cursor.last():
                return
            while True:
                key = bytes(cursor.key())
                if not key.startswith(prefix):
                    return
                yield key, bytes(cursor.value())
                if not cursor.prev():
                    return

    def get(self, name: str, key: bytes) -> bytes | None:
        with self.env.begin(db=self.db[name]) as txn:
            value = txn.get(key)
        return None if value is None else bytes(value)

    def iter_desc(self, name: str) -> Iterator[tuple[bytes, bytes]]:
        with self.env.begin(db=self.db[name]) as txn:
            cursor = txn.cursor()
            if not cursor.last():
                return
            while True:
                yield bytes(cursor.key()), bytes(cursor.value())
                if not cursor.prev():
                    return
