"""Named crash points for the kill tests: the process SIGKILLs itself when it reaches one.

``TELLER_FAILPOINTS="after_payout_persisted"`` (comma-separated; ``name:N`` crashes on the Nth
hit) arms them. Unarmed, ``hit`` is a dictionary lookup. A crash leaves a marker file next to
the data directory's lock (``failpoint-<name>``) so a test can assert that the crash path
really ran, as Bitcoin Core's feature_dbcrash.py does.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

_armed: dict[str, int] = {}
_marker_dir: Path | None = None


def arm_from_env(marker_dir: str | os.PathLike[str] | None = None) -> None:
    global _marker_dir
    _armed.clear()
    for item in filter(None, os.environ.get("TELLER_FAILPOINTS", "").split(",")):
        name, _, count = item.strip().partition(":")
        _armed[name] = int(count or 1)
    _marker_dir = Path(marker_dir) if marker_dir else None


def hit(name: str) -> None:
    """Crash here (SIGKILL, no cleanup) if ``name`` is armed and its count is reached."""
    if name not in _armed:
        return
    _armed[name] -= 1
    if _armed[name] > 0:
        return
    if _marker_dir is not None:
        (_marker_dir / f"failpoint-{name}").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
