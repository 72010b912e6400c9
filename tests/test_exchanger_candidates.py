"""A payout with replacements is as far along as its best candidate (one nonce, one winner)."""

from __future__ import annotations

import pytest

from exchanger.processor import combined_state
from sender.base import PayoutOutput, SignedPayout, TxState

C, P, U, D, F, X = (TxState.CONFIRMED, TxState.PENDING, TxState.UNKNOWN, TxState.DROPPED,
                    TxState.FAILED, TxState.CONFLICTED)


def candidates(n: int) -> list[SignedPayout]:
    out = (PayoutOutput("buyer", 1, "BTC/aa:0"),)
    return [SignedPayout(txid=f"tx{i}", raw="", outputs=out) for i in range(n)]


@pytest.mark.parametrize("states, expected", [
    ([P], (P, "tx0")),
    ([X, C], (C, "tx1")),  # the replacement was mined; the original lost the nonce
    ([X, P], (P, "tx1")),  # replacement mined, not buried yet
    ([P, U], (P, "tx0")),  # replacement persisted but not sent yet (crash)
    ([U, D], (U, "tx0")),  # the node forgot both: resend
    ([F, X], (F, "tx0")),  # our original was mined and reverted: review, not "conflicted"
    ([X, X], (X, "tx0")),  # another transaction took the nonce: review
])
def test_combined_state(states: list[TxState], expected: tuple[TxState, str]) -> None:
    assert combined_state(candidates(len(states)), states) == expected
