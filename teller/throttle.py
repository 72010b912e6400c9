"""Per-client request throttling for the public API (``web.throttle_max`` per ``throttle_duration``).

A token bucket per (client IP, path): it holds up to ``throttle_max`` requests and refills at
``throttle_max / throttle_duration`` per second, so a client gets at most ``throttle_max``
requests in a burst and that rate on average. ``web.behind_proxy`` decides whether the client
IP comes from ``X-Forwarded-For`` (only then: otherwise anyone could pick their own bucket).

At most ``max_clients`` buckets are kept, the least recently used dropped first (dict order is
recency: a bucket is re-inserted on each request), so many client IPs cost bounded memory and
O(1) per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    def __init__(self, max_requests: int, duration: float,
                 clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000) -> None:
        self.max_requests = max_requests
        self.max_clients = max_clients
        self.duration = duration
        self.rate = max_requests / duration if duration > 0 else 0.0
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_requests > 0

    def allow(self, client: str, path: str) -> bool:
        if not self.enabled:
            return True
        now = self.clock()
        key = (client, path)
        with self._lock:
            buckets = self._buckets
            tokens, last = buckets.pop(key, (float(self.max_requests), now))
            tokens = min(float(self.max_requests), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            while len(buckets) > self.max_clients:
                del buckets[next(iter(buckets))]
            return allowed


def client_ip(remote_addr: str | None, forwarded_for: str | None, behind_proxy: bool) -> str:
    if behind_proxy and forwarded_for:
        return forwarded_for.split(",")[0].strip()
    return remote_addr or ""
