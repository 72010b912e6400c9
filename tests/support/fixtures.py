"""Function-scoped pytest fixtures, registered for every test by ``tests/conftest.py``.

``teller`` is a running dummy-mode teller (``tests.support.service.TellerHarness``) with the
base config, ``btcsim`` is a ``tools.btcsim.SimulatorHandle`` (in-process, Core 22 shape),
``litecoin_node`` a started ``LitecoinNode`` with 101 blocks mined to its wallet (spendable
coinbase), ``anvil_node`` a started ``AnvilNode`` (no automine). Every process is stopped in a
``finally``, whatever the test did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodes import AnvilNode, LitecoinNode
from tests.support.service import TellerHarness, start_teller
from tools.btcsim import SimulatorHandle, start_simulator


@pytest.fixture
def btcsim() -> Iterator[SimulatorHandle]:
    handle = start_simulator()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def litecoin_node(tmp_path: Path) -> Iterator[LitecoinNode]:
    node = LitecoinNode(tmp_path / "litecoind")
    try:
        node.start()
        node.generate(101)
        yield node
    finally:
        node.stop()


@pytest.fixture
def anvil_node(tmp_path: Path) -> Iterator[AnvilNode]:
    node = AnvilNode(tmp_path / "anvil")
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture
def teller(tmp_path: Path) -> Iterator[TellerHarness]:
    """A running dummy-mode teller with the base config; stopped after the test."""
    harness = start_teller(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
