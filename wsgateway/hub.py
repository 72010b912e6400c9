"""Subscriptions and pushes: which connections want what, and what they were last sent.

Every push source is a `Topic` (kind + key, e.g. ("depth", ("BTCUSDT", 20, "0"))) shared by
all its subscribers, so a payload is built and encoded once per dialect, not once per client.
Pushes are event-driven: the core's durable events mark topics dirty; a dirty topic is
refreshed by querying the core (order.depth, market.deals, ...), and the answer is compared
with what the subscribers were last sent. Only `order.update` is taken from the events
themselves.

A market's public topics refresh together as one `Group`: one batch of queries to the core,
then every push of the round is queued in the same loop iteration, so a subscriber of a
market's depth and deals gets both in one socket write (the writes, not the bytes, are what
a fan-out costs). A group refreshes one batch at a time; events that arrive meanwhile fold
into one more round (under load, many events share a query). It refreshes at most once per
`push_interval` ([ws], default 20 ms): the first event after a quiet spell is pushed at once,
a stream of events in slices of that length. That bounds the fan-out work per market
whatever the order rate, at a cost of at most one interval of latency.

Three views change with time alone: a kline's new bucket (a flat candle at the last close), the
24 h window of `state` sliding past old deals, and `today` at midnight. No core event marks
them, so the clock does: `tick()` (every `CLOCK_INTERVAL`, from the gateway) re-reads those
topics, and only a changed answer is pushed (viabtc re-reads every view every 0.5 s).

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
ON_CLOCK = frozenset({"kline", "state", "today"})  # their answers change with time alone
CLOCK_INTERVAL = 1.0


class Topic:
    __slots__ = ("kind", "key", "market", "subs", "pending", "last", "clean_at", "full")

    def __init__(self, kind: str, key: Any, market: str | None) -> None:
        self.kind = kind
        self.key = key
        self.market = market
        self.subs: set[Any] = set()  # connections that have the current state
        self.pending: set[Any] = set()  # joined since the last refresh: full state first
        self.last: Any = None
        self.clean_at = 0.0
        self.full = False  # deals: the query in flight asks for the last 100 (a new subscriber)


class Group:
    """Topics refreshed together: all public topics of one market (their queries go to the
    core in one batch and their pushes leave in one socket write per connection), or one
    private topic."""

    __slots__ = ("dirty", "busy", "next_at")

    def __init__(self) -> None:
        self.dirty: set[Topic] = set()
        self.busy = False
        self.next_at = 0.0  # monotonic time before which the group does not refresh again


class Hub:
    """All topics of one gateway; runs in the gateway's event loop only."""

    def __init__(self, core: Core, clock: Callable[[], float] = time.time,
                 push_interval: float = 0.02) -> None:
        self.core = core
        self.clock = clock
        self.push_interval = push_interval
        self.topics: dict[tuple[str, Any], Topic] = {}
        self.by_market: dict[str, set[Topic]] = {}
        self.groups: dict[Any, Group] = {}
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
        if not topic.subs and not topic.pending:
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

    def tick(self) -> None:
        """The clock's event: re-read the topics whose answers change with time alone."""
        for topics in self.by_market.values():
            for topic in topics:
                if topic.kind in ON_CLOCK and topic.subs:
                    self._schedule(topic)

    # -- refreshing --------------------------------------------------------------------------

    def _schedule(self, topic: Topic) -> None:
        key = topic.market if topic.market is not None else (topic.kind, topic.key)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group()
        group.dirty.add(topic)
        if not group.busy:
            group.busy = True
            asyncio.get_running_loop().create_task(self._refresh(key, group))

    async def _refresh(self, key: Any, group: Group) -> None:
        try:
            while group.dirty:
                wait = group.next_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                live = self.topics
                due = [t for t in group.dirty if live.get((t.kind, t.key)) is t]
                group.dirty = set()
                plans = [(topic, PLAN[topic.kind](self, topic)) for topic in due]
                calls = [call for _, topic_calls in plans for call in topic_calls]
                try:
                    results = await self.core.call_many(calls) if calls else []
                except Exception as exc:  # the core's side failed as a whole: the next event retries
                    log.warning("refresh of %s failed: %s", key, exc)
                    results = [CoreError(3, "service unavailable")] * len(calls)
                at = 0
                for topic, topic_calls in plans:
                    answers, at = results[at:at + len(topic_calls)], at + len(topic_calls)
                    self._apply(topic, answers)
                group.next_at = time.monotonic() + self.push_interval
        finally:
            group.busy = False
            if not group.dirty:
                self.groups.pop(key, None)

    def _apply(self, topic: Topic, answers: list[Any]) -> None:
        failed = next((a for a in answers if isinstance(a, CoreError)), None)
        if failed is not None:  # the core is stopping or busy: the next event retries
            log.info("refresh of %s %s failed: %s", topic.kind, topic.key, failed)
            return
        try:
            APPLY[topic.kind](self, topic, *answers)
        except Exception:
            log.exception("refresh of %s %s failed notice=WATCH", topic.kind, topic.key)

    def _take_pending(self, topic: Topic) -> set:
        joined = topic.pending
        topic.pending = set()
        topic.subs |= joined
        return joined

    # Each kind: `_plan_<kind>` names the core calls, `_apply_<kind>` pushes from the answers.

    def _plan_depth(self, topic: Topic) -> list:
        return [("order.depth", list(topic.key))]

    def _apply_depth(self, topic: Topic, book: Any) -> None:
        market, limit, _ = topic.key
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

    def _plan_deals(self, topic: Topic) -> list:
        topic.full = bool(topic.pending or not topic.last)
        if topic.full:
            return [("market.deals", [topic.key, DEALS_ON_SUBSCRIBE, 0])]
        return [("market.deals", [topic.key, DEALS_PER_REFRESH, topic.last])]

    def _apply_deals(self, topic: Topic, rows: list) -> None:
        market = topic.key
        last_id = topic.last or 0
        if topic.pending and not topic.full:
            # joined while the query ran: they need the last 100, not only the new deals
            joined: set = set()
            self._schedule(topic)
        else:
            joined = self._take_pending(topic)
        new = [row for row in rows if row["id"] > last_id]
        old = topic.subs - joined
        if new and old:
            self._push(topic, old, [market, new])
        if joined and rows:
            self._push(topic, joined, [market, rows])
        if rows:
            topic.last = max(last_id, rows[0]["id"])

    def _plan_kline(self, topic: Topic) -> list:
        market, interval = topic.key
        now = int(self.clock())
        return [("market.kline", [market, max(1, now - interval), now, interval])]

    def _apply_kline(self, topic: Topic, rows: list) -> None:
        self._changed(topic, rows[-1] if rows else None, rows, skip_empty=not rows)

    def _plan_price(self, topic: Topic) -> list:
        return [("market.last", [topic.key])]

    def _apply_price(self, topic: Topic, price: Any) -> None:
        nonzero = price not in (None, "0", "") and any(c in "123456789" for c in price)
        self._changed(topic, price, [topic.key, price], skip_empty=not nonzero)

    def _plan_state(self, topic: Topic) -> list:
        return [("market.status", [topic.key, 86400])]

    def _apply_state(self, topic: Topic, status: Any) -> None:
        self._changed(topic, status, [topic.key, status])

    def _plan_today(self, topic: Topic) -> list:
        return [("market.status_today", [topic.key])]

    def _apply_today(self, topic: Topic, status: Any) -> None:
        self._changed(topic, status, [topic.key, status])

    def _plan_asset(self, topic: Topic) -> list:
        return [("balance.query", list(topic.key))]

    def _apply_asset(self, topic: Topic, balance: Any) -> None:
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


KINDS = ("depth", "deals", "kline", "price", "state", "today", "asset")
PLAN: dict[str, Callable[[Hub, Topic], list]] = {k: getattr(Hub, f"_plan_{k}") for k in KINDS}
APPLY: dict[str, Callable[..., None]] = {k: getattr(Hub, f"_apply_{k}") for k in KINDS}
