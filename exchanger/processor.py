"""The exchanger's worker: moves deposits through the state machine and pays them, exactly once.

One thread runs ``Exchanger.run``. Each pass:

1. **decide** — ``waiting_decide`` deposits move to ``waiting_send`` (buy method ``direct``: the
   rate was snapshotted when the deposit was recorded), or, buy method ``passthrough``, buy
   the token on a venue first (``exchanger.passthrough``: waiting_passthrough →
   waiting_passthrough_order_complete → waiting_send, one order per deposit);
2. **resume** — payouts persisted but not yet accepted by the node are broadcast again, with the
   same signed bytes (this is what happens after a crash between persist and broadcast);
3. **send** — payable deposits, in creation order, are paid: amount computed, a payout built and
   signed, *persisted with its txid*, then broadcast outside any DB transaction, then the
   deposits move to ``waiting_confirm``. Where the backend allows (``Sender.build_ahead``),
   several payouts share the persisting commit and go to the node together. A deposit the
   hot wallet cannot afford is skipped with a backoff, so smaller ones behind it still go (no
   head-of-line blocking); sends do not wait for earlier confirmations (pipelined);
4. **confirm** — open payouts are checked; confirmed ones finish their deposits, dead ones
   (failed, conflicted, dropped past ``dead_after``) go to ``needs_review``.

Failures never lose a deposit: they are recorded on the deposit or payout (``attempts``,
``next_attempt_at``, ``last_error``) and retried with capped exponential backoff.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from common import failpoints
from common.units import COIN_DECIMALS, format_units
from ledger.records import DepositRecord, PayoutRecord
from ledger.status import Status
from ledger.store import Conflict, DepositStore
from sender.base import (
    BroadcastRejected,
    NodeUnavailable,
    PayoutOutput,
    Sender,
    SenderError,
    SignedPayout,
    TxState,
)

from .amounts import AmountError, payout_amount
from .passthrough import PassthroughBuyer

log = logging.getLogger(__name__)

ZERO_AMOUNT_ERROR = "Skycoin send amount is 0"


@dataclass
class ExchangerSettings:
    max_decimals: int = 3
    send_enabled: bool = True
    check_wait: float = 5.0  # how often confirmations are polled when nothing wakes us
    retry_base: float = 1.0  # first retry delay; doubles per attempt
    retry_max_wait: float = 300.0
    dead_after: float = 6 * 3600.0  # an unconfirmed payout unknown to the node this long is dead
    replace_after: float = 600.0  # pending this long: a fee-bumped replacement (0 = never)
    token_decimals: dict[str, int] | None = None  # deposit coin -> decimals (ERC-20 tokens)
    # Confirmations reported one by one (the dummy API) are checked together, at most this
    # often: each check is a commit, so one per report would cost an fsync each.
    confirm_wake_window: float = 0.02


# When several candidates spend one nonce (a payout and its replacements), the payout is as far
# along as its best candidate: one confirmed wins; a mined-but-failed one beats "conflicted"
# (our own transaction used the nonce); all conflicted means another transaction took it.
_STATE_ORDER = (TxState.CONFIRMED, TxState.PENDING, TxState.UNKNOWN, TxState.DROPPED,
                TxState.FAILED, TxState.CONFLICTED)


def combined_state(candidates: list[SignedPayout],
                   states: list[TxState]) -> tuple[TxState, str]:
    """The payout's state and the txid that decides it (DROPPED counts as UNKNOWN)."""
    for wanted in _STATE_ORDER:
        for candidate, state in zip(candidates, states, strict=True):
            if state == wanted:
                return (TxState.UNKNOWN if state == TxState.DROPPED else state), candidate.txid
    raise ValueError("a payout has at least one candidate")


def payout_candidates(payout: PayoutRecord) -> list[SignedPayout]:
    """The signed transactions of a payout record: the first one, then its replacements."""
    return [SignedPayout.from_json(payout["signed"])] + [
        SignedPayout.from_json(c) for c in payout.get("candidates", [])]


class Exchanger:
    def __init__(self, store: DepositStore, sender: Sender, settings: ExchangerSettings,
                 clock: Callable[[], float] = time.time,
                 buyer: PassthroughBuyer | None = None) -> None:
        self.store = store
        self.sender = sender
        self.settings = settings
        self.clock = clock
        self.buyer = buyer  # passthrough buying; None = no venue configured
        self.sender_error = ""  # last payout-side problem, shown in /api/health
        self.processor_error = ""
        self.payouts_broadcast = 0
        self.payouts_confirmed = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_confirm_check = 0.0
        self._confirm_due = threading.Event()
        self._woken_check_at = 0.0  # time.monotonic() of the last check
        # Woken checks look only at the payouts named by the wake (see wake_confirmations).
        self._hint_lock = threading.Lock()
        self._hinted: set[str] = set()
        self._hint_all = False
        self._payout_of_txid: dict[str, str] = {}  # open payouts' candidate txids
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="exchanger", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """New work may be there (a deposit was recorded, an operator acted)."""
        self._wake.set()

    def wake_confirmations(self, txid: str | None = None) -> None:
        """A payout may have confirmed (e.g. the dummy API confirmed one): check now.

        With a txid only that payout is checked (when this process knows it); without one, or
        for a txid it does not know, every open payout is.
        """
        payout_id = self._payout_of_txid.get(txid) if txid else None
        with self._hint_lock:
            if payout_id is None:
                self._hint_all = True
            else:
                self._hinted.add(payout_id)
        self._confirm_due.set()
        self._wake.set()

    def _take_hints(self) -> set[str] | None:
        """Payout ids to check after a wake, or None for all of them."""
        with self._hint_lock:
            hinted, everything = self._hinted, self._hint_all
            self._hinted, self._hint_all = set(), False
        return None if everything else hinted

    def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                progressed = self.step()
                self.processor_error = ""
            except Exception as exc:  # a bug or a storage failure: log, back off, go on
                log.exception("exchanger pass failed: %s", exc)
                self.processor_error = str(exc)
                progressed = False
            if not progressed:
                self._wake.wait(self._idle_wait())

    def _idle_wait(self) -> float:
        if self._confirm_due.is_set():
            return max(0.0, self._woken_check_at + self.settings.confirm_wake_window - time.monotonic())
        return max(0.05, min(self.settings.check_wait, self._next_due() - self.clock()))

    def _next_due(self) -> float:
        due = self._last_confirm_check + self.settings.check_wait
        if self.buyer is not None:
            due = min(due, self.buyer.next_due())
        for record in self.store.in_status(Status.WAITING_SEND, limit=1000):
            if not record.get("payout_id"):
                due = min(due, record.get("next_attempt_at") or 0)
        return due

    def step(self) -> bool:
        """One pass over every stage; True if anything moved."""
        progressed = self.decide()
        if self.buyer is not None:
            progressed |= self.buyer.step()
        if self.settings.send_enabled:
            progressed |= self.resume_unbroadcast()
            progressed |= self.send_ready()
        now = self.clock()
        if now - self._last_confirm_check >= self.settings.check_wait:  # the regular poll
            self._confirm_due.clear()
            self._take_hints()
            self._last_confirm_check = now
            self._woken_check_at = time.monotonic()
            progressed |= self.check_confirmations()
        elif self._confirm_due.is_set() and \
                time.monotonic() - self._woken_check_at >= self.settings.confirm_wake_window:
            self._confirm_due.clear()
            self._woken_check_at = time.monotonic()
            hinted = self._take_hints()
            if hinted is None:
                self._last_confirm_check = now
            progressed |= self.check_confirmations(hinted)
        return progressed

    # -- 1. decide -------------------------------------------------------------------------

    def decide(self) -> bool:
        """Direct buy: the rate was snapshotted at record time, so every deposit is payable.
        Passthrough-bound deposits go to the buyer; without a venue they wait (never paid at
        the fixed rate: the buyer was promised the market)."""
        records = self.store.in_status(Status.WAITING_DECIDE)
        direct = [f"{r['coin_type']}/{r['deposit_id']}" for r in records
                  if r.get("buy_method") != "passthrough"]
        now = self.clock()
        passthrough = [r for r in records if r.get("buy_method") == "passthrough"
                       and (r.get("next_attempt_at") or 0) <= now]
        moved = bool(direct) and bool(
            self.store.transition_many(direct, Status.WAITING_DECIDE, Status.WAITING_SEND))
        if passthrough and self.buyer is not None:
            moved |= self.buyer.decide(passthrough)
        elif passthrough:
            for record in passthrough:
                self.store.update_fields(
                    f"{record['coin_type']}/{record['deposit_id']}", Status.WAITING_DECIDE, {
                        "last_error": "bound for passthrough buying but no [passthrough] "
                                      "venue is configured", "next_attempt_at": int(now) + 60})
        return moved

    # -- 2. resume persisted payouts -----------------------------------------------------------

    def resume_unbroadcast(self) -> bool:
        now = self.clock()
        due = [(payout["id"], SignedPayout.from_json(payout["signed"]))
               for payout in self.store.open_payouts("signed")
               if payout.get("next_attempt_at", 0) <= now]
        for payout_id, signed in due:
            log.info("rebroadcasting persisted payout %s txid=%s", payout_id, signed.txid)
        accepted = self._broadcast_all(due)
        self._accepted(accepted)
        return bool(accepted)

    # -- 3. send ---------------------------------------------------------------------------

    def amount_for(self, record: DepositRecord) -> int:
        if record.get("buy_method") == "passthrough":
            # What the order bought, truncated to max_decimals (the network's precision).
            bought: int = record["passthrough"]["sky_bought"]
            unit: int = 10 ** max(0, self.sender.decimals - self.settings.max_decimals)
            return bought - bought % unit
        decimals = (self.settings.token_decimals or {}).get(record["coin_type"]) \
            or COIN_DECIMALS[record["coin_type"]]
        return payout_amount(record["deposit_value"], decimals, record["conversion_rate"],
                             self.settings.max_decimals, self.sender.decimals)

    def send_ready(self) -> bool:
        now = self.clock()
        candidates = [r for r in self.store.in_status(Status.WAITING_SEND)
                      if not r.get("payout_id") and (r.get("next_attempt_at") or 0) <= now]
        if not candidates:
            return False
        moved = False
        try:
            spendable = self.sender.balance().coins
        except SenderError as exc:
            self._note_sender_error(f"balance unavailable: {exc}")
            return False
        accepted: list[str] = []
        try:
            moved |= self._send_candidates(candidates, spendable, accepted)
        except NodeUnavailable:
            pass  # recorded on the deposits; the rest wait for the next pass, not a timeout each
        self._accepted(accepted)
        return moved or bool(accepted)

    def _send_candidates(self, candidates: list[DepositRecord], spendable: int,
                         accepted: list[str]) -> bool:
        """Pay what the wallet can afford, in creation order; accepted payout ids are appended
        to ``accepted`` (the caller records them even if this stops early).

        Outputs are grouped into transactions of ``sender.max_outputs``; up to
        ``sender.build_ahead`` transactions are persisted in one commit, then broadcast.
        """
        moved = False
        outputs: list[PayoutOutput] = []
        built: list[tuple[str, SignedPayout]] = []
        for record in candidates:
            key = f"{record['coin_type']}/{record['deposit_id']}"
            try:
                amount = self.amount_for(record)
            except AmountError as exc:
                moved |= self._finish_with_error(key, str(exc), "bad_amount")
                continue
            if amount == 0:
                moved |= self._finish_with_error(key, ZERO_AMOUNT_ERROR, "zero_amount")
                continue
            if amount > spendable:
                self._retry_later(record, f"sold out: payout of "
                                  f"{format_units(amount, self.sender.decimals)} "
                                  f"{self.sender.token} exceeds the hot wallet's spendable "
                                  f"{format_units(spendable, self.sender.decimals)}")
                continue
            spendable -= amount
            outputs.append(PayoutOutput(record["sky_address"], amount, key))
            if len(outputs) >= self.sender.max_outputs:
                built.extend(self._build(outputs))
                outputs = []
                if len(built) >= self.sender.build_ahead:
                    accepted.extend(self._pay(built))
                    built = []
                    if len(accepted) >= 50:  # keep waiting_confirm visible during long runs
                        self._accepted(accepted)
                        accepted.clear()
                        moved = True
                if self._stop.is_set():
                    break
        if outputs and not self._stop.is_set():
            built.extend(self._build(outputs))
        if built:
            accepted.extend(self._pay(built))
        return moved

    def _accepted(self, payout_ids: list[str]) -> None:
        """Payouts the node accepted move their deposits to waiting_confirm, in one commit.

        A crash before this commit leaves them "signed": the restart sends the same bytes
        again, which the node answers "already known".
        """
        if payout_ids:
            self.store.mark_broadcast(payout_ids)
            self.payouts_broadcast += len(payout_ids)
            if self.sender.confirms_on_broadcast:
                with self._hint_lock:
                    self._hinted.update(payout_ids)
                self._confirm_due.set()
            # A payout went out, but a deposit still held (sold out) keeps its message up.
            self.sender_error = self._held_error()

    def _held_error(self) -> str:
        for record in self.store.in_status(Status.WAITING_SEND):
            if not record.get("payout_id") and record.get("last_error"):
                return record["last_error"]
        return ""

    def _build(self, outputs: list[PayoutOutput]) -> list[tuple[str, SignedPayout]]:
        """Build and sign one payout: [(payout_id, signed)], or [] if the backend refused.

        A node outage is re-raised to stop the pass; payouts built earlier in it were never
        persisted, so dropping them changes nothing.
        """
        payout_id = uuid.uuid4().hex
        try:
            return [(payout_id, self.sender.build(outputs, payout_id))]
        except SenderError as exc:
            for out in outputs:
                record = self.store.get(out.deposit_key)
                if record is not None:
                    self._retry_later(record, f"{exc.kind}: {exc}")
            if isinstance(exc, NodeUnavailable):
                raise  # the node is down: stop this pass (see send_ready)
            return []

    def _pay(self, built: list[tuple[str, SignedPayout]]) -> list[str]:
        """Persist built payouts in one commit, then broadcast them; returns the ids the node
        accepted (the caller records them)."""
        persisted = self.store.create_payouts(built, self.sender.commit_built)
        for payout_id, signed in persisted:
            log.info("payout %s persisted txid=%s outputs=%d", payout_id, signed.txid,
                     len(signed.outputs))
            self._payout_of_txid[signed.txid] = payout_id
        if not persisted:
            return []
        failpoints.hit("after_payout_persisted")
        return self._broadcast_all(persisted)

    def _broadcast_all(self, persisted: list[tuple[str, SignedPayout]]) -> list[str]:
        """Send persisted bytes, in order; returns the payout ids the node accepted."""
        if not persisted:
            return []
        results = self.sender.broadcast_many([signed for _, signed in persisted])
        # Past the results: not tried (the node failed); they wait like the one that failed,
        # never counted as accepted.
        untried = results[-1] if results and isinstance(results[-1], NodeUnavailable) \
            else NodeUnavailable("not tried: the broadcast stopped before it")
        accepted: list[str] = []
        for index, (payout_id, signed) in enumerate(persisted):
            error = results[index] if index < len(results) else untried
            if error is None:
                log.info("payout %s broadcast txid=%s", payout_id, signed.txid)
                accepted.append(payout_id)
            elif isinstance(error, BroadcastRejected):
                if self._handle_rejected(payout_id, signed, error):
                    accepted.append(payout_id)
            else:
                self._broadcast_failed(payout_id, signed, error)
        if accepted:
            failpoints.hit("after_broadcast")
        return accepted

    def _broadcast_failed(self, payout_id: str, signed: SignedPayout,
                          error: SenderError) -> None:
        payout = self.store.payout(payout_id)
        # persisted before the broadcast that failed: never None here
        attempts = payout.get("attempts", 0) + 1  # type: ignore[union-attr]
        self.store.update_payout(payout_id, {
            "attempts": attempts, "last_error": str(error),
            "next_attempt_at": self._retry_at(attempts)})
        self._note_sender_error(f"broadcast of {signed.txid} failed: {error}")

    def _handle_rejected(self, payout_id: str, signed: SignedPayout,
                         exc: BroadcastRejected) -> bool:
        # A rejection can mean our own earlier broadcast already landed: ask the chain first.
        try:
            state = self.sender.tx_state(signed)
        except SenderError:
            state = TxState.UNKNOWN
        if state in (TxState.PENDING, TxState.CONFIRMED):
            return True
        reason = f"payout transaction {signed.txid} rejected by the node: {exc}"
        log.error("notice=WATCH %s; deposits held for review (never rebuilt automatically)",
                  reason)
        self.store.mark_needs_review(payout_id, reason)
        return False

    # -- 4. confirm ------------------------------------------------------------------------

    def check_confirmations(self, payout_ids: set[str] | None = None) -> bool:
        """Ask the chain about open payouts: all of them, or only ``payout_ids``."""
        moved = False
        confirmed: dict[str, str] = {}
        if payout_ids is None:
            payouts = self.store.open_payouts("broadcast")
            self._payout_of_txid = {}
        else:
            payouts = [p for p in map(self.store.payout, sorted(payout_ids))
                       if p is not None and p["status"] == "broadcast"]
        for payout in payouts:
            candidates = payout_candidates(payout)
            for candidate in candidates:
                self._payout_of_txid[candidate.txid] = payout["id"]
            try:
                states = [self.sender.tx_state(c) for c in candidates]
            except SenderError as exc:
                self._note_sender_error(f"confirmation check failed: {exc}")
                break
            state, txid = combined_state(candidates, states)
            if state == TxState.CONFIRMED:
                confirmed[payout["id"]] = txid
            elif state in (TxState.FAILED, TxState.CONFLICTED):
                reason = f"payout transaction {txid} {state} on chain"
                log.error("notice=WATCH %s; deposits held for review", reason)
                self.store.mark_needs_review(payout["id"], reason)
                moved = True
            elif state == TxState.UNKNOWN:
                moved |= self._node_forgot(payout, candidates[-1])
            elif states[-1] == TxState.UNKNOWN:
                # An earlier candidate is pending but the newest (a persisted replacement)
                # never reached the node, e.g. after a crash: send it now.
                self._rebroadcast(candidates[-1], replacement=True)
            else:
                self._maybe_replace(payout, candidates[-1])
        if confirmed:
            self.store.mark_confirmed(confirmed)
            self.payouts_confirmed += len(confirmed)
            done = set(confirmed)
            self._payout_of_txid = {t: p for t, p in self._payout_of_txid.items()
                                    if p not in done}
        return moved or bool(confirmed)

    def _node_forgot(self, payout: PayoutRecord, newest: SignedPayout) -> bool:
        """No candidate is known to the node: resend the newest, or give up after dead_after."""
        now = self.clock()
        if now - payout["broadcast_at"] > self.settings.dead_after:
            reason = (f"payout transaction {newest.txid} not seen by the node for "
                      f"{int(now - payout['broadcast_at'])} s")
            log.error("notice=WATCH %s; deposits held for review", reason)
            self.store.mark_needs_review(payout["id"], reason)
            return True
        # The node forgot it (restart, mempool eviction): send the same bytes again.
        self._rebroadcast(newest)
        return False

    def _rebroadcast(self, signed: SignedPayout, *, replacement: bool = False) -> None:
        try:
            self.sender.broadcast(signed)
        except BroadcastRejected as exc:
            if not replacement:
                self._note_sender_error(f"rebroadcast of {signed.txid} failed: {exc}")
            else:  # expected once an earlier candidate has been mined with the same nonce
                log.info("replacement %s not accepted: %s", signed.txid, exc)
        except SenderError as exc:
            self._note_sender_error(f"rebroadcast of {signed.txid} failed: {exc}")

    def _maybe_replace(self, payout: PayoutRecord, newest: SignedPayout) -> None:
        """Pending longer than replace_after: persist a fee-bumped replacement, then send it."""
        wait = self.settings.replace_after
        since = payout.get("replaced_at") or payout["broadcast_at"]
        if wait <= 0 or self.clock() - since < wait:
            return
        try:
            replacement = self.sender.replace(newest)
        except SenderError as exc:
            self._note_sender_error(f"replacing stuck payout {newest.txid} failed: {exc}")
            replacement = None
        if replacement is None:  # mined already, or no room under the fee cap: look again later
            self.store.update_payout(payout["id"], {"replaced_at": math.ceil(self.clock())})
            return
        try:
            self.store.add_candidate(payout["id"], replacement)
        except Conflict:
            return
        log.warning("payout %s pending for %d s: replacement %s persisted (same nonce, higher "
                    "fee)", payout["id"], int(self.clock() - since), replacement.txid)
        failpoints.hit("after_replacement_persisted")
        self._rebroadcast(replacement, replacement=True)

    # -- operator decisions ----------------------------------------------------------------

    def retry_refusal(self, payout_id: str) -> str:
        """Why paying this payout's deposits again could pay twice; "" when it cannot.

        An operator's retry builds a new payout, so it is safe only if no candidate of the old
        one can ever be mined: each is FAILED or CONFLICTED on chain, or unknown to a node that
        cannot see it come back. A payout held as dead because the node forgot it is not
        enough on a real chain: its bytes stay valid while its nonce or inputs are unused.
        """
        payout = self.store.payout(payout_id) if payout_id else None
        if payout is None or payout["status"] != "needs_review":
            return ""  # no payout, or an open/confirmed one: release_for_payment refuses those
        for candidate in payout_candidates(payout):
            try:
                state = self.sender.tx_state(candidate)
            except SenderError as exc:
                return f"cannot ask the node about transaction {candidate.txid}: {exc}"
            if state in (TxState.FAILED, TxState.CONFLICTED):
                continue
            if state in (TxState.UNKNOWN, TxState.DROPPED):
                if not self.sender.forgotten_can_return:
                    continue
                return (f"transaction {candidate.txid} is unknown to the node but can still be "
                        "mined while its nonce or inputs are unused: send it again, or spend "
                        "them with another transaction, then retry")
            return (f"transaction {candidate.txid} is {state} on chain: it paid or may still "
                    "pay this deposit; use mark_done once it confirms")
        return ""

    # -- helpers ---------------------------------------------------------------------------

    def _backoff(self, attempts: int) -> float:
        delay: float = min(self.settings.retry_max_wait,
                           self.settings.retry_base * 2 ** (attempts - 1))
        return delay

    def _retry_at(self, attempts: int) -> int:
        """When to try again, in whole unix seconds (stored values are never floats)."""
        return math.ceil(self.clock() + self._backoff(attempts))

    def _retry_later(self, record: DepositRecord, error: str) -> None:
        attempts = record.get("attempts", 0) + 1
        key = f"{record['coin_type']}/{record['deposit_id']}"
        try:
            self.store.update_fields(key, Status.WAITING_SEND, {
                "attempts": attempts, "last_error": error,
                "next_attempt_at": self._retry_at(attempts)})
        except Conflict:
            return
        self._note_sender_error(error)

    def _note_sender_error(self, error: str) -> None:
        if error != self.sender_error:
            log.error("sender: %s", error, extra={"alert_kind": "sender.error"})
        self.sender_error = error

    def _finish_with_error(self, key: str, error: str, kind: str) -> bool:
        try:
            self.store.transition(key, Status.WAITING_SEND, Status.DONE,
                                  {"error": error, "error_kind": kind})
        except Conflict:
            return False
        log.warning("deposit %s finished without payment: %s", key, error)
        return True
