"""Deduplication, rate limit and resolution of alerts; hands each message to every sink.

A *kind* names one condition ("scanner.BTC.unreachable", "log:exchanger.processor:payout ...").
The first ``fire`` of a kind is sent at once; repeats are counted and sent at most once per
``min_interval`` (with ``repeats`` = how many were held back). ``resolve`` of a kind the
operator was told is firing sends one "resolved" message at once; a firing that follows it
within ``min_interval`` is held like a repeat, so a flapping node costs at most one firing and
one resolved message per interval, not a flood.
Sinks deliver in their own threads: ``fire`` and ``resolve`` never block on I/O.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass
class Alert:
    """One message as every sink receives it (JSON: ``asdict``)."""

    kind: str
    state: str  # "firing" | "resolved"
    message: str
    service: str  # "teller" | "core"
    host: str
    time: int  # unix seconds
    repeats: int = 0  # firings held back by the rate limit since the last message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sink(Protocol):
    name: str

    def submit(self, alert: Alert) -> None: ...

    def close(self, timeout: float = 2.0) -> None: ...


@dataclass
class _State:
    sent: str = ""  # the state of the last message sent: what the operator believes
    last_sent: float = float("-inf")
    held: int = 0  # firings not yet reported
    message: str = ""


class AlertCenter:
    def __init__(self, sinks: Iterable[Sink], *, service: str = "teller",
                 min_interval: float = 60.0, clock: Callable[[], float] = time.time,
                 host: str | None = None) -> None:
        self.sinks = list(sinks)
        self.service = service
        self.min_interval = min_interval
        self.clock = clock
        self.host = host or socket.gethostname()
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self.sent = 0  # messages handed to the sinks (for tests and /metrics)
        self.suppressed = 0

    def fire(self, kind: str, message: str) -> bool:
        """Condition ``kind`` holds; True when a message went out (False: held back).

        Held back: a repeat within ``min_interval`` of the kind's last message, and also a
        firing that follows its own "resolved" that closely (a flapping condition costs at
        most one firing and one resolved message per interval; the repeats are counted).
        """
        now = self.clock()
        with self._lock:
            state = self._states.setdefault(kind, _State())
            state.message = message
            if now - state.last_sent < self.min_interval:
                state.held += 1
                self.suppressed += 1
                return False
            alert = Alert(kind, "firing", message, self.service, self.host, int(now), state.held)
            state.sent, state.last_sent, state.held = "firing", now, 0
            self.sent += 1
        self._dispatch(alert)
        return True

    def resolve(self, kind: str, message: str = "") -> bool:
        """Condition ``kind`` has ended; True when a "resolved" message went out (only when
        the last message said it was firing: a resolved is never rate-limited away)."""
        now = self.clock()
        with self._lock:
            state = self._states.get(kind)
            if state is None or state.sent != "firing":
                return False
            alert = Alert(kind, "resolved", message or f"resolved: {state.message}",
                          self.service, self.host, int(now), state.held)
            state.sent, state.last_sent, state.held = "resolved", now, 0
            self.sent += 1
        self._dispatch(alert)
        return True

    def firing(self) -> dict[str, str]:
        """Kinds the operator was last told are firing, with their last message."""
        with self._lock:
            return {k: s.message for k, s in self._states.items() if s.sent == "firing"}

    def _dispatch(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.submit(alert)
            except Exception as exc:  # noqa: BLE001 - one broken sink must not stop the others
                log.warning("alert sink %s refused a message: %s", sink.name, exc)

    def close(self, timeout: float = 2.0) -> None:
        for sink in self.sinks:
            sink.close(timeout)
