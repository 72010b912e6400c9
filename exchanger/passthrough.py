"""Passthrough buying: a deposit buys the token on a venue, exactly once, then is paid what it bought.

``waiting_decide → waiting_passthrough → waiting_passthrough_order_complete → waiting_send``,
each step a compare-and-set (``DepositStore.apply_moves``), with the Go teller's
``passthrough`` object filled (``exchange_name``, ``sky_bought``, ``deposit_value_spent``,
``requested_amount``, ``order{...}``) plus what Go lacked: ``fee``, ``leftover``, ``attempt``,
``market``, ``placing_at``.

At most one order per deposit (the venue interface, exchanger/venues/base.py):

- entering ``waiting_passthrough`` persists the intent — client id ``teller-<seq>-<attempt>``
  and ``placing_at`` (a ``place`` may happen from now on) — in one commit, BEFORE ``place``;
- an intent this process persisted and has not placed yet is in memory (``_unplaced``): only
  those are placed without asking the venue first. Any other intent with ``placing_at`` set
  (a restart after a crash, a ``place`` that timed out) is looked up with ``find`` first;
  found, it is recorded; not found, it is placed again (same client id) only once
  ``settle_wait`` has passed since ``placing_at`` — a request still queued in the venue could
  otherwise land after the lookup;
- an answer that proves no order exists (empty book, rejection) sets ``placing_at`` back to 0;
  a rejection with nothing filled moves to a new attempt (new client id).

An empty book or an unfunded venue account waits with a persisted backoff (visible in
``/api/health``), never fails the deposit and never blocks other markets; a venue outage stops
the pass and backs off. No venue call is made inside a DB transaction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any

from common import failpoints
from ledger.records import DepositRecord
from ledger.status import Status
from ledger.store import DepositStore, Move, deposit_key

from .venues.base import (
    BuyIntent,
    OrderState,
    TooSmall,
    Venue,
    VenueError,
    VenueRejected,
    VenueUnavailable,
    VenueWait,
)

log = logging.getLogger(__name__)

BELOW_MINIMUM = "below_minimum"
SCAN_LIMIT = 20_000  # records of one status read per pass to find the due ones


@dataclass
class PassthroughSettings:
    markets: dict[str, str]  # deposit coin -> market on the venue
    minimum: dict[str, Decimal] = field(default_factory=dict)  # coin -> whole coins
    settle_wait: float = 60.0
    check_order_wait: float = 2.0
    retry_base: float = 1.0
    retry_max_wait: float = 300.0
    wait_max: float = 10.0  # an empty book is asked again at least this often
    batch: int = 200  # deposits placed per pass (each pass ends with one recording commit)


def client_id(seq: int, attempt: int) -> str:
    return f"teller-{seq}-{attempt}"


def intent_of(record: DepositRecord) -> BuyIntent:
    """The persisted intent of a deposit in waiting_passthrough(_order_complete)."""
    pt = record["passthrough"]
    return BuyIntent(deposit_key=deposit_key(record["coin_type"], record["deposit_id"]),
                     coin=record["coin_type"], market=pt["market"],
                     spend=Decimal(pt["requested_amount"]),
                     client_id=pt["order"]["customer_id"], attempt=pt["attempt"])


def _fixed(fields: dict[str, Any]) -> Callable[[DepositRecord], dict[str, Any]]:
    """Changes that do not depend on the record."""
    return lambda _record: fields


def _merge(record: DepositRecord, changes: dict[str, Any],
           order: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """Fields for apply_moves: ``passthrough`` (and its ``order``) merged into the current
    record's, plus top-level fields."""
    pt = {**record["passthrough"], **changes}
    pt["order"] = {**record["passthrough"]["order"], **(order or {})}
    return {"passthrough": pt, **top}


class PassthroughBuyer:
    """The passthrough stages of the exchanger's pass (called by ``Exchanger.step``)."""

    def __init__(self, store: DepositStore, venue: Venue, settings: PassthroughSettings,
                 coin_decimals: Callable[[str], int], token_decimals: int,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.venue = venue
        self.settings = settings
        self.coin_decimals = coin_decimals
        self.token_decimals = token_decimals
        self.clock = clock
        self.venue_error = ""  # the venue is unreachable: shown in /api/health
        self.orders_placed = 0
        self._unplaced: set[str] = set()  # client ids persisted by this process, not placed
        self._prepared = False

    # -- decide: waiting_decide -> waiting_passthrough (the intent) ----------------------------

    def decide(self, records: list[DepositRecord]) -> bool:
        """Persist an intent for each passthrough deposit (one commit), or finish it below the
        minimum volume."""
        now = self.store.now()
        moves: list[Move] = []
        for record in records:
            key = deposit_key(record["coin_type"], record["deposit_id"])
            coin = record["coin_type"]
            value = Decimal(record["deposit_value"]).scaleb(-self.coin_decimals(coin))
            minimum = self.settings.minimum.get(coin, Decimal(0))
            market = self.settings.markets.get(coin)
            if value < minimum:
                error = (f"deposit of {value} {coin} is below the passthrough minimum volume of "
                         f"{minimum} {coin}: not bought, not paid")
                moves.append((key, Status.WAITING_DECIDE,
                              [Status.WAITING_PASSTHROUGH, Status.DONE],
                              _fixed({"error": error, "error_kind": BELOW_MINIMUM})))
            elif market is None:  # a coin without a market (validated for enabled coins)
                moves.append((key, Status.WAITING_DECIDE, [], _fixed({
                    "last_error": f"no passthrough market configured for {coin}",
                    "next_attempt_at": now + 60})))
            else:
                moves.append((key, Status.WAITING_DECIDE, [Status.WAITING_PASSTHROUGH],
                              partial(self._intent_fields, market=market, value=value,
                                      now=now)))
        updated = self.store.apply_moves(moves)
        if any(r["status"] == Status.WAITING_PASSTHROUGH for r in updated):
            failpoints.hit("after_passthrough_intent_persisted")
        for record in updated:
            if record["status"] == Status.WAITING_PASSTHROUGH:
                self._unplaced.add(record["passthrough"]["order"]["customer_id"])
            elif record["status"] == Status.DONE:
                log.warning("deposit %s/%s finished without buying: %s", record["coin_type"],
                            record["deposit_id"], record["error"])
        return any(r["status"] != Status.WAITING_DECIDE for r in updated)

    def _intent_fields(self, record: DepositRecord, *, market: str, value: Decimal,
                       now: int) -> dict[str, Any]:
        """The intent, from the record as it is inside the commit: a deposit a reorg had
        cancelled and the chain brought back gets the next attempt (a new client id)."""
        attempt = (record["passthrough"].get("attempt") or 0) + 1
        return _merge(record, {
            "exchange_name": self.venue.name, "market": market,
            "requested_amount": format(value, "f"), "attempt": attempt, "placing_at": now,
            "fee": "0", "leftover": 0, "sky_bought": 0, "deposit_value_spent": 0,
        }, {"customer_id": client_id(record["seq"], attempt)}, attempts=0, next_attempt_at=0,
            last_error="")

    # -- place: waiting_passthrough -> waiting_passthrough_order_complete ---------------------

    def step(self) -> bool:
        progressed = self.place_due()
        progressed |= self.poll_open()
        return progressed

    def place_due(self) -> bool:
        now = self.clock()
        due = self._due(Status.WAITING_PASSTHROUGH, now)
        if not due or not self._prepare():
            return False
        results: list[tuple[DepositRecord, OrderState]] = []
        moves: list[Move] = []
        to_place: list[DepositRecord] = []
        to_mark: list[DepositRecord] = []
        for record in due:
            pt = record["passthrough"]
            cid = pt["order"]["customer_id"]
            if not pt.get("placing_at"):
                to_mark.append(record)
            elif cid in self._unplaced:
                to_place.append(record)
            else:  # a place may have happened (crash, timeout): ask the venue first
                try:
                    found = self.venue.find(intent_of(record))
                except VenueError as exc:
                    moves.append(self._backoff_move(record, f"order lookup failed: {exc}"))
                    self._venue_down(exc)
                    break
                if found is not None:
                    results.append((record, found))
                elif now - pt["placing_at"] >= self.settings.settle_wait:
                    to_place.append(record)  # settled and not there: never placed
                    log.info("order %s of %s/%s not on the venue after %d s: placing it",
                             cid, record["coin_type"], record["deposit_id"],
                             now - pt["placing_at"])
                else:
                    moves.append(self._later_move(
                        record, pt["placing_at"] + self.settings.settle_wait,
                        f"order {cid} not found on the venue yet; placed again only after "
                        f"{self.settings.settle_wait:g} s"))
        if to_mark:  # the intent is persisted again before this place (one commit)
            stamp = {"placing_at": self.store.now()}
            marked = self.store.apply_moves(
                [(self._key(record), Status.WAITING_PASSTHROUGH, [],
                  lambda current: _merge(current, stamp)) for record in to_mark])
            to_place.extend(marked)
        results.extend(self._place_all(to_place, moves))
        if results:
            failpoints.hit("after_passthrough_order_placed")
        moves.extend(self._record_move(record, state) for record, state in results)
        if moves:
            self.store.apply_moves(moves)
        if results:
            failpoints.hit("after_passthrough_order_recorded")
        return bool(results) or bool(moves)

    def _place_all(self, records: list[DepositRecord],
                   moves: list[Move]) -> list[tuple[DepositRecord, OrderState]]:
        """Place the orders of these intents (all persisted); record what each answer means.

        A venue with ``place_many`` (the core: one JSON-RPC batch, one commit on the core for
        all of them) gets them together; otherwise one ``place`` each, in deposit order.
        """
        records = sorted(records, key=lambda r: r["seq"])
        ready: list[tuple[DepositRecord, BuyIntent]] = []
        for record in records:
            intent = intent_of(record)
            try:
                self.venue.check(intent)
            except TooSmall as exc:
                moves.append(self._too_small_move(record, str(exc)))
                continue
            except VenueError as exc:
                moves.append(self._backoff_move(record, f"checking the order failed: {exc}"))
                self._unplaced.add(intent.client_id)  # nothing was placed
                continue
            ready.append((record, intent))
        for _, intent in ready:
            self._unplaced.discard(intent.client_id)  # from here a place may happen
        outcomes = self._outcomes([intent for _, intent in ready])
        placed: list[tuple[DepositRecord, OrderState]] = []
        for (record, intent), outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, OrderState):
                self.venue_error = ""
                self.orders_placed += 1
                log.info("order %s placed for %s: spent %s, bought %s (fee %s)",
                         outcome.order_id, intent.deposit_key, outcome.spent, outcome.bought,
                         outcome.fee)
                placed.append((record, outcome))
            elif outcome is None:  # not tried (the venue went down before it): nothing placed
                self._unplaced.add(intent.client_id)
            elif isinstance(outcome, TooSmall):
                moves.append(self._too_small_move(record, str(outcome)))
            elif isinstance(outcome, VenueWait):
                moves.append(self._wait_move(record, str(outcome)))
            elif isinstance(outcome, VenueRejected):
                moves.append(self._rejected_move(record, str(outcome)))
            else:  # unavailable: the outcome is unknown; placing_at stays, find() decides
                moves.append(self._backoff_move(record, f"placing the order failed: {outcome}"))
                self._venue_down(outcome)
        return placed

    def _outcomes(self, intents: list[BuyIntent]) -> list[OrderState | VenueError | None]:
        """One answer per intent: the order, the venue's refusal, or None (not tried)."""
        place_many = getattr(self.venue, "place_many", None)
        if place_many is not None and intents:
            try:
                return list(place_many(intents))
            except VenueError as exc:  # the whole batch's outcome is unknown
                return [exc] * len(intents)
        outcomes: list[OrderState | VenueError | None] = []
        waiting: dict[str, VenueWait] = {}  # market -> its empty book: the rest of it waits
        for index, intent in enumerate(intents):
            if intent.market in waiting:
                outcomes.append(waiting[intent.market])
                continue
            try:
                outcomes.append(self.venue.place(intent))
            except VenueWait as exc:
                waiting[intent.market] = exc
                outcomes.append(exc)
            except (TooSmall, VenueRejected) as exc:
                outcomes.append(exc)
            except VenueError as exc:
                outcomes.append(exc)
                outcomes.extend([None] * (len(intents) - index - 1))
                break
        return outcomes

    # -- poll: waiting_passthrough_order_complete -> waiting_send ---------------------------

    def poll_open(self) -> bool:
        now = self.clock()
        due = self._due(Status.WAITING_PASSTHROUGH_ORDER_COMPLETE, now)
        if not due or not self._prepare():
            return False
        moves: list[Move] = []
        for record in due:
            intent = intent_of(record)
            try:
                state = self.venue.poll(intent, record["passthrough"]["order"]["order_id"])
            except VenueError as exc:
                moves.append(self._backoff_move(record, f"polling the order failed: {exc}",
                                                Status.WAITING_PASSTHROUGH_ORDER_COMPLETE))
                self._venue_down(exc)
                break
            moves.append(self._record_move(record, state,
                                           Status.WAITING_PASSTHROUGH_ORDER_COMPLETE))
        if moves:
            self.store.apply_moves(moves)
        return any(m[2] for m in moves)

    # -- moves -----------------------------------------------------------------------------

    def _record_move(self, record: DepositRecord, state: OrderState,
                     expected: Status = Status.WAITING_PASSTHROUGH) -> Move:
        """The order as the venue reports it: final with a fill -> waiting_send (pay what was
        bought); final with nothing filled -> a new attempt; open -> keep polling."""
        key = self._key(record)
        to_complete = [Status.WAITING_PASSTHROUGH_ORDER_COMPLETE] \
            if expected == Status.WAITING_PASSTHROUGH else []
        if not state.final:
            return (key, expected, to_complete, lambda r: _merge(
                r, *self._order_fields(r, state), next_attempt_at=math.ceil(
                    self.clock() + self.settings.check_order_wait), last_error=""))
        if state.bought > 0:
            return (key, expected, [*to_complete, Status.WAITING_SEND], lambda r: _merge(
                r, *self._order_fields(r, state), attempts=0, next_attempt_at=0,
                last_error=""))
        # Final and nothing bought: no coin was spent; a new attempt may buy.
        return (key, expected, [*to_complete, Status.WAITING_PASSTHROUGH],
                lambda r: self._new_attempt(r, f"order {state.order_id} ended {state.status} "
                                               "with nothing filled", state))

    def _order_fields(self, record: DepositRecord,
                      state: OrderState) -> tuple[dict[str, Any], dict[str, Any]]:
        coin_decimals = self.coin_decimals(record["coin_type"])
        spent = int(state.spent.scaleb(coin_decimals).to_integral_value(ROUND_DOWN))
        bought = int(state.bought.scaleb(self.token_decimals).to_integral_value(ROUND_DOWN))
        return ({"sky_bought": bought, "deposit_value_spent": spent,
                 "fee": format(state.fee.normalize(), "f"),
                 "leftover": record["deposit_value"] - spent,
                 "placing_at": 0},
                {"order_id": state.order_id, "status": state.status, "final": state.final,
                 "completed_amount": format(state.bought.normalize(), "f"),
                 "price": format(state.price, "f"), "original": state.original})

    def _new_attempt(self, record: DepositRecord, reason: str,
                     state: OrderState | None = None) -> dict[str, Any]:
        pt = record["passthrough"]
        attempt = pt["attempt"] + 1
        history = [*pt.get("previous_orders", []),
                   {"customer_id": pt["order"]["customer_id"], "reason": reason,
                    **({"order_id": state.order_id, "original": state.original}
                       if state else {})}]
        attempts = record.get("attempts", 0) + 1
        log.warning("deposit %s/%s: %s; next attempt %d", record["coin_type"],
                    record["deposit_id"], reason, attempt)
        return _merge(record, {"attempt": attempt, "placing_at": 0,
                               "previous_orders": history},
                      {"customer_id": client_id(record["seq"], attempt), "order_id": "",
                       "status": "", "final": False, "original": ""},
                      attempts=attempts, last_error=reason,
                      next_attempt_at=self._retry_at(attempts))

    def _rejected_move(self, record: DepositRecord, reason: str) -> Move:
        return (self._key(record), Status.WAITING_PASSTHROUGH, [],
                lambda r: self._new_attempt(r, f"order rejected: {reason}"))

    def _too_small_move(self, record: DepositRecord, reason: str) -> Move:
        log.warning("deposit %s/%s too small for the venue: %s", record["coin_type"],
                    record["deposit_id"], reason)
        return (self._key(record), Status.WAITING_PASSTHROUGH, [Status.DONE],
                lambda r: {**_merge(r, {"placing_at": 0}), "error": reason,
                           "error_kind": "too_small"})

    def _wait_move(self, record: DepositRecord, reason: str) -> Move:
        """No order was made (no asks, account cannot pay): wait like sold out."""
        def fields(r: DepositRecord) -> dict[str, Any]:
            attempts = r.get("attempts", 0) + 1
            wait = min(self.settings.wait_max, self._backoff(attempts))
            return _merge(r, {"placing_at": 0}, attempts=attempts, last_error=reason,
                          next_attempt_at=math.ceil(self.clock() + wait))
        return (self._key(record), Status.WAITING_PASSTHROUGH, [], fields)

    def _backoff_move(self, record: DepositRecord, reason: str,
                      expected: Status = Status.WAITING_PASSTHROUGH) -> Move:
        """The venue did not answer: the outcome of a place is unknown (placing_at stays)."""
        def fields(r: DepositRecord) -> dict[str, Any]:
            attempts = r.get("attempts", 0) + 1
            return {"attempts": attempts, "last_error": reason,
                    "next_attempt_at": self._retry_at(attempts)}
        return (self._key(record), expected, [], fields)

    def _later_move(self, record: DepositRecord, at: float, reason: str) -> Move:
        return (self._key(record), Status.WAITING_PASSTHROUGH, [],
                lambda r: {"last_error": reason, "next_attempt_at": math.ceil(at)})

    # -- helpers ---------------------------------------------------------------------------

    def _due(self, status: Status, now: float) -> list[DepositRecord]:
        """Up to ``batch`` deposits of ``status`` whose wait is over, oldest first. Deposits
        still waiting (an empty book) are skipped, never counted against the batch: they do
        not hold back the ones behind them."""
        due: list[DepositRecord] = []
        for record in self.store.in_status(status, limit=SCAN_LIMIT):
            if (record.get("next_attempt_at") or 0) <= now:
                due.append(record)
                if len(due) >= self.settings.batch:
                    break
        return due

    def _prepare(self) -> bool:
        if self._prepared:
            return True
        try:
            self.venue.prepare()
        except VenueError as exc:
            self._venue_down(exc)
            return False
        self._prepared = True
        self.venue_error = ""
        return True

    def _venue_down(self, exc: VenueError) -> None:
        text = f"{self.venue.name}: {exc}"
        if isinstance(exc, VenueUnavailable) and text != self.venue_error:
            log.error("passthrough venue unavailable: %s", text)
        if isinstance(exc, VenueUnavailable):
            self.venue_error = text

    def _backoff(self, attempts: int) -> float:
        wait: float = min(self.settings.retry_max_wait,
                          self.settings.retry_base * 2 ** (attempts - 1))
        return wait

    def _retry_at(self, attempts: int) -> int:
        return math.ceil(self.clock() + self._backoff(attempts))

    @staticmethod
    def _key(record: DepositRecord) -> str:
        return deposit_key(record["coin_type"], record["deposit_id"])

    def next_due(self) -> float:
        """When the earliest waiting passthrough deposit is due (inf if none)."""
        due = math.inf
        for status in (Status.WAITING_PASSTHROUGH, Status.WAITING_PASSTHROUGH_ORDER_COMPLETE):
            for record in self.store.in_status(status, limit=1000):
                due = min(due, record.get("next_attempt_at") or 0)
        return due

    def health(self) -> dict[str, Any]:
        """Venue reachability and why deposits wait, for /api/health."""
        waiting: dict[str, int] = {}
        counts = {Status.WAITING_PASSTHROUGH: 0, Status.WAITING_PASSTHROUGH_ORDER_COMPLETE: 0}
        for status in counts:
            for record in self.store.in_status(status, limit=10_000):
                counts[status] += 1
                if record.get("last_error"):
                    waiting[record["last_error"]] = waiting.get(record["last_error"], 0) + 1
        return {
            "venue": self.venue.name,
            "reachable": not self.venue_error,
            "venue_error": self.venue_error,
            "waiting_passthrough": counts[Status.WAITING_PASSTHROUGH],
            "waiting_order_complete": counts[Status.WAITING_PASSTHROUGH_ORDER_COMPLETE],
            "wait_reasons": waiting,
            "orders_placed": self.orders_placed,
        }
