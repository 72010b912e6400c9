"""A dummy-mode teller serving the repository's ``web/`` folder, for the web page tests.

``web_teller`` is the ``teller`` fixture with ``web.static_dir`` pointing at ``web/``, all ten
BTC pool addresses, and ``dead_after = "1s"`` so a payout the node forgot is held for review
within a second or two. ``pay`` runs one deposit to ``done``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.service import BTC_ADDRESSES, TellerHarness, start_teller

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
WEB_OVERRIDES = f"""
[web]
static_dir = "{WEB_DIR}"
[sender]
dead_after = "1s"
"""


@pytest.fixture
def web_teller(tmp_path: Path) -> Iterator[TellerHarness]:
    harness = start_teller(tmp_path, WEB_OVERRIDES, btc_addresses=BTC_ADDRESSES)
    try:
        yield harness
    finally:
        harness.close()


def pay(t: TellerHarness, skyaddr: str, value: int, tx: str) -> str:
    """Bind, deposit, confirm, wait for ``done``; returns the payout txid."""
    addr = t.bind(skyaddr)
    count = len(t.broadcasts()) + 1
    t.deposit(addr, value, tx)
    txid = t.wait_broadcasts(count)[-1]["txid"]
    t.confirm(txid)
    t.wait_status(skyaddr, ["done"])
    return txid
