"""Read-only queries over the deposit store's indexes for the operator console.

Paging, filtering and search work on the index keys the store keeps in every transaction
(``deposits_by_status`` ``<status>/<seq:016x>``, ``deposits_by_address``, ``sky_index``) and
decode only the records of the page asked for, so a page of 100,000 deposits costs a walk over
index keys, not 100,000 JSON decodes. Totals come from the per-(coin, status) counters.
Pages are newest first (highest ``seq``). Nothing here writes.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .status import STORED_STATUSES, Status

MAX_LIMIT = 500
# A txid prefix shorter than this would match too much to be a search.
MIN_TXID_PREFIX = 6
MAX_TXID_MATCHES = 1000
# The per-day table and the overview's accounting read every record: on a busy teller the
# database changes all the time, so they are recomputed at most this often.
SCAN_CACHE_SECONDS = 30.0


class ScanCache:
    """A value computed by reading every deposit, kept until the database changed *and*
    ``seconds`` have passed: on a busy teller every request would otherwise rescan."""

    def __init__(self, seconds: float = SCAN_CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._value: tuple[int, float, Any] | None = None

    def get(self, version: int, compute: Callable[[], Any]) -> tuple[Any, float]:
        """(value, wall-clock time it was computed)."""
        cached = self._value
        if cached is None or (cached[0] != version
                              and time.monotonic() - cached[1] >= self.seconds):
            cached = self._value = (version, time.monotonic(), (compute(), time.time()))
        return cached[2]


@dataclass(frozen=True)
class DepositFilter:
    status: Status | None = None
    coin_type: str = ""
    q: str = ""  # receive address, deposit address (exact) or txid (prefix)

    def matches(self, key: str, record: dict[str, Any] | None = None) -> bool:
        if self.coin_type and not key.startswith(self.coin_type + "/"):
            return False
        return record is None or self.status is None or record["status"] == self.status


def _reversed_index(txn: Any, db: Any, prefix: str) -> Iterator[tuple[int, bytes]]:
    """(seq, raw JSON deposit key) of ``<prefix><seq:016x>`` index entries, highest seq first.

    The value stays undecoded: most entries walked are skipped, not shown."""
    raw = prefix.encode()
    cursor = txn.cursor(db=db)
    # Every key under the prefix sorts before prefix + 0xff.
    if cursor.set_range(raw + b"\xff"):
        if not cursor.prev():
            return
    elif not cursor.last():
        return
    while True:
        key = cursor.key()
        if not key.startswith(raw):
            return
        yield int(key[len(raw):], 16), bytes(cursor.value())
        if not cursor.prev():
            return


class DepositQuery:
    """Pages, exports and daily totals of the deposits in one Storage."""

    def __init__(self, storage: Any, store: Any) -> None:
        self.storage = storage
        self.store = store
        self._daily_cache = ScanCache()

    # -- keys ------------------------------------------------------------------------------

    def _indexed_keys(self, txn: Any, flt: DepositFilter, skip: int = 0) -> Iterator[str]:
        """Deposit keys newest first, after skipping ``skip`` matching ones.

        Unfiltered, seq is dense (1..N: deposits are never deleted and their seq comes from a
        counter in the same transaction), so the page starts at seq N - skip and each seq is
        found by probing the status index: O(page), not O(offset). A status or coin filter
        walks the status index backwards (merged across statuses by seq) on raw keys."""
        st = self.storage
        db = st.db("deposits_by_status")
        top = st.get(txn, "meta", "counter/deposit_seq") or 0
        if flt.status is None and not flt.coin_type and self._total(flt) == top:
            prefixes = [str(s).encode() + b"/" for s in STORED_STATUSES]
            for seq in range(top - skip, 0, -1):
                suffix = f"{seq:016x}".encode()
                for prefix in prefixes:
                    raw = txn.get(prefix + suffix, db=db)
                    if raw is not None:
                        yield json.loads(bytes(raw))
                        break
            return
        statuses = [flt.status] if flt.status is not None else list(STORED_STATUSES)
        merged = heapq.merge(*(_reversed_index(txn, db, f"{s}/") for s in statuses),
                             reverse=True)
        coin = b'"' + flt.coin_type.encode() + b"/" if flt.coin_type else b""
        for _, raw in merged:
            if coin and not raw.startswith(coin):
                continue
            if skip:
                skip -= 1
                continue
            yield json.loads(raw)

    def _search_keys(self, txn: Any, q: str) -> list[tuple[int, str]]:
        """(seq, key) of deposits whose receive address, deposit address or txid matches
        ``q``, newest first. A txid prefix stops at MAX_TXID_MATCHES deposits (real txids
        are random: a prefix matching more than that is not a search)."""
        st = self.storage
        found: dict[str, int] = {}

        def by_address(prefix: str) -> None:
            for index_key, key in st.items(txn, "deposits_by_address", prefix):
                found[key] = int(index_key.rsplit("/", 1)[1], 16)

        for _, bkey in st.items(txn, "sky_index", f"{q}/"):
            by_address(f"{bkey}/")  # binding key "<COIN>/<deposit address>"
        coins = {coin for coin, _ in self.store.counts()}
        for coin in sorted(coins):
            by_address(f"{coin}/{q}/")
            if len(q) >= MIN_TXID_PREFIX and ":" not in q and "/" not in q:
                matched = 0
                for key, record in st.items(txn, "deposits", f"{coin}/{q}"):
                    found[key] = record["seq"]
                    matched += 1
                    if matched >= MAX_TXID_MATCHES:
                        break
        return sorted(((seq, key) for key, seq in found.items()), reverse=True)

    def _total(self, flt: DepositFilter) -> int:
        counts = self.store.counts()
        return sum(n for (coin, status), n in counts.items()
                   if (not flt.coin_type or coin == flt.coin_type)
                   and (flt.status is None or status == flt.status))

    # -- public ----------------------------------------------------------------------------

    def page(self, flt: DepositFilter, offset: int, limit: int) -> dict[str, Any]:
        """{"deposits": [...], "total", "offset", "limit"}: records newest first."""
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, offset)
        st = self.storage
        with st.read() as txn:
            if flt.q:
                records = [st.get(txn, "deposits", k) for _, k in self._search_keys(txn, flt.q)]
                matching = [r for r in records if r is not None and flt.matches(
                    f"{r['coin_type']}/{r['deposit_id']}", r)]
                total = len(matching)
                page = matching[offset:offset + limit]
            else:
                keys = list(itertools.islice(self._indexed_keys(txn, flt, offset), limit))
                page = [st.get(txn, "deposits", k) for k in keys]
                total = self._total(flt)
        return {"deposits": page, "total": total, "offset": offset, "limit": limit}

    def iter_all(self, flt: DepositFilter, chunk: int = 500) -> Iterator[dict[str, Any]]:
        """Every matching record newest first, read in short transactions of ``chunk``
        records, so a slow download never holds a read transaction open."""
        st = self.storage
        with st.read() as txn:
            if flt.q:
                keys = [k for _, k in self._search_keys(txn, flt.q)]
            else:
                keys = list(self._indexed_keys(txn, flt))
        for start in range(0, len(keys), chunk):
            with st.read() as txn:
                records = [st.get(txn, "deposits", k) for k in keys[start:start + chunk]]
            for record in records:
                if record is not None and flt.matches(
                        f"{record['coin_type']}/{record['deposit_id']}", record):
                    yield record

    def detail(self, key: str) -> dict[str, Any] | None:
        """The full record with its payout (signed candidates, attempts), or None."""
        st = self.storage
        with st.read() as txn:
            record = st.get(txn, "deposits", key)
            if record is None:
                return None
            payout = st.get(txn, "payouts", record["payout_id"]) if record.get(
                "payout_id") else None
        return {"deposit": record, "payout": payout}

    def daily(self, days: int = 30) -> dict[str, Any]:
        """Deposits received (by ``created_at``) and payouts sent (by broadcast time) per UTC
        day, counts and base-unit sums, for the last ``days`` days that had any. Recomputed
        after a write, at most every SCAN_CACHE_SECONDS."""
        table, _ = self._daily_cache.get(self.storage.version(), self._compute_daily)
        keep = sorted(table)[-days:]
        return {"days": [{"day": d, **table[d]} for d in keep]}

    def _compute_daily(self) -> dict[str, Any]:
        st = self.storage
        table: dict[str, Any] = {}

        def day_of(ts: int) -> dict[str, Any]:
            day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
            row: dict[str, Any] = table.setdefault(
                day, {"received": 0, "received_value": {}, "sent": 0, "sent_value": 0})
            return row

        with st.read() as txn:
            broadcast_at = {pid: p.get("broadcast_at") or p.get("created_at") or 0
                            for pid, p in st.items(txn, "payouts")}
            for _, record in st.items(txn, "deposits"):
                row = day_of(record["created_at"])
                row["received"] += 1
                coin = record["coin_type"]
                row["received_value"][coin] = row["received_value"].get(coin, 0) + \
                    record["deposit_value"]
                sent_at = broadcast_at.get(record.get("payout_id") or "")
                if record.get("txid") and sent_at:
                    sent = day_of(sent_at)
                    sent["sent"] += 1
                    sent["sent_value"] += record["sky_sent"]
        return table
