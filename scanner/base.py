"""The chain-independent scanner: poll loop, confirmations, cursor, reorg walk-back, health.

A node adapter (``scanner.bitcoind``, ``scanner.ethereum``) answers three questions — the tip
height, the main-chain hash at a height, and the blocks at a range of heights with the deposits
to watched addresses already picked out — and translates its client library's errors into
``scanner.errors``. Everything that must be the same on every chain lives here:

* **Confirmations.** ``confirmations_required = N`` means the block holding the deposit has N
  confirmations: block ``h`` is scanned once ``tip - h + 1 >= N``. A block-based scanner never
  sees mempool transactions, so N = 0 is treated as 1.
* **Crediting once.** A block with deposits has its hash stored first, then its deposits are
  recorded (idempotent by ``txid:n``), then the cursor moves onto the block. A crash in
  between replays the block, which changes nothing; if the block left the chain meanwhile,
  the stored hash makes the next poll orphan its deposits like any reorg.
* **Reorgs.** Each scanned block's parent must be the cursor hash, and each poll re-checks that
  the cursor block is still on the node's chain. On a mismatch the stored recent hashes are
  walked back to the fork point; deposits from orphaned blocks are handed to
  the ledger's intake (unpaid → ``cancelled``, paid → ``needs_review`` with a
  notice=WATCH log line) and scanning resumes above the fork point.
* **Outages.** Node errors back off exponentially with jitter (capped), keep the cursor, and
  show in :meth:`ChainScanner.health` until the next successful call.
"""

from __future__ import annotations

import abc
import logging
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from common import failpoints
from ledger.intake import DepositIntake
from ledger.store import Deposit

from .cursor import DEFAULT_KEEP, Cursor, CursorStore, find_fork_point
from .errors import ChainMoved, NodeRejected, NodeUnavailable, ReorgTooDeep

log = logging.getLogger(__name__)


@dataclass
class ScannedBlock:
    """One block as an adapter reports it: identity, parent, and deposits to watched addresses."""

    height: int
    hash: str
    parent: str
    deposits: list[Deposit] = field(default_factory=list)


@dataclass(frozen=True)
class ScanSettings:
    """How one chain is scanned (from its ``[<coin>_scanner]`` section)."""

    scan_period: float = 20.0
    initial_scan_height: int = 0
    confirmations_required: int = 1
    keep_hashes: int = DEFAULT_KEEP  # recent block hashes kept for the reorg walk-back
    batch_blocks: int = 10  # blocks fetched per round trip while catching up
    max_backoff: float = 30.0  # cap of the retry wait after node errors (seconds)

    @property
    def confirmations(self) -> int:
        """The effective depth: at least 1 (blocks, not mempool, are scanned)."""
        return max(1, self.confirmations_required)


class ChainScanner(abc.ABC):
    """Scans one chain in a thread; ``coins`` are the coin_types its deposits may carry."""

    def __init__(self, chain: str, coins: list[str], storage: Any, intake: DepositIntake,
                 settings: ScanSettings) -> None:
        self.chain = chain
        self.coins = list(coins)
        self.intake = intake
        self.settings = settings
        self.cursors = CursorStore(storage, chain, keep=settings.keep_hashes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.blocks_scanned = 0  # blocks whose deposits were recorded since construction
        cursor = self.cursors.load()
        self._health: dict[str, Any] = {
            "node_reachable": False, "tip": None,
            "cursor_height": cursor.height if cursor else None,
            "cursor_hash": cursor.hash if cursor else "",
            "lag_blocks": None, "confirmations_required": settings.confirmations,
            "last_error": "", "last_scan_at": None,
        }

    # -- what a node adapter provides ------------------------------------------------------

    @abc.abstractmethod
    def node_tip(self) -> int:
        """The node's best block height."""

    @abc.abstractmethod
    def node_hash_at(self, height: int) -> str | None:
        """The node's main-chain block hash at ``height``; None above the tip."""

    @abc.abstractmethod
    def fetch_blocks(self, heights: range) -> Iterable[ScannedBlock]:
        """The blocks at ``heights`` in order, deposits extracted. Raises ChainMoved when a
        height vanished during the fetch."""

    def close(self) -> None:
        """Release the adapter's connections (called from stop())."""
        return None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"scanner-{self.chain}",
                                        daemon=True)
        self._thread.start()
        log.info("%s scanner started (confirmations_required %d, scan_period %.3gs)",
                 self.chain, self.settings.confirmations, self.settings.scan_period)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("%s scanner did not stop within %.0fs", self.chain, timeout)
            self._thread = None
        self.close()

    def health(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._health)

    def _update_health(self, **changes: Any) -> None:
        with self._lock:
            self._health.update(changes)
            tip, height = self._health["tip"], self._health["cursor_height"]
            self._health["lag_blocks"] = (tip - height if tip is not None and height is not None
                                          else None)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                scanned = self.scan_once()
            except ChainMoved as exc:
                log.info("%s chain moved during a fetch (%s); polling again", self.chain, exc)
                self._stop.wait(min(self.settings.scan_period, 0.1))
                continue
            except (NodeUnavailable, NodeRejected) as exc:
                failures += 1
                self._update_health(node_reachable=False, last_error=str(exc))
                level = logging.ERROR if failures in (1, 10) or failures % 100 == 0 else \
                    logging.DEBUG
                log.log(level, "%s node error (attempt %d): %s; cursor kept, retrying",
                        self.chain, failures, exc,
                        extra={"alert_kind": f"scanner.{self.chain}.unreachable"})
            except ReorgTooDeep as exc:
                failures += 1
                self._update_health(last_error=str(exc))
                log.error("notice=WATCH %s scanner stopped advancing: %s", self.chain, exc)
            except Exception as exc:  # noqa: BLE001 - the loop must survive any bug
                failures += 1
                self._update_health(last_error=f"{type(exc).__name__}: {exc}")
                log.exception("%s scanner failed; retrying", self.chain)
            else:
                failures = 0
                if not scanned:
                    self._stop.wait(self.settings.scan_period)
                continue
            self._stop.wait(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        period = self.settings.scan_period
        cap = max(period, self.settings.max_backoff)
        return min(cap, period * 2 ** min(failures - 1, 20)) * random.uniform(0.5, 1.0)

    # -- one poll --------------------------------------------------------------------------

    def scan_once(self) -> int:
        """Scan every block that has enough confirmations; return how many were scanned.

        Raises the ``scanner.errors`` family; the cursor only ever moves onto a block whose
        deposits are recorded, or back to a fork point.
        """
        tip = self.node_tip()
        cursor = self.cursors.load_or_init(self.settings.initial_scan_height)
        self._update_health(node_reachable=True, tip=tip, cursor_height=cursor.height,
                            cursor_hash=cursor.hash, last_error="")
        cursor = self._check_cursor(cursor, tip)
        last = tip - self.settings.confirmations + 1
        scanned = 0
        while cursor.height < last and not self._stop.is_set():
            heights = range(cursor.next_height,
                            min(last, cursor.height + self.settings.batch_blocks) + 1)
            for block in self.fetch_blocks(heights):
                if cursor.hash and block.parent != cursor.hash:
                    log.warning("%s block %d %s does not extend %s: walking back",
                                self.chain, block.height, block.hash, cursor.hash)
                    cursor = self._reorg(cursor)
                    break
                if block.deposits:
                    self.cursors.begin(cursor, block.height, block.hash)
                    self._record(block.deposits)
                    failpoints.hit("scanner_after_record")
                cursor = self.cursors.advance(cursor, block.height, block.hash)
                scanned += 1
                self.blocks_scanned += 1
                self._update_health(cursor_height=cursor.height, cursor_hash=cursor.hash)
                if self._stop.is_set():
                    break
        self._update_health(last_scan_at=int(time.time()))
        return scanned

    def _check_cursor(self, cursor: Cursor, tip: int) -> Cursor:
        """A reorg may have replaced the cursor block without any new block above it yet
        (e.g. ``invalidateblock``): re-check it every poll. So is a block whose deposits were
        being recorded when the process stopped (``CursorStore.begin``)."""
        interrupted = self.cursors.interrupted(cursor)
        if interrupted is not None and self.node_hash_at(cursor.next_height) != interrupted:
            log.warning("%s block %d %s, interrupted while its deposits were recorded, is no "
                        "longer on the node's chain: walking back", self.chain,
                        cursor.next_height, interrupted)
            return self._reorg(cursor)
        if not cursor.hash:
            return cursor
        if cursor.height <= tip and self.node_hash_at(cursor.height) == cursor.hash:
            return cursor
        log.warning("%s cursor block %d %s is no longer on the node's chain (tip %d): "
                    "walking back", self.chain, cursor.height, cursor.hash, tip)
        return self._reorg(cursor)

    def _reorg(self, cursor: Cursor) -> Cursor:
        fork = find_fork_point(cursor, self.cursors.recent(), self.node_hash_at)
        if fork.orphaned:
            low, high = fork.orphaned[-1][0], fork.orphaned[0][0]
            reason = (f"chain reorganisation: {self.chain} blocks {low}..{high} left the chain "
                      f"(fork point at height {fork.cursor.height})")
            self._orphan([h for _, h in fork.orphaned], reason)
            log.warning("%s reorg: %d block(s) orphaned (heights %d..%d); rescanning from %d",
                        self.chain, len(fork.orphaned), low, high, fork.cursor.next_height)
        cursor = self.cursors.rewind(fork.cursor)
        self._update_health(cursor_height=cursor.height, cursor_hash=cursor.hash)
        return cursor

    def _orphan(self, hashes: list[str], reason: str) -> None:
        for coin in self.coins:
            self.intake.orphan(coin, hashes, reason)

    def _record(self, deposits: list[Deposit]) -> None:
        self.intake.record_all(deposits)
