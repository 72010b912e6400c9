"""Polling waits for tests: one place that knows how long "too long" is.

Every timeout is multiplied by ``TELLER_TEST_TIMEOUT_FACTOR`` (env, default 1) so a slow CI
machine can stretch them all at once instead of each test growing its own sleeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timeout_factor() -> float:
    """The global stretch factor from ``TELLER_TEST_TIMEOUT_FACTOR`` (must be > 0)."""
    raw = os.environ.get("TELLER_TEST_TIMEOUT_FACTOR", "1")
    try:
        factor = float(raw)
    except ValueError:
        raise ValueError(f"TELLER_TEST_TIMEOUT_FACTOR must be a number, got {raw!r}") from None
    if factor <= 0:
        raise ValueError(f"TELLER_TEST_TIMEOUT_FACTOR must be > 0, got {raw!r}")
    return factor


def scaled(seconds: float) -> float:
    """``seconds`` stretched by the global factor."""
    return seconds * timeout_factor()


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Raises ``TimeoutError`` naming ``message`` (and the last exception the predicate raised,
    if any) after ``timeout`` × the global factor. Exceptions from the predicate count as
    "not yet", so it can poll a node that is still starting.
    """
    deadline = time.monotonic() + scaled(timeout)
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - "not ready yet" in any form
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {scaled(timeout):.1f}s waiting for "
                               f"{message}{detail}")
        time.sleep(interval)
