"""In-process event bus: the engine publishes viabtc's messages, history and market data
subscribe. The interface (publish / subscribe by topic) is what a Kafka-like log would offer,
so a distributed implementation can replace this class later.

Topics: `deals` (14-field array), `orders` ({event, order, stock, money}), `balances`
([time, user, asset, business, change]) exactly as viabtc's Kafka topics, plus
`balance_history` ([time, user, asset, business, change, balance, detail]) for the rows viabtc
writes to its history database directly. Delivery is synchronous, in publish order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

TOPICS = ("deals", "orders", "balances", "balance_history")


class EventBus:
    """Synchronous topic fan-out."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Callable[[Any], None]]] = defaultdict(list)

    def subscribe(self, topic: str, callback: Callable[[Any], None]) -> None:
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}; topics are {', '.join(TOPICS)}")
        self._subscribers[topic].append(callback)

    def publish(self, topic: str, message: Any) -> None:
        for callback in self._subscribers.get(topic, ()):
            callback(message)
