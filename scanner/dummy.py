"""The dummy scanner: deposits injected by hand through the dummy HTTP API.

Where the Go teller pushed them into an in-memory channel (lost on restart, 503 when full), a
dummy deposit here is recorded in the same LMDB transaction discipline as a real one before the
HTTP answer: a 200 means the deposit is persisted and will be paid exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from addrs.validate import InvalidAddress, normalize_deposit_address
from ledger.intake import DepositIntake
from ledger.records import DepositRecord
from ledger.store import Deposit, NoBinding


class DummyDepositError(ValueError):
    """Bad dummy input; the message is the Go teller's plain-text answer."""


@dataclass
class DummyScanner:
    intake: DepositIntake
    network_for: Any  # Callable[[str], str]
    pool_coin_for: Any  # Callable[[str], str]: ERC-20 tokens use ETH addresses

    def deposit(self, coin: str, addr: str, value: int, height: int, tx: str,
                n: int) -> tuple[DepositRecord, bool]:
        pool_coin = self.pool_coin_for(coin)
        try:
            address = normalize_deposit_address(pool_coin, addr, self.network_for(coin))
        except InvalidAddress:
            raise DummyDepositError("invalid addr") from None
        dep = Deposit(coin_type=coin, address=address, value=value, height=height, tx=tx, n=n,
                      block_hash=f"dummy-{height}")
        try:
            return self.intake.record(dep)
        except NoBinding:
            raise DummyDepositError("addr is not a bound deposit address") from None
