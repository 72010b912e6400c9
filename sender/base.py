"""The contract every payout backend keeps, and the errors it may raise.

The exchanger pays through this interface only, in three separate steps so that exactly-once
holds across crashes:

1. ``build(outputs)`` creates and signs a transaction (it may ask the node for inputs, fees or
   a nonce, but must not broadcast anything);
2. the exchanger persists the returned ``SignedPayout`` (txid + raw bytes) and calls
   ``commit_built`` inside that same LMDB transaction, so backend state such as the next nonce
   advances atomically with the payout record;
3. ``broadcast(signed)`` sends those exact bytes. It is idempotent: a node answering "already
   known" / "already in chain" / "nonce too low" for *our* txid is success. After a crash the
   exchanger calls it again with the same bytes; a backend never rebuilds on its own.

Where a build does not depend on the node having seen the previous payout, ``build_ahead``
lets the exchanger persist several payouts in one commit and send them with
``broadcast_many`` (the dummy chain does; Skycoin and ERC-20 go one at a time).

``tx_state`` reports what the chain says about a payout; only ``CONFIRMED`` finishes deposits,
and ``FAILED``/``CONFLICTED``/``DROPPED`` send them to an operator, never back to "payable".
``replace`` (optional) re-signs a stuck payout with the same nonce and a higher fee; the
exchanger persists it as another candidate before broadcasting it, and whichever candidate
confirms completes the payout.
Backends translate their library's exceptions into the ``SenderError`` family here; nothing
above ``sender/`` catches web3 or requests exceptions.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class PayoutOutput:
    """One payment inside a payout transaction."""

    address: str  # the buyer's receive address
    amount: int  # payout token base units (droplets for SKY)
    deposit_key: str  # the deposit this output pays


@dataclass(frozen=True)
class SignedPayout:
    """A built, signed transaction: everything needed to broadcast it again byte for byte."""

    txid: str
    raw: str  # backend encoding of the signed transaction (hex or JSON)
    outputs: tuple[PayoutOutput, ...]
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"nonce": 7}

    def to_json(self) -> dict[str, Any]:
        return {
            "txid": self.txid,
            "raw": self.raw,
            "outputs": [{"address": o.address, "amount": o.amount, "deposit_key": o.deposit_key}
                        for o in self.outputs],
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedPayout:
        return cls(txid=data["txid"], raw=data["raw"],
                   outputs=tuple(PayoutOutput(o["address"], int(o["amount"]), o["deposit_key"])
                                 for o in data["outputs"]),
                   meta=dict(data.get("meta") or {}))


class TxState(StrEnum):
    UNKNOWN = "unknown"  # the node has never seen it (not broadcast yet, or forgotten)
    PENDING = "pending"  # in the mempool, or mined with fewer confirmations than required
    CONFIRMED = "confirmed"  # mined and buried deep enough
    FAILED = "failed"  # mined but did nothing (ERC-20 receipt status 0)
    CONFLICTED = "conflicted"  # its inputs or nonce were used by another transaction
    DROPPED = "dropped"  # known to be gone from the node and unlikely to return


@dataclass(frozen=True)
class Balance:
    """Spendable balance of the hot wallet, in payout token base units."""

    coins: int
    hours: int | None = None  # Skycoin coin hours; None for other backends


class SenderError(Exception):
    """Something went wrong talking to the payout backend; retried with backoff."""

    kind = "error"


class NodeUnavailable(SenderError):
    """The node/wallet could not be reached or answered garbage: wait and retry."""

    kind = "unavailable"


class InsufficientFunds(SenderError):
    """The hot wallet cannot pay this payout now ("sold out"); smaller payouts may still go."""

    kind = "insufficient"


class BroadcastRejected(SenderError):
    """The node refused this exact transaction for a reason that retrying will not fix."""

    kind = "rejected"


class Sender(abc.ABC):
    """A payout backend. Implementations must be safe to call from one worker thread."""

    name: str = "abstract"
    token: str = "SKY"  # what /api/health and accounting call the payout unit
    decimals: int = 6  # base units per token = 10**decimals
    max_outputs: int = 1  # outputs per transaction; > 1 only where the chain allows batching
    # Payouts that may be built and persisted (one commit) before the first is broadcast; > 1
    # only where a build does not depend on the node having seen the previous payout (a
    # wallet choosing unspent outputs, a nonce read from the node, do).
    build_ahead: int = 1
    confirms_on_broadcast: bool = False  # a pretend chain that confirms at once: check right away
    # A transaction the node no longer knows may still be mined later: anyone holding its bytes
    # can send it again while its nonce or inputs are unused. Only our own dummy chain is sure.
    forgotten_can_return: bool = True

    @abc.abstractmethod
    def balance(self) -> Balance:
        """Spendable balance now (raises SenderError when it cannot be known)."""

    @abc.abstractmethod
    def build(self, outputs: list[PayoutOutput], payout_id: str) -> SignedPayout:
        """Create and sign a transaction paying ``outputs``. Must not broadcast."""

    def commit_built(self, storage: Any, txn: Any, signed: SignedPayout) -> None:  # noqa: B027
        """Persist backend state that must move with the payout record (default: none)."""

    @abc.abstractmethod
    def broadcast(self, signed: SignedPayout) -> None:
        """Send exactly these bytes. "Already known" for our txid is success."""

    def broadcast_many(self, payouts: list[SignedPayout]) -> list[SenderError | None]:
        """Broadcast in order; one result per payout tried (None: accepted).

        Stops after a ``NodeUnavailable``: payouts past the returned results were not tried.
        Backends whose node takes many transactions at once override this.
        """
        results: list[SenderError | None] = []
        for signed in payouts:
            try:
                self.broadcast(signed)
            except NodeUnavailable as exc:
                results.append(exc)
                break
            except SenderError as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    @abc.abstractmethod
    def tx_state(self, signed: SignedPayout) -> TxState:
        """What the chain says about this payout now."""

    def replace(self, signed: SignedPayout) -> SignedPayout | None:
        """A fee-bumped replacement for a payout stuck unmined, or None.

        The replacement spends the same nonce (or inputs) so at most one of them can ever be
        mined; it must not be broadcast here. None when the backend cannot replace, when the
        original is already mined, or when the fee cap leaves no room.
        """
        return None

    def validate_address(self, address: str) -> str:
        """Validate a buyer's receive address for this token; return its stored form."""
        return _skycoin_validator()(address)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


@functools.cache
def _skycoin_validator() -> Callable[[str], str]:
    # Imported on first use (addrs pulls in bip_utils), then kept: an import statement per call
    # takes the interpreter's import lock on the hottest API path.
    from addrs.validate import validate_skycoin_address

    return validate_skycoin_address
