"""In-process event bus: the engine publishes viabtc's messages, history and market data
subscribe. The interface (publish / subscribe by topic) is what a Kafka-like log would offer,
so a distributed implementation can replace this class later.

Topics: `deals` (14-field array), `orders` ({event, order, stock, money}), `balances`
([time, user, asset, business, change]) exactly as viabtc's Kafka topics, plus
`balance_history` ([time, user, asset, business, change, balance, detail]) for the rows viabtc
writes to its history database directly. Delivery is synchronous, in publish order.

Publishers ask `wants(topic[, event])` before building a message: a message nobody subscribed
to is never built (an `orders` subscriber may take only some events, e.g. finished orders).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

TOPICS = ("deals", "orders", "balances", "balance_history")
ORDER_EVENTS = frozenset({1, 2, 3})  # put, update, finish


class EventBus:
    """Synchronous topic fan-out."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[tuple[Callable[[Any], None], frozenset[int] | None]]] = {}
        self._watchers: list[Callable[[EventBus], None]] = []

    def subscribe(self, topic: str, callback: Callable[[Any], None],
                  events: Iterable[int] | None = None) -> None:
        """`events` (orders topic only): deliver just these order events."""
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}; topics are {', '.join(TOPICS)}")
        wanted = None
        if events is not None:
            wanted = frozenset(events)
            if topic != "orders" or not wanted or not wanted <= ORDER_EVENTS:
                raise ValueError("events filters the orders topic by event 1, 2 or 3")
        self._subscribers.setdefault(topic, []).append((callback, wanted))
        for watcher in self._watchers:
            watcher(self)

    def wants(self, topic: str, event: int | None = None) -> bool:
        """Whether a message on `topic` (with this order `event`) would reach anybody."""
        for _, wanted in self._subscribers.get(topic, ()):
            if wanted is None or event is None or event in wanted:
                return True
        return False

    def watch(self, watcher: Callable[[EventBus], None]) -> None:
        """Call `watcher(bus)` now and after every subscription (publishers cache `wants`)."""
        self._watchers.append(watcher)
        watcher(self)

    def publish(self, topic: str, message: Any) -> None:
        for callback, wanted in self._subscribers.get(topic, ()):
            if wanted is None or message["event"] in wanted:
                callback(message)
