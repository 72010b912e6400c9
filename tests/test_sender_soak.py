"""Bounded kill -9 soak (``bench/soak.py``): a teller paying ERC-20 on anvil, SIGKILLed at
random moments, must pay every deposit exactly once, with gapless nonces and accounting equal
to the chain. The seed is printed (and fixed here) so a failure replays."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import run_soak
from tests.support.nodes import AnvilNode

pytestmark = pytest.mark.slow

SEED = 20261122


@pytest.mark.timeout(240)
def test_soak_sigkill_pays_every_deposit_exactly_once(tmp_path: Path,
                                                      anvil_node: AnvilNode) -> None:
    result = run_soak(anvil_node, tmp_path / "teller", deposits=60, kills=6, seed=SEED,
                      confirmations=2, done_timeout=120)
    print(result.report())
    assert result.kills == result.kills_survived == 6
    assert result.double_pays == 0, result.report()
    assert result.losses == 0, result.report()
    assert result.extra_transfers == 0 and not result.nonce_problems, result.report()
    assert result.not_done == 0 and result.accounting_ok, result.report()
    assert result.ok
