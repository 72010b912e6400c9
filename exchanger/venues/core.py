"""The core venue: a passthrough deposit buys the token on our exchange core (`teller core run`).

Over the core's viabtc JSON-RPC: optionally ``balance.update`` the deposit into the teller's
account (business ``"deposit"``, business id derived from the deposit key, so a retry is the
core's "repeat update", a no-op), then ONE ``order.put_market`` bid spending the deposit value.
A market order never rests: the answer is final, ``deal_stock − deal_fee`` is what was bought
(a bid's fee is taken in the stock), ``left`` is money the book could not absorb (thin book).

Exactly once: the core deduplicates nothing on ``order.put_market``, so the order carries the
intent's client id in its ``source`` (invisible to viabtc clients: it is a free-text field) and
``find`` looks it up in the teller account's finished orders. The processor persists the intent
before ``place`` and calls ``find`` before any second ``place`` (exchanger/passthrough.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from decimal import ROUND_DOWN, Decimal
from typing import Any

from matchengine.client import CoreClient, CoreError

from .base import (
    BuyIntent,
    OrderState,
    TooSmall,
    VenueError,
    VenueRejected,
    VenueUnavailable,
    VenueWait,
)

log = logging.getLogger(__name__)

BID = 2
PAGE = 101  # order.finished's largest page
PLACED_KEPT = 10_000  # client ids remembered by place()
# viabtc error codes of the write methods (reference/exchange-core.md §5)
_BALANCE_NOT_ENOUGH, _AMOUNT_TOO_SMALL, _NO_TRADER = 10, 11, 12
_REPEAT_UPDATE = 10
_TRANSPORT = (2, 3, 5)  # internal error (HTTP / network), back-pressure, service timeout


def business_id(deposit_key: str) -> int:
    """The credit's idempotency key on the core: 63 bits of sha256 of the deposit key, so a
    retried credit of the same deposit is the core's "repeat update" (code 10)."""
    return int.from_bytes(hashlib.sha256(deposit_key.encode()).digest()[:8], "big") >> 1


class CoreVenue:
    """A :class:`~exchanger.venues.base.Venue` on our exchange core."""

    name = "core"

    def __init__(self, client: CoreClient, *, user_id: int, taker_fee: Decimal,
                 credit_deposits: bool = True) -> None:
        self.client = client
        self.user_id = user_id
        self.taker_fee = taker_fee
        self.credit_deposits = credit_deposits
        self.markets: dict[str, dict[str, Any]] = {}  # market name -> market.list entry
        # Orders this process placed, by client id: a second place() answers from here
        # (after a restart the processor's find() covers the same case from the core).
        # Bounded: the processor records an order within a pass, then never places it again.
        self._placed: OrderedDict[str, OrderState] = OrderedDict()

    # -- Venue -----------------------------------------------------------------------------

    def prepare(self) -> None:
        markets = self._call("market.list", [])
        self.markets = {m["name"]: m for m in markets}

    def check(self, intent: BuyIntent) -> None:
        market = self._market(intent.market)
        spend = intent.spend.quantize(Decimal(1).scaleb(-market["stock_prec"]), ROUND_DOWN)
        if spend <= 0:
            raise TooSmall(f"{intent.spend} {market['money']} is below the {intent.market} "
                           f"order precision ({market['stock_prec']} decimals)")

    def find(self, intent: BuyIntent) -> OrderState | None:
        """The order whose ``source`` is the client id, among the account's finished bids on
        the market (a market order is finished as soon as it is acknowledged). Pages newest
        first, so a just-placed order is found on the first page; proving that an order does
        NOT exist reads the account's whole history on that market (101 per call) — the
        price of a core that deduplicates nothing, paid only for intents whose place may have
        happened (after a crash or a timeout)."""
        if intent.client_id in self._placed:
            return self._placed[intent.client_id]
        self._market(intent.market)
        offset = 0
        while True:
            page = self._call("order.finished", [self.user_id, intent.market, 0, 0, offset,
                                                 PAGE, BID])
            for record in page["records"]:
                if record.get("source") == intent.client_id:
                    log.info("order %s of %s found on the core by its client id %s",
                             record["id"], intent.deposit_key, intent.client_id)
                    return self._state(record)
            if len(page["records"]) < PAGE:
                return None
            offset += PAGE

    def place(self, intent: BuyIntent) -> OrderState:
        if intent.client_id in self._placed:
            return self._placed[intent.client_id]
        market = self._market(intent.market)
        amount = format(intent.spend, "f")
        if self.credit_deposits:
            try:
                self._call("balance.update", [
                    self.user_id, market["money"], "deposit", business_id(intent.deposit_key),
                    amount, {"deposit": intent.deposit_key}])
            except VenueRejected as exc:
                if getattr(exc, "code", None) != _REPEAT_UPDATE:
                    raise
        order = self._call("order.put_market", [
            self.user_id, intent.market, BID, amount, format(self.taker_fee, "f"),
            intent.client_id])
        state = self._state(order)
        self._remember(intent.client_id, state)
        return state

    def place_many(self, intents: list[BuyIntent]) -> list[OrderState | VenueError]:
        """``place`` for several intents in ONE JSON-RPC batch (the core applies the calls in
        order and commits them together: one fsync instead of two per deposit). One answer
        per intent; a transport failure raises VenueUnavailable (every outcome unknown)."""
        calls: list[tuple[str, list[Any]]] = []
        slots: list[int] = []  # index in calls of each intent's put_market, -1 = answered
        answers: dict[int, OrderState] = {}
        for index, intent in enumerate(intents):
            if intent.client_id in self._placed:
                answers[index] = self._placed[intent.client_id]
                slots.append(-1)
                continue
            market = self._market(intent.market)
            amount = format(intent.spend, "f")
            if self.credit_deposits:
                calls.append(("balance.update", [
                    self.user_id, market["money"], "deposit", business_id(intent.deposit_key),
                    amount, {"deposit": intent.deposit_key}]))
            slots.append(len(calls))
            calls.append(("order.put_market", [self.user_id, intent.market, BID, amount,
                                               format(self.taker_fee, "f"), intent.client_id]))
        results: list[Any] = []
        if calls:
            try:
                results = self.client.call_batch(calls)  # type: ignore[attr-defined]
            except CoreError as exc:
                raise _venue_error("batch", exc) from None
            except (OSError, ValueError) as exc:
                raise VenueUnavailable(f"core batch: {exc}") from None
        out: list[OrderState | VenueError] = []
        for index, (intent, slot) in enumerate(zip(intents, slots, strict=True)):
            if slot < 0:
                out.append(answers[index])
                continue
            result = results[slot]
            if isinstance(result, CoreError):
                out.append(_venue_error("order.put_market", result))
                continue
            state = self._state(result)
            self._remember(intent.client_id, state)
            out.append(state)
        return out

    def poll(self, intent: BuyIntent, order_id: str) -> OrderState:
        found = self.find(intent)
        if found is None or found.order_id != order_id:
            raise VenueUnavailable(f"order {order_id} of {intent.deposit_key} is not among the "
                                   "core's finished orders")
        return found

    # -- helpers ---------------------------------------------------------------------------

    def _remember(self, client_id: str, state: OrderState) -> None:
        self._placed[client_id] = state
        while len(self._placed) > PLACED_KEPT:
            self._placed.popitem(last=False)

    def _market(self, name: str) -> dict[str, Any]:
        if name not in self.markets:
            self.prepare()
        if name not in self.markets:
            raise VenueUnavailable(f"market {name!r} does not exist on the core "
                                   f"(it has {', '.join(sorted(self.markets)) or 'none'})")
        return self.markets[name]

    def _call(self, method: str, params: list[Any]) -> Any:
        try:
            return self.client.call(method, params)
        except CoreError as exc:
            raise _venue_error(method, exc) from None
        except (OSError, ValueError) as exc:  # a reply that is not JSON, a closed socket
            raise VenueUnavailable(f"core {method}: {exc}") from None

    @staticmethod
    def _state(order: dict[str, Any]) -> OrderState:
        """A finished market bid: bought = deal_stock − deal_fee (the fee is in the stock)."""
        stock, money = Decimal(order["deal_stock"]), Decimal(order["deal_money"])
        fee = Decimal(order["deal_fee"])
        price = (money / stock) if stock else Decimal(0)
        return OrderState(
            order_id=str(order["id"]), status="closed" if stock else "canceled", final=True,
            bought=stock - fee, fee=fee, spent=money, price=price.normalize(),
            original=json.dumps(order, sort_keys=True))


def _venue_error(method: str, exc: CoreError) -> VenueError:
    code, message = exc.code, exc.message
    text = f"core {method}: {message} (code {code})"
    if code in _TRANSPORT:
        return VenueUnavailable(text)
    if method == "order.put_market":
        if code == _NO_TRADER:
            return VenueWait(f"no asks on the core's book: {text}")
        if code == _BALANCE_NOT_ENOUGH:
            return VenueWait(f"the teller's core account cannot pay the order: {text}")
        if code == _AMOUNT_TOO_SMALL:
            return TooSmall(f"below the core's minimum order (best ask × min_amount): {text}")
    error = VenueRejected(text)
    error.code = code  # type: ignore[attr-defined]
    return error
