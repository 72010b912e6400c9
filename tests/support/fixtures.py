"""Function-scoped pytest fixtures for chain back-ends; test modules import them explicitly:

    from tests.support.fixtures import btcsim, litecoin_node, anvil_node  # noqa: F401

``btcsim`` is a ``tools.btcsim.SimulatorHandle`` (in-process, Core 22 shape),
``litecoin_node`` a started ``LitecoinNode`` with 101 blocks mined to its wallet (spendable
coinbase), ``anvil_node`` a started ``AnvilNode`` (no automine). Every process is stopped in a
``finally``, whatever the test did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nodes import AnvilNode, LitecoinNode
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
