"""The ccxt buy venue: one market buy by cost on an external exchange per client order id.

``CcxtVenue`` speaks the ``Venue`` protocol (venues/base.py) through the ``ccxt`` library's
synchronous client, so any exchange ccxt knows can be the passthrough venue; the REST shapes
it is tested against are binance's. What it guarantees:

- **once per client id**: every ``place`` looks the client id up first (``find``) and only
  posts when the exchange has no order under it; a "duplicate client id" answer is resolved by
  looking again. After a send whose outcome is unknown (timeout, network error, odd answer) it
  does not post that id again until the exchange can no longer be executing the lost request
  (binance refuses a signed request older than ``recvWindow``; ``settle_s`` is that window).
  Across a restart the exchanger's persisted ``placing_at`` + ``settle_wait`` does the same.
- **errors as the processor needs them**: rate limits, timeouts, network and exchange outages
  are ``VenueUnavailable`` (back off); not enough balance on the exchange, a closed market or
  an empty book are ``VenueWait``; an order ``place`` sees refused or ended with nothing
  filled is ``VenueRejected`` (retry with attempt + 1; ``find`` and ``poll`` return such an
  order as a final OrderState with nothing bought, which the exchanger treats the same way);
  anything under the market's minimum amount, cost or precision (or over its maximum for one
  order) is ``TooSmall``, found before ordering where the market says so. An order found
  under the client id that cannot be this intent's is ``VenueUnavailable``, never adopted.
- **amounts in Decimal**: ccxt hands out floats; they become ``Decimal(str(x))`` at this
  boundary only, and the exchange's own strings (binance ``executedQty``,
  ``cummulativeQuoteQty``, ``fills[].commission``) are used where the answer has them.

The API key and secret live only inside the ccxt client: ccxt's request log goes through a
filter that blanks them, and neither is part of ``repr`` or of an error message. One instance is used by one thread (the exchanger's worker).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import ccxt

from exchanger.venues.base import (
    BuyIntent,
    OrderState,
    TooSmall,
    VenueError,
    VenueRejected,
    VenueUnavailable,
    VenueWait,
)

log = logging.getLogger(__name__)

ZERO = Decimal(0)

# ccxt's unified order status -> (our status, final). "expired" is a market order the
# exchange ended (binance EXPIRED: the book ran out); "canceling" may still fill.
_STATUS: dict[str, tuple[str, bool]] = {
    "open": ("open", False),
    "closed": ("closed", True),
    "canceled": ("canceled", True),
    "expired": ("canceled", True),
    "rejected": ("rejected", True),
}

# Exchange answers that mean "your order is under a minimum" (binance filter failures).
_TOO_SMALL_MARKERS = ("MIN_NOTIONAL", "Filter failure: NOTIONAL", "less than minimum")
_DUPLICATE_MARKERS = ("Duplicate order", "duplicate client", "clientOrderId is duplicated")

# How long after a lost send an exchange may still execute it, when ccxt gives no window.
_DEFAULT_SETTLE_S = 30.0


def _dec(value: Any) -> Decimal | None:
    """A ccxt number (float, int or str) as Decimal, None if absent or not a number."""
    if value is None or value == "":
        return None
    try:
        out = Decimal(str(value))  # float-ok: ccxt boundary
    except InvalidOperation:
        return None
    return out if out.is_finite() else None


def _fmt(value: Decimal) -> str:
    """A Decimal for a message, without float noise (``10.0`` -> ``10``, ``1E-8`` -> ``0.00000001``)."""
    return format(value.normalize(), "f")


class _ScrubbedLog:
    """ccxt's request/response debug log with the API key and secret blanked out.

    ccxt logs every request's headers (binance's carry the API key) and every answer at DEBUG
    through ``exchange.logger``; this stands in for that logger."""

    def __init__(self, logger: logging.Logger, secrets: tuple[str, ...]) -> None:
        self._log = logger
        self._secrets = secrets

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _emit(self, level: int, msg: str, *args: Any) -> None:
        if self._log.isEnabledFor(level):
            self._log.log(level, "%s", self.scrub(msg % args if args else msg))

    def debug(self, msg: str, *args: Any) -> None:
        self._emit(logging.DEBUG, msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self._emit(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self._emit(logging.WARNING, msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self._emit(logging.ERROR, msg, *args)


def _rebase(urls: Any, base: str) -> Any:
    """``urls`` (a ccxt ``urls['api']`` str or nested dict) with every origin replaced by
    ``base``, paths kept: ``https://api.binance.com/api/v3`` -> ``<base>/api/v3``."""
    if isinstance(urls, dict):
        return {key: _rebase(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and "://" in urls:
        return base + urlsplit(urls).path
    return urls


class CcxtVenue:
    """Market buys by cost on one ccxt exchange (see the module docstring for the guarantees)."""

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str,
        secret: str,
        sandbox: bool,
        api_url: str,
        markets: Mapping[str, str],
        timeout_ms: int = 10000,
        settle_s: float | None = None,
        retry_delays: tuple[float, ...] = (0.5, 2.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        problems: list[str] = []
        exchange_class = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
        if exchange_class is None:
            raise ValueError(f"passthrough.ccxt.exchange: {exchange_id!r} is not a ccxt exchange id")
        if not api_key or not secret:
            problems.append("passthrough.ccxt: an API key and secret are required to place orders")
        self.name = exchange_id
        self._sandbox = sandbox
        self._api_url = api_url.rstrip("/")
        self._markets = dict(markets)
        self._wire_log = _ScrubbedLog(logging.getLogger(__name__ + ".wire"),
                                      tuple(s for s in (api_key, secret) if s))
        ex = exchange_class({
            "apiKey": api_key,
            "secret": secret,
            "timeout": int(timeout_ms),
            "enableRateLimit": True,
            "logger": self._wire_log,
            # no clock sync call at load time: the venue makes only the calls listed here
            "options": {"adjustForTimeDifference": False},
        })
        if isinstance(ex, ccxt.binance):
            # spot only, and no private calls while loading markets (margin pairs, currencies)
            ex.options["fetchMarkets"] = {"types": ["spot"]}
            ex.options["fetchMargins"] = False
            ex.options["fetchCurrencies"] = False
        if sandbox:
            try:
                ex.set_sandbox_mode(True)
            except ccxt.NotSupported:
                problems.append(f"passthrough.ccxt.sandbox: ccxt knows no testnet for {exchange_id}")
        if self._api_url:
            if urlsplit(self._api_url).scheme not in ("http", "https"):
                problems.append(f"passthrough.ccxt.api_url: {api_url!r} is not an http(s) URL")
            else:
                ex.urls["api"] = _rebase(ex.urls["api"], self._api_url)
        if not ex.has.get("createMarketBuyOrderWithCost"):
            problems.append(f"passthrough.ccxt.exchange: {exchange_id} cannot buy at market by cost in ccxt")
        if not ex.has.get("fetchOrder"):
            problems.append(f"passthrough.ccxt.exchange: {exchange_id} cannot fetch an order in ccxt")
        # binance answers fetch_order by client id; elsewhere the order lists are searched
        self._find_by_fetch = isinstance(ex, ccxt.binance)
        if not self._find_by_fetch and not (
            ex.has.get("fetchOrders") or (ex.has.get("fetchOpenOrders") and ex.has.get("fetchClosedOrders"))
        ):
            problems.append(f"passthrough.ccxt.exchange: {exchange_id} cannot list orders to find one by client id")
        if problems:
            raise ValueError("; ".join(problems))
        self._ex = ex
        if settle_s is None:
            recv_window = _dec(ex.options.get("recvWindow"))
            settle_s = float(recv_window / 1000) + 1.0 if recv_window else _DEFAULT_SETTLE_S  # float-ok: seconds
        self._settle_s = settle_s
        self._retry_delays = retry_delays
        self._clock = clock
        self._sent_unsure: dict[str, float] = {}  # client id -> when a send with unknown outcome was made
        self._prepared = False

    def __repr__(self) -> str:
        return (f"CcxtVenue({self.name!r}, sandbox={self._sandbox}, api_url={self._api_url!r}, "
                f"markets={self._markets!r})")

    # --- the Venue protocol -------------------------------------------------------------

    def prepare(self) -> None:
        """Load the exchange's markets (retrying network errors) and check the configured ones."""
        for delay in (*self._retry_delays, None):
            try:
                self._call("load markets", self._ex.load_markets, True)
                break
            except VenueUnavailable:
                if delay is None:
                    raise
                time.sleep(delay)
        # A configured market the exchange lacks is a config error, but it can only be seen
        # now, in the running exchanger: VenueUnavailable makes it logged and shown in health.
        missing = sorted(s for s in set(self._markets.values()) if s not in self._ex.markets)
        if missing:
            raise VenueUnavailable(f"{self.name} has no market {', '.join(missing)} "
                                   f"(passthrough.markets)")
        not_spot = sorted(s for s in set(self._markets.values()) if not self._ex.markets[s].get("spot"))
        if not_spot:
            raise VenueUnavailable(f"{self.name} market {', '.join(not_spot)} is not a spot "
                                   f"market (passthrough.markets)")
        self._prepared = True

    def check(self, intent: BuyIntent) -> None:
        """TooSmall when the market's precision, minimum cost or minimum amount refuses the buy
        (or its maximum for one order: the same permanent outcome, with its own message).

        The amount is estimated at the best ask (one order-book read); the exchange may still
        fill less, which is why ``place`` maps a late minimum refusal to TooSmall as well."""
        market = self._market(intent, to_order=True)
        cost = self._cost(intent, market)
        limits = market.get("limits") or {}
        min_cost = _dec((limits.get("cost") or {}).get("min"))
        if min_cost is not None and cost < min_cost:
            raise TooSmall(f"spending {cost} {intent.coin} is below {self.name}'s minimum order cost "
                           f"{_fmt(min_cost)} {market.get('quote', intent.coin)} on {intent.market}")
        min_amounts = [_dec((limits.get(kind) or {}).get("min")) for kind in ("amount", "market")]
        min_amount = max((m for m in min_amounts if m is not None), default=None)
        precision = (market.get("precision") or {}).get("amount")
        if min_amount is None and precision is None:
            return
        book = self._call("read the order book", self._ex.fetch_order_book, intent.market, 5)
        asks = book.get("asks") or []
        best = _dec(asks[0][0]) if asks else None
        if not best:
            raise VenueWait(f"no asks on {self.name} {intent.market}: waiting for sellers")
        estimate = cost / best
        token = market.get("base", "token")
        if min_amount is not None and estimate < min_amount:
            raise TooSmall(f"spending {cost} {intent.coin} buys about {estimate:.8f} {token} at {_fmt(best)}, "
                           f"below {self.name}'s minimum amount {_fmt(min_amount)} on {intent.market}")
        max_amounts = [_dec((limits.get(kind) or {}).get("max")) for kind in ("amount", "market")]
        max_amount = min((m for m in max_amounts if m), default=None)
        max_cost = _dec((limits.get("cost") or {}).get("max"))
        if (max_amount is not None and estimate > max_amount) or (max_cost and cost > max_cost):
            # one order cannot buy it; splitting is not done: permanent, for the operator
            raise TooSmall(f"spending {cost} {intent.coin} buys about {estimate:.8f} {token}, above "
                           f"{self.name}'s maximum for one order on {intent.market} (amount "
                           f"{_fmt(max_amount) if max_amount else '-'}, cost "
                           f"{_fmt(max_cost) if max_cost else '-'})")
        try:
            self._ex.amount_to_precision(intent.market, str(estimate))
        except ccxt.InvalidOrder as exc:
            raise TooSmall(f"spending {cost} {intent.coin} buys about {estimate:.8f} {token}, "
                           f"under {intent.market}'s amount precision ({self._scrub(exc)})") from exc

    def find(self, intent: BuyIntent) -> OrderState | None:
        """The order placed under ``intent.client_id``, or None when the exchange has none."""
        self._market(intent)
        cid = intent.client_id
        if self._find_by_fetch:
            try:
                order = self._call("look up the order by client id", self._ex.fetch_order,
                                   cid, intent.market, {"clientOrderId": cid})
            except _NotFound:
                return None
        else:
            order = None
            listings = (("fetchOrders", self._ex.fetch_orders),) if self._ex.has.get("fetchOrders") else (
                ("fetchOpenOrders", self._ex.fetch_open_orders),
                ("fetchClosedOrders", self._ex.fetch_closed_orders))
            for _, fetch in listings:
                orders = self._call("list orders", fetch, intent.market)
                order = next((o for o in orders if o.get("clientOrderId") == cid), None)
                if order is not None:
                    break
            if order is None:
                return None
        self._sent_unsure.pop(cid, None)
        self._check_ours(intent, order)
        return self._state(intent, order)

    def place(self, intent: BuyIntent) -> OrderState:
        """One market buy spending ``intent.spend`` under ``intent.client_id``; the existing
        order when the exchange already has one under that id."""
        self._market(intent)
        cid = intent.client_id
        existing = self.find(intent)
        if existing is not None:
            log.info("%s: order %s for %s already placed under %s, not placing again",
                     self.name, existing.order_id, intent.deposit_key, cid)
            return _unless_nothing_filled(existing, cid)
        market = self._market(intent, to_order=True)
        self._wait_out_lost_send(cid)
        cost = self._cost(intent, market)
        try:
            order = self._ex.create_market_buy_order_with_cost(
                intent.market, float(cost), {"clientOrderId": cid})  # float-ok: ccxt boundary
        except ccxt.DuplicateOrderId as exc:
            return _unless_nothing_filled(self._found_after_duplicate(intent, exc), cid)
        except ccxt.InsufficientFunds as exc:
            raise VenueWait(f"not enough {intent.coin} on {self.name}: {self._scrub(exc)}") from exc
        except ccxt.MarketClosed as exc:
            raise VenueWait(f"{self.name} {intent.market} is closed: {self._scrub(exc)}") from exc
        except ccxt.AuthenticationError as exc:
            raise VenueUnavailable(f"{self.name} refused the API key: {self._scrub(exc)}") from exc
        except (ccxt.InvalidOrder, ccxt.BadRequest, ccxt.OperationRejected) as exc:
            text = str(exc)
            if any(m.lower() in text.lower() for m in _DUPLICATE_MARKERS):
                return _unless_nothing_filled(self._found_after_duplicate(intent, exc), cid)
            if any(m in text for m in _TOO_SMALL_MARKERS):
                raise TooSmall(f"{self.name} refused {cost} {intent.coin} on {intent.market} as "
                               f"too small: {self._scrub(exc)}") from exc
            raise VenueRejected(f"{self.name} refused order {cid}: {self._scrub(exc)}") from exc
        except Exception as exc:
            # timeout, network, 5xx, rate limit, or an answer ccxt could not read: the order
            # may exist, so this id is not sent again before the exchange has settled
            self._sent_unsure[cid] = self._clock()
            raise VenueUnavailable(f"sending order {cid} to {self.name}: {type(exc).__name__}: "
                                   f"{self._scrub(exc)}") from exc
        self._sent_unsure.pop(cid, None)
        log.info("%s: placed order %s for %s (%s %s on %s, client id %s)", self.name,
                 order.get("id"), intent.deposit_key, cost, intent.coin, intent.market, cid)
        return _unless_nothing_filled(self._state(intent, order), cid)

    def poll(self, intent: BuyIntent, order_id: str) -> OrderState:
        """The order's state now; final ones carry their fees (read from the trades if needed)."""
        self._market(intent)
        try:
            order = self._call("poll the order", self._ex.fetch_order, order_id, intent.market)
        except _NotFound as exc:
            # just placed orders can take a moment to be visible; never treat as gone
            raise VenueUnavailable(f"{self.name} does not show order {order_id} yet") from exc
        return self._state(intent, order)

    # --- helpers ------------------------------------------------------------------------

    def _market(self, intent: BuyIntent, *, to_order: bool = False) -> dict[str, Any]:
        """The loaded ccxt market of ``intent``; VenueWait when ordering on a halted one."""
        if not self._prepared:
            self.prepare()
        market = self._ex.markets.get(intent.market)
        if market is None:
            raise VenueUnavailable(f"{self.name} has no market {intent.market}")
        if to_order and market.get("active") is False:
            raise VenueWait(f"{self.name} {intent.market} is not trading now")
        found: dict[str, Any] = market
        return found

    def _cost(self, intent: BuyIntent, market: dict[str, Any]) -> Decimal:
        """``intent.spend`` truncated to what the market accepts as an order cost."""
        if intent.spend <= 0:
            raise TooSmall(f"nothing to spend ({intent.spend} {intent.coin})")
        try:
            cost = Decimal(self._ex.cost_to_precision(intent.market, str(intent.spend)))
        except (ccxt.BaseError, InvalidOperation) as exc:
            raise TooSmall(f"spending {intent.spend} {intent.coin} is under {intent.market}'s "
                           f"price precision ({exc})") from exc
        if cost <= 0:
            raise TooSmall(f"spending {intent.spend} {intent.coin} is under {intent.market}'s "
                           f"precision {(market.get('precision') or {}).get('price')}")
        return cost

    def _wait_out_lost_send(self, cid: str) -> None:
        """VenueUnavailable while a send under ``cid`` may still be executed by the exchange."""
        now = self._clock()
        since = self._sent_unsure.get(cid)
        if since is not None and now - since < self._settle_s:
            raise VenueUnavailable(
                f"order {cid}: an earlier send may still reach {self.name}; looking again "
                f"in {self._settle_s - (now - since):.1f}s before placing")

    def _check_ours(self, intent: BuyIntent, order: dict[str, Any]) -> None:
        """VenueUnavailable when the order under our client id cannot be this intent's (a buy
        of ``spend``): e.g. a fresh data dir numbering deposits from 1 again on an account that
        still has the old orders. Adopting it would pay this deposit from another's order."""
        info = order.get("info") or {}
        asked = _dec(info.get("origQuoteOrderQty"))  # binance: the quoteOrderQty sent
        mismatch = []
        if order.get("side") not in (None, "buy"):
            mismatch.append(f"side {order.get('side')}")
        if asked and asked != self._cost(intent, self._ex.markets[intent.market]):
            mismatch.append(f"spend {_fmt(asked)} {intent.coin}, this deposit spends {intent.spend}")
        if mismatch:
            raise VenueUnavailable(
                f"{self.name} order {order.get('id')} under client id {intent.client_id} is not "
                f"this deposit's ({'; '.join(mismatch)}): not adopted, not placed again — "
                f"the operator must look at it")

    def _found_after_duplicate(self, intent: BuyIntent, exc: Exception) -> OrderState:
        found = self.find(intent)
        if found is not None:
            return found
        self._sent_unsure[intent.client_id] = self._clock()
        raise VenueUnavailable(f"{self.name} says client id {intent.client_id} is taken but shows "
                               f"no such order yet: {self._scrub(exc)}") from exc

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A read-side ccxt call with its errors as venue errors (see the module docstring)."""
        try:
            return fn(*args)
        except ccxt.OrderNotFound as exc:
            raise _NotFound(str(exc)) from exc
        except ccxt.InsufficientFunds as exc:
            raise VenueWait(f"{what} on {self.name}: {self._scrub(exc)}") from exc
        except ccxt.MarketClosed as exc:
            raise VenueWait(f"{what} on {self.name}: market closed: {self._scrub(exc)}") from exc
        except ccxt.BaseError as exc:
            raise VenueUnavailable(f"{what} on {self.name}: {type(exc).__name__}: "
                                   f"{self._scrub(exc)}") from exc

    def _scrub(self, exc: BaseException) -> str:
        return self._wire_log.scrub(str(exc))[:500]

    def _state(self, intent: BuyIntent, order: dict[str, Any]) -> OrderState:
        """A ccxt order as an OrderState (final with nothing bought when it ended unfilled)."""
        info = order.get("info") or {}
        order_id = str(order.get("id") or info.get("orderId") or "")
        status, final = _STATUS.get(order.get("status") or "", ("open", False))
        filled = _dec(info.get("executedQty"))
        if filled is None:
            filled = _dec(order.get("filled")) or ZERO
        cost = _dec(info.get("cummulativeQuoteQty"))  # binance's spelling; negative = unknown
        if cost is None or cost < 0:
            cost = _dec(order.get("cost"))
            if cost is None:
                cost = filled * (_dec(order.get("average")) or ZERO)
        original: Any = info
        fees = self._fees(order, info)
        if fees is None and final and filled > 0:
            trades = self._order_trades(intent, order_id)
            if trades is not None:
                fees = [(self._fee_currency(t), _fee_cost(t)) for t in trades]
                original = {"order": info, "trades": [t.get("info") for t in trades]}
        market = self._ex.markets.get(intent.market) or {}
        base, quote = market.get("base"), market.get("quote")
        fee_token = fee_coin = ZERO
        for currency, amount in fees or []:
            if amount is None or amount == 0:
                continue
            if currency == base:
                fee_token += amount
            elif currency == quote:
                fee_coin += amount
            else:
                # paid from another balance (e.g. BNB): reported, the token bought is untouched
                log.info("%s: order %s for %s paid a fee of %s %s (not deducted from %s)",
                         self.name, order_id, intent.deposit_key, amount, currency, base)
        return OrderState(
            order_id=order_id,
            status=status,
            final=final,
            bought=max(filled - fee_token, ZERO),
            fee=fee_token,
            spent=cost + fee_coin,
            price=cost / filled if filled else ZERO,
            original=json.dumps(original, sort_keys=True, default=str),
        )

    def _fees(self, order: dict[str, Any], info: dict[str, Any]) -> list[tuple[str | None, Decimal | None]] | None:
        """The order's fees as (currency, amount), None when the answer does not say."""
        fills = info.get("fills")
        if isinstance(fills, list) and fills:
            return [(self._ex.safe_currency_code(f.get("commissionAsset")), _dec(f.get("commission")))
                    for f in fills]
        listed = [f for f in (order.get("fees") or []) if f and f.get("cost") is not None]
        if not listed and order.get("fee") and order["fee"].get("cost") is not None:
            listed = [order["fee"]]
        if listed:
            return [(f.get("currency"), _dec(f.get("cost"))) for f in listed]
        return None

    def _order_trades(self, intent: BuyIntent, order_id: str) -> list[dict[str, Any]] | None:
        """The order's trades (they carry the fees the order answer lacks); None when the
        exchange cannot list them, and then no fee is deducted (logged)."""
        if self._ex.has.get("fetchOrderTrades"):
            listed: list[dict[str, Any]] = self._call("read the order's trades",
                                                      self._ex.fetch_order_trades,
                                                      order_id, intent.market)
            return listed
        if self._ex.has.get("fetchMyTrades"):
            trades = self._call("read the account's trades", self._ex.fetch_my_trades, intent.market)
            return [t for t in trades if str(t.get("order")) == order_id]
        log.warning("%s: order %s for %s: fees unknown (the exchange lists no trades), none deducted",
                    self.name, order_id, intent.deposit_key)
        return None

    def _fee_currency(self, trade: dict[str, Any]) -> str | None:
        info = trade.get("info") or {}
        currency: str | None
        if "commissionAsset" in info:
            currency = self._ex.safe_currency_code(info["commissionAsset"])
        else:
            currency = (trade.get("fee") or {}).get("currency")
        return currency


def _unless_nothing_filled(state: OrderState, cid: str) -> OrderState:
    """``place``'s answer: an order that ended with nothing filled is VenueRejected."""
    if state.final and state.spent == 0 and state.bought == 0:
        raise VenueRejected(f"order {state.order_id} ({cid}) ended {state.status} with "
                            f"nothing filled")
    return state


class _NotFound(VenueError):
    """ccxt's OrderNotFound, inside this module only."""


def _fee_cost(trade: dict[str, Any]) -> Decimal | None:
    info = trade.get("info") or {}
    if "commission" in info:
        return _dec(info["commission"])
    return _dec((trade.get("fee") or {}).get("cost"))
