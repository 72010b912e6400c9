"""The recent log events an operator must see: every ERROR and every ``notice=WATCH`` line.

A logging handler on the root logger keeps the last ``MAX_EVENTS`` of them in memory for the
operator console's overview (the log file stays the record; this is a window onto it).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from common.notices import for_operator

MAX_EVENTS = 200


class RecentEvents(logging.Handler):
    def __init__(self, maxlen: int = MAX_EVENTS) -> None:
        super().__init__(level=logging.INFO)
        self._events: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock_events = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break the caller
            return
        if not for_operator(record, message):
            return
        with self._lock_events:
            self._events.append({"at": int(record.created), "level": record.levelname,
                                 "logger": record.name, "message": message})

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock_events:
            return list(self._events)[::-1][:limit]


_installed: RecentEvents | None = None


def install() -> RecentEvents:
    """The process's handler, added to the root logger once (setup_logging runs before)."""
    global _installed
    root = logging.getLogger()
    if _installed is None:
        _installed = RecentEvents()
    if _installed not in root.handlers:
        root.addHandler(_installed)
    return _installed
