"""The alert center: operator-facing events pushed to Redis, a webhook and the log.

``AlertCenter`` owns deduplication, the per-kind rate limit and the firing → resolved life of a
condition; ``sinks`` deliver messages in background threads (a caller never waits on the
network); ``handler.AlertHandler`` turns ERROR and ``notice=WATCH`` log records into alerts;
``settings`` reads the ``[alerts]`` section that config.toml and core.toml share, ``config``
builds the sinks it names.

``install``/``current`` hold the process's center, as ``logging`` holds its handlers, so code
that sees a condition end can say so (``resolve``) without being handed the center.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the package loads no sink (config parsing needs none)
    from .center import AlertCenter

_current: AlertCenter | None = None


def install(center: AlertCenter | None) -> None:
    """Make ``center`` the process's alert center (None removes it)."""
    global _current
    _current = center


def current() -> AlertCenter | None:
    return _current


def fire(kind: str, message: str) -> None:
    """Raise condition ``kind`` on the installed center (no center: nothing happens)."""
    if _current is not None:
        _current.fire(kind, message)


def resolve(kind: str, message: str = "") -> None:
    """Clear condition ``kind``: a "resolved" message if it was firing."""
    if _current is not None:
        _current.resolve(kind, message)


__all__ = ["install", "current", "fire", "resolve"]
