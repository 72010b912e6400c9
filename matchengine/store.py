"""LMDB persistence of the exchange core: operation log, snapshots, idempotency keys, history.

One LMDB environment in the data directory, opened with sync on: a commit returns only once it
is on disk. The writer puts a whole batch of operations (plus the history rows and idempotency
keys they produced) in ONE write transaction, so many acknowledged operations share one fsync.

History rows are staged: the batch's transaction puts all of them, grouped by table, as ONE
`h_stage` entry (a few pages, one put), and `index_history` later moves everything staged into
the per-user databases in one transaction. Written straight into per-user keys, each commit
dirtied a page per user it touched, which cost more than the matching; moved in large passes,
rows of one user share their page. Staged rows are as durable as the log, and every history
read first indexes what is staged, so a read sees every acknowledged write.

Named databases (keys are big-endian so LMDB order = numeric order):
  oplog      oper_id(8)                         -> [method, time, args]
  snapshots  oper_id(8)                         -> engine state after that operation
  idem       json [user, asset, business, id]   -> oper_id(8)  (kept forever)
  meta       name                               -> json (e.g. the config in use)
  h_balance  user(4) seq(8)                     -> balance.history record
  h_order    user(4) market order_id(8)         -> empty: the record is in h_detail (older
                                                   data directories hold it here too)
  h_detail   order_id(8)                        -> order.finished_detail record
  h_odeal    order_id(8) deal_id(8)             -> order.deals record
  h_udeal    user(4) market deal_id(8) side(1)  -> market.user_deals record
  h_deal     deal_id(8)                         -> the viabtc `deals` message (market data)
  h_stage    seq(8)                             -> one commit's rows: marshal of a tuple with
                                                   a list of (key, value) per HISTORY_DBS table
  h_log      seq(8)                             -> (older data directories) one staged row:
                                                   db index(1) key length(1) key value; moved
                                                   into the tables when the store opens
"""

from __future__ import annotations

import json
import marshal
import os
import struct
import threading
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import lmdb

HISTORY_DBS = ("h_balance", "h_order", "h_detail", "h_odeal", "h_udeal", "h_deal")
DBS = ("oplog", "snapshots", "idem", "meta", *HISTORY_DBS, "h_stage", "h_log")
MAP_SIZE = 1 << 36  # 64 GiB of address space; the file grows as needed
U64 = struct.Struct(">Q")
U32 = struct.Struct(">I")


u64 = U64.pack  # u64(n) -> 8 bytes, big-endian (bound methods: no Python call in between)
u32 = U32.pack

# One operation batch's history rows: a list of (key, value) per table, in HISTORY_DBS order.
Rows = tuple[list[tuple[bytes, bytes]], ...]
MARSHAL_VERSION = 4  # bytes, tuples and lists in this version read the same on every Python 3


def empty_rows() -> Rows:
    return tuple([] for _ in HISTORY_DBS)


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
        # Staged row sets in commit order, as on disk in h_stage (loaded at open): index passes
        # take them from memory instead of reading h_stage back.
        self._staged: list[tuple[int, Rows]] = []
        self._staged_lock = threading.Lock()  # guards _staged; held only to swap or extend it
        self._index_lock = threading.Lock()  # one index pass at a time; readers wait for it
        self._next_stage = 0
        self._move_legacy_rows()
        with self.env.begin(db=self.db["h_stage"]) as txn:
            for key, value in txn.cursor():
                seq = U64.unpack(key)[0]
                try:
                    rows = marshal.loads(value)
                    if type(rows) is not tuple or len(rows) != len(HISTORY_DBS) or \
                            not all(type(items) is list for items in rows):
                        raise ValueError("not one list of rows per history table")
                except (EOFError, ValueError, TypeError) as exc:
                    raise ValueError(f"staged history entry {seq} in {self.path} is corrupt "
                                     f"({exc}); refusing to open") from exc
                self._staged.append((seq, rows))
                self._next_stage = seq + 1

    def _move_legacy_rows(self) -> None:
        """Index the one-row-per-entry `h_log` of older data directories, and empty it."""
        with self.env.begin(write=True) as txn:
            log_db = self.db["h_log"]
            if not txn.stat(log_db)["entries"]:
                return
            rows = empty_rows()
            for _, row in txn.cursor(log_db):
                end = 2 + row[1]
                rows[row[0]].append((bytes(row[2:end]), bytes(row[end:])))
            for name, items in zip(HISTORY_DBS, rows, strict=True):
                if items:
                    txn.cursor(self.db[name]).putmulti(items)
            txn.drop(log_db, delete=False)

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

    # -- operation log and staged history -----------------------------------------------------

    def last_oper_id(self) -> int:
        with self.env.begin(db=self.db["oplog"]) as txn:
            cursor = txn.cursor()
            return U64.unpack(cursor.key())[0] if cursor.last() else 0

    def commit(self, oplog: list[tuple[int, bytes]], idem: list[tuple[bytes, int]],
               history: list[Rows]) -> None:
        """Write one batch durably (returns after fsync); each of `history`'s row sets is
        staged as one entry.

        The log goes in with one `putmulti`: py-lmdb lets go of the GIL around every single
        `put` and, with other threads busy, waits up to the switch interval to get it back."""
        history = [rows for rows in history if any(rows)]
        with self.env.begin(write=True) as txn:  # its lock also guards _next_stage
            first_stage = self._next_stage
            entries = [(u64(oper_id), value) for oper_id, value in oplog]
            _, added = txn.cursor(self.db["oplog"]).putmulti(entries, overwrite=False)
            if added != len(entries):
                first = next(oper_id for oper_id, _ in oplog
                             if txn.get(u64(oper_id), db=self.db["oplog"]) is not None)
                raise RuntimeError(f"operation {first} already in the log")
            if idem:
                txn.cursor(self.db["idem"]).putmulti([(key, u64(oper_id))
                                                      for key, oper_id in idem])
            staged = [(seq, rows) for seq, rows in enumerate(history, first_stage)]
            if staged:
                txn.cursor(self.db["h_stage"]).putmulti(
                    [(u64(seq), marshal.dumps(rows, MARSHAL_VERSION)) for seq, rows in staged],
                    append=True)
            self._next_stage = first_stage + len(staged)  # a failed commit leaves a gap
        if staged:
            with self._staged_lock:
                self._staged.extend(staged)

    def first_oper_id(self) -> int:
        """The oldest operation still in the log (0 when the log is empty)."""
        with self.env.begin(db=self.db["oplog"]) as txn:
            cursor = txn.cursor()
            return U64.unpack(cursor.key())[0] if cursor.first() else 0

    def prune_log(self, upto: int, batch: int = 10_000) -> Iterator[int]:
        """Delete the log entries of operations <= `upto`, `batch` per transaction (a running
        core's commits wait for one batch at most); yields how many each batch deleted."""
        db = self.db["oplog"]
        while True:
            with self.env.begin(write=True, db=db) as txn:
                cursor = txn.cursor()
                deleted = 0
                if cursor.first():
                    while deleted < batch:
                        key = cursor.key()  # empty once the last entry is deleted
                        if not key or U64.unpack(key)[0] > upto:
                            break
                        cursor.delete()  # and move to the next entry
                        deleted += 1
            if not deleted:
                return
            yield deleted

    def staged_rows(self) -> int:
        """History rows committed but not yet moved into their databases."""
        with self._staged_lock:
            return sum(len(items) for _, rows in self._staged for items in rows)

    def index_history(self) -> int:
        """Move every staged history row into its database, in one transaction; returns how
        many. Safe from any thread; returns at once when nothing is staged, and otherwise only
        once the rows staged before the call are indexed."""
        with self._index_lock:
            with self._staged_lock:
                staged, self._staged = self._staged, []
            if not staged:
                return 0
            try:
                return self._index(staged)
            except BaseException:
                with self._staged_lock:  # still staged on disk: keep them for the next pass
                    self._staged[:0] = staged
                raise

    def _index(self, staged: list[tuple[int, Rows]]) -> int:
        moved = 0
        with self.env.begin(write=True) as txn:
            for position, name in enumerate(HISTORY_DBS):
                items = list(chain.from_iterable(rows[position] for _, rows in staged))
                if items:
                    txn.cursor(self.db[name]).putmulti(items)
                    moved += len(items)
            stage_db = self.db["h_stage"]
            if txn.stat(stage_db)["entries"] == len(staged):
                txn.drop(stage_db, delete=False)
            else:  # a commit staged more since these were taken: keep its entries
                for seq, _ in staged:
                    txn.delete(u64(seq), db=stage_db)
        return moved

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
