"""Read-only queries over the deposit store's indexes for the operator console.

Paging, filtering and search work on the index keys the store keeps in every transaction
(``deposits_by_status`` ``<status>/<seq:016x>``, ``deposits_by_address``, ``sky_index``) and
decode only the records of the page asked for, so a page of 100,000 deposits costs a walk over
index keys, not 100,000 JSON decodes. Totals come from the per-(coin, status) counters.
Pages are newest first (highest ``seq``). Nothing here writes.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .status import STORED_STATUSES, Status

MAX_LIMIT = 500
# A txid prefix shorter than this would match too much to be a search.
MIN_TXID_PREFIX = 6


@dataclass(frozen=True)
class DepositFilter:
    status: Status | None = None
    coin_type: str = ""
    q: str = ""  # receive address, deposit address (exact) or txid (prefix)

    def matches(self, key: str, record: dict[str, Any] | None = None) -> bool:
        if self.coin_type and not key.startswith(self.coin_type + "/"):
            return False
        return record is None or self.status is None or record["status"] == self.status


def _reversed_index(txn: Any, db: Any, prefix: str) -> Iterator[tuple[int, str]]:
    """(seq, deposit key) of ``<prefix><seq:016x>`` index entries, highest seq first."""
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
        yield int(key[len(raw):], 16), json.loads(bytes(cursor.value()))
        if not cursor.prev():
            return


class DepositQuery:
    """Pages, exports and daily totals of the deposits in one Storage."""

    def __init__(self, storage: Any, store: Any) -> None:
        self.storage = storage
        self.store = store
        self._daily_cache: tuple[int, dict[str, Any]] | None = None

    # -- keys ------------------------------------------------------------------------------

    def _indexed_keys(self, txn: Any, flt: DepositFilter) -> Iterator[str]:
        """Deposit keys newest first from the status index (all statuses merged by seq)."""
        db = self.storage.db("deposits_by_status")
        statuses = [flt.status] if flt.status is not None else list(STORED_STATUSES)
        merged = heapq.merge(*(_reversed_index(txn, db, f"{s}/") for s in statuses),
                             reverse=True)
        for _, key in merged:
            if flt.matches(key):
                yield key

    def _search_keys(self, txn: Any, q: str) -> set[str]:
        """Keys of deposits whose receive address, deposit address or txid matches ``q``."""
        st = self.storage
        found: set[str] = set()
        for _, bkey in st.items(txn, "sky_index", f"{q}/"):
            coin, _, address = bkey.partition("/")
            found.update(k for _, k in st.items(txn, "deposits_by_address", f"{coin}/{address}/"))
        coins = {coin for coin, _ in self.store.counts()}
        for coin in coins:
            found.update(k for _, k in st.items(txn, "deposits_by_address", f"{coin}/{q}/"))
            if len(q) >= MIN_TXID_PREFIX and ":" not in q and "/" not in q:
                found.update(k for k, _ in st.items(txn, "deposits", f"{coin}/{q}"))
        return found

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
                records = [st.get(txn, "deposits", k) for k in self._search_keys(txn, flt.q)]
                records = [r for r in records if r is not None and flt.matches(
                    f"{r['coin_type']}/{r['deposit_id']}", r)]
                records.sort(key=lambda r: r["seq"], reverse=True)
                total = len(records)
                page = records[offset:offset + limit]
            else:
                keys = []
                for i, key in enumerate(self._indexed_keys(txn, flt)):
                    if i >= offset + limit:
                        break
                    if i >= offset:
                        keys.append(key)
                page = [st.get(txn, "deposits", k) for k in keys]
                total = self._total(flt)
        return {"deposits": page, "total": total, "offset": offset, "limit": limit}

    def iter_all(self, flt: DepositFilter, chunk: int = 500) -> Iterator[dict[str, Any]]:
        """Every matching record newest first, read in short transactions of ``chunk``
        records, so a slow download never holds a read transaction open."""
        st = self.storage
        with st.read() as txn:
            if flt.q:
                keys = sorted(self._search_keys(txn, flt.q), reverse=True)
            else:
                keys = list(self._indexed_keys(txn, flt))
        for start in range(0, len(keys), chunk):
            with st.read() as txn:
                records = [st.get(txn, "deposits", k) for k in keys[start:start + chunk]]
            if flt.q:
                records.sort(key=lambda r: r["seq"] if r else 0, reverse=True)
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
        day, counts and base-unit sums, for the last ``days`` days that had any. Cached until
        the next write to the database."""
        version = self.storage.version()
        if self._daily_cache is None or self._daily_cache[0] != version:
            self._daily_cache = (version, self._compute_daily())
        table = self._daily_cache[1]
        keep = sorted(table)[-days:]
        return {"days": [{"day": d, **table[d]} for d in keep]}

    def _compute_daily(self) -> dict[str, Any]:
        st = self.storage
        table: dict[str, Any] = {}

        def day_of(ts: int) -> dict[str, Any]:
            day = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
            return table.setdefault(day, {"received": 0, "received_value": {}, "sent": 0,
                                          "sent_value": 0})

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
