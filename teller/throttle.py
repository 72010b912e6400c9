"""Per-client request throttling for the public API (``web.throttle_max`` per ``throttle_duration``).

A token bucket per (client IP, path): it holds up to ``throttle_max`` requests and refills at
``throttle_max / throttle_duration`` per second, so a client gets at most ``throttle_max``
requests in a burst and that rate on average. ``web.behind_proxy`` decides whether the client
IP comes from ``X-Forwarded-For`` (only then: otherwise anyone could pick their own bucket).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    def __init__(self, max_requests: int, duration: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_requests = max_requests
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
            tokens, last = self._buckets.get(key, (float(self.max_requests), now))
            tokens = min(float(self.max_requests), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # forget idle clients (their buckets are full)
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if now - v[1] < self.duration}
            return True


def client_ip(remote_addr: str | None, forwarded_for: str | None, behind_proxy: bool) -> str:
    if behind_proxy and forwarded_for:
        return forwarded_for.split(",")[0].strip()
    return remote_addr or ""
