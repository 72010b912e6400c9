"""Caches keep only accepted input (issue 14): refused strings must not stay in memory.

The Skycoin-address check cached every string it saw (65,536 entries of any length: distinct
1 MB addresses grew the teller by 500 MB), and the core's decimal parser did the same with
refused amounts. Measured with tracemalloc: memory still held after the calls return.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from addrs.validate import InvalidAddress, validate_skycoin_address
from common import decimals
from tests.support.service import SKY_ADDR

BIG = 100_000  # characters per refused string
COUNT = 200  # 20 MB of input in all


def _retained(call) -> int:
    """Bytes still allocated after ``call`` ran and its garbage was collected."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        call()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_refused_addresses_are_not_kept() -> None:
    def attack() -> None:
        for i in range(COUNT):
            with pytest.raises(InvalidAddress):
                validate_skycoin_address(f"{i:08d}" + "1" * BIG)  # '0' is not base58

    assert _retained(attack) < 1_000_000
    assert validate_skycoin_address(SKY_ADDR) == SKY_ADDR  # accepted ones still pass (cached)


def test_refused_amounts_are_not_kept() -> None:
    def attack() -> None:
        for i in range(COUNT):
            assert decimals.parse(f"{i}" + "9" * BIG, 8) is None  # over 100 characters

    assert _retained(attack) < 1_000_000
    assert decimals.parse("1.5", 8) == decimals.parse("1.5", 8)
