"""Prometheus text for the exchange core's ``GET /metrics`` (served by rpcserver.py).

Counters of orders and deals (the engine's id counters: every order and deal since the data
directory began), their rates over the last ``WINDOW`` seconds of scrapes, the writer's queue
depth and batches waiting for the disk, operation-log commit latency (each commit is one LMDB
fsync), and the age of the last snapshot this process wrote (or of the process, before its
first one). Read from the HTTP loop thread without locks: every value is one int or float.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

WINDOW = 60.0


class CoreMetrics:
    def __init__(self, service: Any) -> None:
        self.service = service
        self.started = time.time()
        self._samples: deque[tuple[float, int, int]] = deque()
        self._lock = threading.Lock()

    def _rates(self, orders: int, deals: int) -> tuple[float, float]:
        now = time.monotonic()
        with self._lock:
            self._samples.append((now, orders, deals))
            while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
                self._samples.popleft()
            t0, orders0, deals0 = self._samples[0]
        elapsed = now - t0
        if elapsed <= 0:
            return 0.0, 0.0
        return (orders - orders0) / elapsed, (deals - deals0) / elapsed

    def render(self) -> str:
        service = self.service
        engine = service.engine
        orders, deals = engine.order_id, engine.deal_id
        orders_rate, deals_rate = self._rates(orders, deals)
        stats = service.commit_stats
        written = service.snapshot_written_at
        snapshot_age = time.time() - (written if written is not None else self.started)
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, value: Any) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
                          f"{name} {value}"])

        metric("core_orders_total", "counter", "Orders placed (limit and market) ever.", orders)
        metric("core_deals_total", "counter", "Deals (trades) executed ever.", deals)
        metric("core_orders_per_second", "gauge",
               f"Orders placed per second over the last {int(WINDOW)} s of scrapes.",
               f"{orders_rate:.3f}")
        metric("core_deals_per_second", "gauge",
               f"Deals per second over the last {int(WINDOW)} s of scrapes.", f"{deals_rate:.3f}")
        metric("core_write_queue_depth", "gauge", "Request groups waiting for the writer.",
               service._queue.qsize())
        metric("core_commits_pending", "gauge", "Writer batches waiting for their fsync.",
               service._handed_over - service._committed)
        lines += ["# HELP core_commit_seconds Operation-log commits (one fsync each).",
                  "# TYPE core_commit_seconds summary",
                  f"core_commit_seconds_sum {stats.seconds:.6f}",
                  f"core_commit_seconds_count {stats.count}"]
        metric("core_commit_seconds_max", "gauge", "Slowest operation-log commit since start.",
               f"{stats.max_seconds:.6f}")
        metric("core_operation_id", "gauge", "Last operation applied.", service.oper_id)
        metric("core_snapshot_age_seconds", "gauge",
               "Seconds since this process last wrote a snapshot (since start before one).",
               int(snapshot_age))
        metric("core_failed", "gauge", "1 once a commit failed and the core stopped writing.",
               int(service._failed == "commit failed"))
        return "\n".join(lines) + "\n"
