"""Where alerts go: a Redis list, a webhook, the log.

Redis follows viabtc's alertcenter contract (a JSON message pushed onto a list that a mailer
pops; viabtc's key is ``alert:message``), with ``LPUSH`` as the consumers here expect. The
webhook gets a POST of the same JSON, signed with HMAC-SHA256 over the exact body in
``X-Teller-Signature: sha256=<hex>`` so the receiver can check it came from us. Both deliver
from a background thread with a bounded queue and retry with capped exponential backoff; a
full queue drops the newest message (counted in ``dropped``), never blocks the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
from typing import Any

from .center import Alert

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Teller-Signature"


class Permanent(Exception):
    """A delivery that retrying cannot fix (e.g. the webhook answered 400)."""


class QueuedSink:
    """Delivers in one daemon thread; ``deliver`` raising retries with backoff."""

    name = "queued"

    def __init__(self, *, retries: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
                 queue_size: int = 1000) -> None:
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._queue: queue.Queue[Alert | None] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"alerts-{self.name}",
                                        daemon=True)
        self._thread.start()

    def deliver(self, alert: Alert) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def submit(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            self._deliver_with_retries(alert)

    def _deliver_with_retries(self, alert: Alert) -> None:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self.deliver(alert)
                self.delivered += 1
                return
            except Permanent as exc:
                log.warning("alert sink %s gave up on %s: %s", self.name, alert.kind, exc)
                break
            except Exception as exc:  # noqa: BLE001 - network errors of any library: retry
                if attempt == self.retries or self._stop.wait(delay):
                    log.warning("alert sink %s could not deliver %s after %d attempt(s): %s",
                                self.name, alert.kind, attempt + 1, exc)
                    break
                delay = min(delay * 2, self.max_backoff)
        self.failed += 1

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then stop retrying."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1.0)


class RedisSink(QueuedSink):
    name = "redis"

    def __init__(self, host: str, port: int, key: str, *, password: str = "",
                 timeout: float = 5.0, **kw: Any) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.key = key
        # No retries inside the client: this sink's own backoff decides (and is counted).
        self._redis = redis.Redis(host=host, port=port, password=password or None,
                                  socket_timeout=timeout, socket_connect_timeout=timeout,
                                  retry=Retry(NoBackoff(), 0))
        super().__init__(**kw)

    def deliver(self, alert: Alert) -> None:
        self._redis.lpush(self.key, json.dumps(alert.to_dict(), sort_keys=True))

    def close(self, timeout: float = 2.0) -> None:
        super().close(timeout)
        self._redis.close()


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Teller-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink(QueuedSink):
    name = "webhook"

    def __init__(self, url: str, secret: bytes, *, timeout: float = 5.0, **kw: Any) -> None:
        import requests

        self.url = url
        self.secret = secret
        self.timeout = timeout
        self._session = requests.Session()
        super().__init__(**kw)

    def deliver(self, alert: Alert) -> None:
        body = json.dumps(alert.to_dict(), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                   "User-Agent": f"teller-alerts ({alert.service})"}
        resp = self._session.post(self.url, data=body, headers=headers, timeout=self.timeout)
        if 200 <= resp.status_code < 300:
            return
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            raise Permanent(f"HTTP {resp.status_code}")
        raise RuntimeError(f"HTTP {resp.status_code}")

    def close(self, timeout: float = 2.0) -> None:
        super().close(timeout)
        self._session.close()


class LogSink:
    """Every alert as one log line (logger ``alerts``, which AlertHandler ignores)."""

    name = "log"

    def __init__(self) -> None:
        self._log = logging.getLogger("alerts")

    def submit(self, alert: Alert) -> None:
        extra = f" (+{alert.repeats} repeats)" if alert.repeats else ""
        self._log.warning("alert %s %s: %s%s", alert.state, alert.kind, alert.message, extra)

    def close(self, timeout: float = 2.0) -> None:
        pass

