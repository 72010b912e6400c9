"""Subscriptions and pushes: which connections want what, and what they were last sent.

Every push source is a `Topic` (kind + key, e.g. ("depth", ("BTCUSDT", 20, "0"))) shared by
all its subscribers, so a payload is built and encoded once per dialect, not once per client.
Pushes are event-driven: the core's durable events mark topics dirty; a dirty topic is
refreshed by querying the core (order.depth, market.deals, ...), and the answer is compared
with what the subscribers were last sent. A topic refreshes one query at a time; events that
arrive meanwhile fold into one more refresh (under load, many events share a query). Only
`order.update` is taken from the events themselves.

A topic refreshes at most once per `push_interval` ([ws], default 20 ms): the first event
after a quiet spell is pushed at once, a stream of events is pushed in slices of that length.
That bounds the fan-out work per topic (1,000 subscribers cost ~5 ms of writes per push)
whatever the order rate, at a cost of at most one interval of latency.

A connection that joined a topic since its last refresh is "pending": the next refresh sends
it the full state (viabtc: a clean depth snapshot, the last 100 deals, the current price/state)
while established subscribers get only what changed. So a subscriber never sees a diff against
a state it was not sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from marketdata.depth import depth_diff
from matchengine.errors import CoreError
from wsgateway.core import Core
from wsgateway.frames import text_frame

log = logging.getLogger(__name__)

CLEAN_INTERVAL = 60.0  # viabtc CLEAN_INTERVAL: a full depth snapshot at least this often
DEALS_ON_SUBSCRIBE = 100
DEALS_PER_REFRESH = 10_000  # marketdata keeps 10,000 per market
PUBLIC = ("depth", "kline", "price", "state", "today", "deals")
ON_DEALS = frozenset({"kline", "price", "state", "today", "deals"})  # depth follows orders


class Topic:
    __slots__ = ("kind", "key", "market", "subs", "pending", "last", "busy", "again",
                 "clean_at", "next_at")

    def __init__(self, kind: str, key: Any, market: str | None) -> None:
        self.kind = kind
        self.key = key
        self.market = market
        self.subs: set[Any] = set()  # connections that have the current state
        self.pending: set[Any] = set()  # joined since the last refresh: full state first
        self.last: Any = None
        self.busy = False
        self.again = False
        self.clean_at = 0.0
        self.next_at = 0.0  # monotonic time before which the topic does not refresh again


class Hub:
    """All topics of one gateway; runs in the gateway's event loop only."""

    def __init__(self, core: Core, clock: Callable[[], float] = time.time,
                 push_interval: float = 0.02) -> None:
        self.core = core
        self.clock = clock
        self.push_interval = push_interval
        self.topics: dict[tuple[str, Any], Topic] = {}
        self.by_market: dict[str, set[Topic]] = {}
        self.pushes = 0  # messages queued to connections (bench and tests read it)

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, conn: Any, kind: str, key: Any) -> None:
        topic = self.topics.get((kind, key))
        if topic is None:
            market = key if isinstance(key, str) else key[0] if kind in PUBLIC else None
            topic = self.topics[(kind, key)] = Topic(kind, key, market)
            if market is not None:
                self.by_market.setdefault(market, set()).add(topic)
        if conn in topic.subs or conn in topic.pending:
            return
        if kind in ("order", "asset"):
            topic.subs.add(conn)  # nothing is sent on subscribe (as viabtc)
        else:
            topic.pending.add(conn)
            self._schedule(topic)

    def unsubscribe(self, conn: Any, kind: str, key: Any) -> None:
        topic = self.topics.get((kind, key))
        if topic is None:
            return
        topic.subs.discard(conn)
        topic.pending.discard(conn)
        if not topic.subs and not topic.pending and not topic.busy:
            self._forget(topic)

    def _forget(self, topic: Topic) -> None:
        self.topics.pop((topic.kind, topic.key), None)
        if topic.market is not None:
            same = self.by_market.get(topic.market)
            if same is not None:
                same.discard(topic)

    def resync(self) -> None:
        """After events were lost (the stream from a remote core broke, or the hand-over queue
        overflowed): every public subscriber gets the full state again; private subscribers'
        balances are re-sent (order events in the gap cannot be recovered)."""
        for topic in list(self.topics.values()):
            if topic.kind == "order":
                continue
            if topic.kind != "asset":
                topic.pending |= topic.subs
                topic.subs.clear()
            self._schedule(topic)

    # -- events ------------------------------------------------------------------------------

    def on_events(self, events: list[tuple[str, Any]]) -> None:
        """Durable core events, in commit order."""
        orders_in: set[str] = set()
        deals_in: set[str] = set()
        assets: set[tuple[int, str]] = set()
        topics = self.topics
        for name, message in events:
            if name == "orders":
                order = message["order"]
                market, user = order["market"], order["user"]
                orders_in.add(market)
                assets.add((user, message["stock"]))
                assets.add((user, message["money"]))
                topic = topics.get(("order", (user, market)))
                if topic is not None and topic.subs:
                    self._push(topic, topic.subs, [message["event"], order])
            elif name == "deals":
                deals_in.add(message[1])
            elif name == "balances":
                assets.add((message[1], message[2]))
        for market in orders_in:
            for topic in self.by_market.get(market, ()):
                if topic.kind == "depth":
                    self._schedule(topic)
        for market in deals_in:
            for topic in self.by_market.get(market, ()):
                if topic.kind in ON_DEALS:
                    self._schedule(topic)
        for key in assets:
            topic = topics.get(("asset", key))
            if topic is not None:
                self._schedule(topic)

    # -- refreshing --------------------------------------------------------------------------

    def _schedule(self, topic: Topic) -> None:
        if topic.busy:
            topic.again = True
            return
        topic.busy = True
        asyncio.get_running_loop().create_task(self._refresh(topic))

    async def _refresh(self, topic: Topic) -> None:
        try:
            while True:
                wait = topic.next_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                topic.again = False
                try:
                    await REFRESH[topic.kind](self, topic)
                except CoreError as exc:  # the core is stopping or busy: the next event retries
                    log.info("refresh of %s %s failed: %s", topic.kind, topic.key, exc)
                except Exception:
                    log.exception("refresh of %s %s failed notice=WATCH", topic.kind, topic.key)
                topic.next_at = time.monotonic() + self.push_interval
                if not topic.again:
                    break
        finally:
            topic.busy = False
            if not topic.subs and not topic.pending:
                self._forget(topic)

    async def _query(self, method: str, params: list) -> Any:
        result = (await self.core.call_many([(method, params)]))[0]
        if isinstance(result, CoreError):
            raise result
        return result

    def _take_pending(self, topic: Topic) -> set:
        joined = topic.pending
        topic.pending = set()
        topic.subs |= joined
        return joined

    async def _depth(self, topic: Topic) -> None:
        market, limit, interval = topic.key
        book = await self._query("order.depth", [market, limit, interval])
        joined = self._take_pending(topic)
        now = time.monotonic()
        if topic.last is None or now - topic.clean_at >= CLEAN_INTERVAL:
            topic.clean_at = now
            self._push(topic, topic.subs, [True, book, market])
        else:
            diff = depth_diff(topic.last, book, limit)
            old = topic.subs - joined
            if diff and old:
                self._push(topic, old, [False, diff, market])
            if joined:
                self._push(topic, joined, [True, book, market])
        topic.last = book

    async def _deals(self, topic: Topic) -> None:
        market = topic.key
        last_id = topic.last or 0
        if topic.pending or not last_id:
            rows = await self._query("market.deals", [market, DEALS_ON_SUBSCRIBE, 0])
        else:
            rows = await self._query("market.deals", [market, DEALS_PER_REFRESH, last_id])
        joined = self._take_pending(topic)
        new = [row for row in rows if row["id"] > last_id]
        old = topic.subs - joined
        if new and old:
            self._push(topic, old, [market, new])
        if joined and rows:
            self._push(topic, joined, [market, rows])
        if rows:
            topic.last = max(last_id, rows[0]["id"])

    async def _kline(self, topic: Topic) -> None:
        market, interval = topic.key
        now = int(self.clock())
        rows = await self._query("market.kline", [market, max(1, now - interval), now, interval])
        self._changed(topic, rows[-1] if rows else None, rows, skip_empty=not rows)

    async def _price(self, topic: Topic) -> None:
        price = await self._query("market.last", [topic.key])
        nonzero = price not in (None, "0", "") and any(c in "123456789" for c in price)
        self._changed(topic, price, [topic.key, price], skip_empty=not nonzero)

    async def _state(self, topic: Topic) -> None:
        status = await self._query("market.status", [topic.key, 86400])
        self._changed(topic, status, [topic.key, status])

    async def _today(self, topic: Topic) -> None:
        status = await self._query("market.status_today", [topic.key])
        self._changed(topic, status, [topic.key, status])

    async def _asset(self, topic: Topic) -> None:
        user, asset = topic.key
        balance = await self._query("balance.query", [user, asset])
        if balance != topic.last and topic.subs:
            self._push(topic, topic.subs, [balance])
        topic.last = balance

    def _changed(self, topic: Topic, value: Any, params: list, skip_empty: bool = False) -> None:
        """Push `params` to established subscribers if `value` changed, to new ones always
        (unless there is nothing to show yet)."""
        joined = self._take_pending(topic)
        old = topic.subs - joined
        if old and value != topic.last and not skip_empty:
            self._push(topic, old, params)
        if joined and not skip_empty:
            self._push(topic, joined, params)
        topic.last = value

    # -- fan-out -----------------------------------------------------------------------------

    def _push(self, topic: Topic, conns: set, params: list) -> None:
        """Encode once per dialect, queue to each connection (a full queue drops that one)."""
        encoded: dict[Any, bytes | None] = {}
        for conn in list(conns):
            dialect = conn.dialect
            frame = encoded.get(dialect, b"")
            if frame == b"":
                payload = dialect.encode(topic.kind, topic.key, params)
                frame = encoded[dialect] = text_frame(payload) if payload is not None else None
            if frame is not None:
                conn.send_frame(frame)
                self.pushes += 1

    def replace(self, conn: Any, kind: str, keys: set, cap: int) -> None:
        """viabtc's `<kind>.subscribe`: this connection's `kind` subscriptions become `keys`.
        Over `cap` subscriptions in all: CoreError 1 and nothing changes."""
        current = conn.subs.get(kind, set())
        total = sum(len(k) for k in conn.subs.values()) - len(current) + len(keys)
        if total > cap:
            raise CoreError(1, f"invalid argument: more than {cap} subscriptions")
        for key in current - keys:
            self.unsubscribe(conn, kind, key)
        for key in keys - current:
            self.subscribe(conn, kind, key)
        if keys:
            conn.subs[kind] = set(keys)
        else:
            conn.subs.pop(kind, None)

    def add(self, conn: Any, kind: str, keys: set, cap: int) -> None:
        """CONNMIX's subscribe: add `keys` to this connection's `kind` subscriptions."""
        self.replace(conn, kind, conn.subs.get(kind, set()) | keys, cap)

    def remove(self, conn: Any, kind: str, keys: set) -> None:
        self.replace(conn, kind, conn.subs.get(kind, set()) - keys, 1 << 62)

    def drop(self, conn: Any) -> None:
        """Forget a closed connection everywhere."""
        for kind, keys in conn.subs.items():
            for key in keys:
                self.unsubscribe(conn, kind, key)
        conn.subs.clear()


REFRESH: dict[str, Callable[[Hub, Topic], Any]] = {
    "depth": Hub._depth, "deals": Hub._deals, "kline": Hub._kline, "price": Hub._price,
    "state": Hub._state, "today": Hub._today, "asset": Hub._asset,
}
