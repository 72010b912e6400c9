"""Per-chain scan position in LMDB: the cursor (height + hash) and the last K block hashes.

The cursor names the last block whose deposits are fully recorded. The recent hashes are what
a reorg is checked against, as ``electrum/synchronizer.py`` compares stored header hashes: on
a parent-hash mismatch, :func:`find_fork_point` walks back through them, asking the node for
its hash at each height, until both agree. Everything above that height was orphaned.

Keys in db ``"scanner"``, prefixed by the chain (``"ltc/"``, ``"eth/"``, ...):
``<chain>/cursor`` → ``{"height", "hash", "start"}`` and ``<chain>/hash/<height:012d>`` → hash.
A hash stored one above the cursor is a block whose deposits were being recorded when the
process stopped (see :meth:`CursorStore.begin`).
``start`` is the first height this data directory ever scanned (``initial_scan_height``); a
cursor hash of ``""`` means "nothing scanned yet at or above ``start``: do not check the
parent".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ReorgTooDeep

DEFAULT_KEEP = 200


@dataclass(frozen=True)
class Cursor:
    height: int  # last fully scanned block (start - 1 before the first one)
    hash: str  # its hash; "" = no block scanned yet, next block's parent is not checked
    start: int  # the first height ever scanned in this data directory

    @property
    def next_height(self) -> int:
        return self.height + 1


@dataclass(frozen=True)
class ForkPoint:
    cursor: Cursor  # where scanning resumes (the last block both chains share)
    orphaned: list[tuple[int, str]]  # (height, hash) of stored blocks no longer on the chain


class CursorStore:
    """The cursor and recent hashes of one chain. Each method is one write transaction."""

    def __init__(self, storage: Any, chain: str, keep: int = DEFAULT_KEEP) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.storage = storage
        self.prefix = f"{chain.lower()}/"
        self.keep = keep

    def _hash_key(self, height: int) -> str:
        return f"{self.prefix}hash/{height:012d}"

    def load(self) -> Cursor | None:
        """The stored cursor, or None for a fresh data directory."""
        with self.storage.read() as txn:
            raw = self.storage.get(txn, "scanner", f"{self.prefix}cursor")
        if raw is None:
            return None
        return Cursor(raw["height"], raw["hash"], raw["start"])

    def load_or_init(self, initial_height: int) -> Cursor:
        """The stored cursor; a fresh directory starts at ``initial_height`` (persisted, so a
        later change of ``initial_scan_height`` does not move a running chain)."""
        cursor = self.load()
        if cursor is not None:
            return cursor
        cursor = Cursor(initial_height - 1, "", initial_height)
        with self.storage.write() as txn:
            self._put_cursor(txn, cursor)
        return cursor

    def _put_cursor(self, txn: Any, cursor: Cursor) -> None:
        self.storage.put(txn, "scanner", f"{self.prefix}cursor",
                         {"height": cursor.height, "hash": cursor.hash, "start": cursor.start})

    def begin(self, cursor: Cursor, height: int, block_hash: str) -> None:
        """Block ``height`` is about to have its deposits recorded: store its hash first.

        Deposits are recorded in their own transactions, before :meth:`advance`. If the
        process dies in between and the block then leaves the chain, this hash (one above the
        cursor, see :meth:`interrupted`) is what lets the next poll orphan those deposits;
        without it nothing would remember which block they came from.
        """
        if height != cursor.height + 1:
            raise ValueError(f"cursor at {cursor.height} cannot record block {height}")
        with self.storage.write() as txn:
            self.storage.put(txn, "scanner", self._hash_key(height), block_hash)

    def interrupted(self, cursor: Cursor) -> str | None:
        """The hash :meth:`begin` stored above ``cursor`` and no :meth:`advance` followed."""
        with self.storage.read() as txn:
            return self.storage.get(txn, "scanner", self._hash_key(cursor.next_height))

    def advance(self, cursor: Cursor, height: int, block_hash: str) -> Cursor:
        """Block ``height`` is fully recorded: remember its hash and move the cursor onto it.

        Called only after the block's deposits are recorded (``record_deposit`` is
        idempotent), so a crash in between only replays the block (or, if the block left
        the chain meanwhile, orphans its deposits: :meth:`begin`).
        """
        if height != cursor.height + 1:
            raise ValueError(f"cursor at {cursor.height} cannot advance to {height}")
        new = Cursor(height, block_hash, cursor.start)
        with self.storage.write() as txn:
            self.storage.put(txn, "scanner", self._hash_key(height), block_hash)
            self.storage.delete(txn, "scanner", self._hash_key(height - self.keep))
            self._put_cursor(txn, new)
        return new

    def recent(self) -> list[tuple[int, str]]:
        """Stored (height, hash) pairs, newest first."""
        with self.storage.read() as txn:
            pairs = [(int(key.rsplit("/", 1)[1]), value)
                     for key, value in self.storage.items(txn, "scanner", f"{self.prefix}hash/")]
        pairs.reverse()
        return pairs

    def rewind(self, fork: Cursor) -> Cursor:
        """Move the cursor back to the fork point and forget the hashes above it."""
        with self.storage.write() as txn:
            for key, _ in list(self.storage.items(txn, "scanner", f"{self.prefix}hash/")):
                if int(key.rsplit("/", 1)[1]) > fork.height:
                    self.storage.delete(txn, "scanner", key)
            self._put_cursor(txn, fork)
        return fork


def find_fork_point(cursor: Cursor, recent: list[tuple[int, str]],
                    node_hash_at: Callable[[int], str | None]) -> ForkPoint:
    """Walk back from the newest stored block until the node's hash at that height agrees.

    ``node_hash_at(height)`` is the node's main-chain hash (None above its tip). Stored blocks
    passed on the way are orphaned. If none agrees and the oldest stored block is the very
    first one scanned, scanning restarts at ``cursor.start``; otherwise the fork is older than
    what is kept and :class:`ReorgTooDeep` is raised (nothing is changed).
    """
    orphaned: list[tuple[int, str]] = []
    for height, block_hash in recent:
        if node_hash_at(height) == block_hash:
            return ForkPoint(Cursor(height, block_hash, cursor.start), orphaned)
        orphaned.append((height, block_hash))
    oldest = recent[-1][0] if recent else cursor.start
    if oldest <= cursor.start:
        return ForkPoint(Cursor(cursor.start - 1, "", cursor.start), orphaned)
    raise ReorgTooDeep(
        f"none of the {len(recent)} stored block hashes (heights {oldest}..{cursor.height}) "
        f"is on the node's chain: the fork is deeper than the scanner keeps")
