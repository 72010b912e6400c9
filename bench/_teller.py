"""Start a real ``teller run`` for a benchmark: dummy mode, fresh data dir, free ports.

Benchmarks measure the product as an operator runs it (a separate process, real HTTP), not
functions in isolation. The process comes from tests/support/process.py, as in the crash tests;
only the settings differ: no debug logging, and the regular confirmation poll at 1 s (wakes
do the rest).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from addrs.derive import deriver_from_seed  # noqa: E402
from tests.support.process import TellerProcess  # noqa: E402

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
BUYER = "2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW"


class BenchTeller(TellerProcess):
    """A started teller with ``addresses`` BTC deposit addresses in its pool."""

    def __init__(self, addresses: int, *, coins: str = "100000000",
                 max_outputs: int = 1, autoconfirm: bool = False,
                 config: dict[str, dict[str, object]] | None = None) -> None:
        deriver, _ = deriver_from_seed("BTC", MNEMONIC)
        super().__init__(Path(tempfile.mkdtemp(prefix="teller-bench-")),
                         deriver.addresses(0, addresses), config={
                             "": {"debug": False},
                             "sky_exchanger": {"tx_confirmation_check_wait": "1s"},
                             "sender": {"max_outputs": max_outputs},
                             "dummy": {"sender_coins": coins,
                                       "sender_autoconfirm": autoconfirm},
                             **(config or {})})
        self.start(timeout=30)
