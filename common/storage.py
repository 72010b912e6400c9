"""The teller's LMDB environment: one per data directory, named databases per concern.

Every package that persists state (address pools, deposits, payouts, scanner cursors, the dummy
chain) gets its named databases from here and does its work inside ``Storage.write()`` /
``Storage.read()`` transactions, so a state change and everything it implies commit together.
Values are JSON (``dumps``/``loads`` refuse floats so no amount ever passes through one).

The environment also owns the two start-up guarantees the rest of the code relies on:
one process per data directory (an exclusive ``flock`` on ``teller.lock``) and a recorded
schema version (a newer one is refused, an older one is migrated step by step).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import lmdb

SCHEMA_VERSION = 1

# Every named database the teller uses, with the package that owns it. Opening them all up front
# keeps LMDB's "open a DB inside a write txn" rule out of request paths.
DATABASES = (
    "meta",  # teller: schema version, counters
    "addr_free",  # addrs: "<COIN>/<seq:016x>" -> address, the free pool in hand-out order
    "addr_known",  # addrs: "<COIN>/<address>" -> {"seq", "used"}
    "bindings",  # exchanger: "<COIN>/<deposit address>" -> binding
    "sky_index",  # exchanger: "<receive address>/<slot:08x>" -> binding key
    "deposits",  # exchanger: "<COIN>/<txid>:<n>" -> deposit record
    "deposits_by_status",  # exchanger: "<status>/<seq:016x>" -> deposit key
    "deposits_by_address",  # exchanger: "<COIN>/<deposit address>/<seq:016x>" -> deposit key
    "payouts",  # exchanger: "<payout id>" -> payout record (signed tx, txid, deposits)
    "payouts_open",  # exchanger: "<payout id>" -> "" for payouts not yet confirmed
    "scanner",  # scanner: per-chain cursor, recent block hashes, pending deposits
    "sender",  # sender: backend state (dummy chain, ERC-20 nonces)
    "audit",  # teller: "<seq:016x>" -> operator action (review decisions), append-only
    "settings",  # ledger: runtime setting overrides ("value/<key>") and their audit log
)


T = TypeVar("T")


class _Pending:
    """One caller's work in a group commit."""

    __slots__ = ("fn", "result", "error", "done", "lead")

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()  # set when committed, or when handed the lead
        self.lead = False


class StorageError(RuntimeError):
    """The data directory cannot be used (locked by another process, newer schema, ...)."""


def _reject_float(value: Any) -> Any:
    raise TypeError(f"refusing to store a float ({value!r}): use int base units or Decimal")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def dumps(value: Any) -> bytes:
    """Serialise a record; floats are refused so money never degrades to binary fractions."""
    if _contains_float(value):
        _reject_float(value)
    return _ENCODER.encode(value).encode()


_PLAIN = (str, int, bool, type(None))


def _contains_float(value: Any) -> bool:
    # Iterative, exact-type fast path first: this runs on every record written.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _PLAIN:
            continue
        if kind is dict:
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, float):
            return True
    return False


def loads(raw: bytes | memoryview | None) -> Any:
    if raw is None:
        return None
    return _DECODER.decode(bytes(raw).decode())


# One encoder and decoder for the process: json.dumps/loads with options build new ones per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=_default)
_DECODER = json.JSONDecoder(parse_float=Decimal)


class Storage:
    """An open LMDB environment in a data directory, held exclusively by this process."""

    def __init__(self, data_dir: str | os.PathLike[str], *, db_name: str = "teller.db",
                 map_size: int = 4 << 30, sync: bool = True, exclusive: bool = True) -> None:
        self.path = Path(data_dir).expanduser()
        self.path.mkdir(parents=True, exist_ok=True)
        # The flock keeps a second *teller run* off this directory. Tools that only add
        # addresses open it non-exclusively: LMDB itself serialises writers across processes.
        self._lock_file = None
        if exclusive:
            self._lock_file = open(self.path / "teller.lock", "a+")  # noqa: SIM115
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock_file.close()
                raise StorageError(
                    f"data directory {self.path} is in use by another teller process "
                    f"(lock held on {self.path / 'teller.lock'}); stop it or use another -d/--dir"
                ) from None
            self._lock_file.seek(0)
            self._lock_file.truncate()
            self._lock_file.write(f"{os.getpid()}\n")
            self._lock_file.flush()
        # Typed as open: every method but close() runs between a successful open and close().
        self.env: lmdb.Environment = None  # type: ignore[assignment]
        self._commits = itertools.count(1)  # next() is atomic under the GIL
        self._batch_lock = threading.Lock()
        self._batch: list[_Pending] = []
        self._leading = False
        self._version = 0
        try:
            self.env = lmdb.open(str(self.path / db_name), map_size=map_size,
                                 max_dbs=len(DATABASES) + 4, sync=sync, metasync=sync,
                                 subdir=True, lock=True)
            self._dbs = {name: self.env.open_db(name.encode()) for name in DATABASES}
            self._check_schema()
        except BaseException:
            # A failed open must not leave the directory locked or the environment open.
            self.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the environment and release the directory (safe to call twice)."""
        if self.env is not None:
            self.env.close()
            self.env = None  # type: ignore[assignment]
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_schema(self) -> None:
        with self.write() as txn:
            found = self.get(txn, "meta", "schema_version")
            if found is None:
                self.put(txn, "meta", "schema_version", SCHEMA_VERSION)
                return
            if found > SCHEMA_VERSION:
                raise StorageError(
                    f"data directory {self.path} has schema version {found}, newer than this "
                    f"teller understands ({SCHEMA_VERSION}); upgrade teller or use a backup"
                )
            # Migrations go here as numbered steps (migrate_2, ...) when the schema changes.

    # -- transactions ----------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[lmdb.Transaction]:
        """One atomic, durable write transaction (LMDB serialises writers)."""
        try:
            with self.env.begin(write=True) as txn:
                yield txn
        finally:
            self._version = next(self._commits)  # after the commit: readers recompute

    def write_batched(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``fn(txn)`` in a write transaction shared with concurrent callers (group commit).

        The first caller to arrive leads: it runs every queued ``fn`` in one transaction, each
        inside its own nested transaction (an exception aborts only that caller's writes and is
        re-raised to it), commits once, wakes the others and hands the lead to the first caller
        that queued meanwhile. A caller returns only after the commit that holds its writes, so
        durability is the same as ``write()`` at a fraction of the fsyncs when many requests
        write at once; and a leader does not stay behind to commit other callers' later work.
        """
        item = _Pending(fn)
        with self._batch_lock:
            self._batch.append(item)
            if not self._leading:
                self._leading = item.lead = True
        if not item.lead:
            item.done.wait()
        if item.lead:  # first to arrive, or handed the lead while queued
            self._lead_batch()
        if item.error is not None:
            raise item.error
        result: T = item.result
        return result

    def _lead_batch(self) -> None:
        """Commit everything queued (the leader's own work is in it), then pass the lead on."""
        with self._batch_lock:
            batch, self._batch = self._batch, []
        try:
            with self.write() as txn:
                for item in batch:
                    try:
                        with self.env.begin(write=True, parent=txn) as child:
                            item.result = item.fn(child)
                    except Exception as exc:  # noqa: BLE001 - handed to its caller
                        item.error = exc
        except BaseException as exc:  # the commit failed: nobody's writes are durable
            for item in batch:
                item.error = exc
        with self._batch_lock:
            successor = self._batch[0] if self._batch else None
            if successor is None:
                self._leading = False
            else:
                successor.lead = True
        for item in batch:
            item.done.set()
        if successor is not None:
            successor.done.set()

    @contextlib.contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        with self.env.begin(write=False) as txn:
            yield txn

    def version(self) -> int:
        """A number that changes after every write transaction this process commits.

        Anything derived from the database and tagged with it is current for as long as it
        has not changed: a cheap key for read caches. (A plain counter, not LMDB's txn id:
        py-lmdb releases the GIL on every call, which costs more than the cache saves.)
        Writes by other processes (``teller tool addaddresses``) only touch address pools.
        """
        return self._version

    def db(self, name: str) -> Any:
        return self._dbs[name]

    # -- JSON helpers ----------------------------------------------------------------------

    def get(self, txn: lmdb.Transaction, db: str, key: str) -> Any:
        return loads(txn.get(key.encode(), db=self._dbs[db]))

    def put(self, txn: lmdb.Transaction, db: str, key: str, value: Any) -> None:
        txn.put(key.encode(), dumps(value), db=self._dbs[db])

    def delete(self, txn: lmdb.Transaction, db: str, key: str) -> bool:
        return txn.delete(key.encode(), db=self._dbs[db])

    def items(self, txn: lmdb.Transaction, db: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """Yield (key, value) in key order for keys starting with ``prefix``."""
        raw_prefix = prefix.encode()
        cursor = txn.cursor(db=self._dbs[db])
        if not cursor.set_range(raw_prefix):
            return
        for key, value in cursor:  # bytes: the cursor is not opened with buffers=True
            if not key.startswith(raw_prefix):  # type: ignore[union-attr]
                break
            yield key.decode(), loads(value)  # type: ignore[union-attr]

    def count(self, txn: lmdb.Transaction, db: str, prefix: str = "") -> int:
        """Number of keys starting with ``prefix`` (values are not decoded)."""
        if not prefix:
            return txn.stat(self._dbs[db])["entries"]
        raw_prefix = prefix.encode()
        cursor = txn.cursor(db=self._dbs[db])
        if not cursor.set_range(raw_prefix):
            return 0
        total = 0
        for key in cursor.iternext(keys=True, values=False):
            if not key.startswith(raw_prefix):  # type: ignore[union-attr]  # bytes, as above
                break
            total += 1
        return total

    def next_counter(self, txn: lmdb.Transaction, name: str) -> int:
        """Increment and return a persistent counter stored in ``meta`` (starts at 1)."""
        value = (self.get(txn, "meta", f"counter/{name}") or 0) + 1
        self.put(txn, "meta", f"counter/{name}", value)
        return value

    def backup(self, fileobj: Any) -> None:
        """Write a consistent copy of the whole environment (a read snapshot) to ``fileobj``."""
        self.env.copyfd(fileobj.fileno())
