"""The pure matching engine: balances, order books, matching, cancellation.

Owns the exchange state and nothing else: no I/O, no clocks, no threads. Every write operation
takes its timestamp as an argument, so replaying the operation log with the logged times gives
bit-identical state. Arithmetic follows viabtc's `me_balance.c` / `me_market.c` step for step
(34-digit ROUND_DOWN context, balances rescaled to `prec_save` after every change), so the same
operations give the same numbers as viabtc.

Events (viabtc's `deals`, `orders`, `balances` message shapes, plus `balance_history` rows) are
handed to an optional `sink(topic, message)`; with no sink the engine builds no messages at all.
Attached to an `EventBus` (`attach`), it builds only the messages somebody subscribed to (e.g. no
`orders` put/update objects when only finished orders are recorded): building them was most of
the cost of an operation. Kafka-like messages (`deals`, `balances`) print decimals like viabtc's
`me_message.c`: `mpd_to_sci` without stripping zeros; everything else is zero-stripped.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal, getcontext, localcontext, setcontext
from typing import Any, TypeVar

from common.decimals import CTX, ONE, ZERO, exponent, fmt, fmt_raw, fmt_shared
from matchengine.config import CoreConfig, MarketConfig

ASK, BID = 1, 2
LIMIT, MARKET = 1, 2
MAKER, TAKER = 1, 2
EVENT_PUT, EVENT_UPDATE, EVENT_FINISH = 1, 2, 3

Sink = Callable[[str, Any], None]
Balances = dict[tuple[int, str], Decimal]  # (user, asset) -> amount
T = TypeVar("T")

def _in_context(operation: Callable[..., T], *args: Any) -> T:
    """Run a write operation with viabtc's decimal context as the thread's context. A thread
    that runs many operations (the core's writer) sets CTX once with `decimal.setcontext`;
    each operation only checks (a copy per call cost more than the arithmetic it guarded)."""
    saved = getcontext()
    setcontext(CTX)
    try:
        return operation(*args)
    finally:
        setcontext(saved)


class EngineError(Exception):
    """A business rule refused the operation (viabtc's method-specific codes); nothing changed."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Order:
    """One order; `freeze` is internal (never printed), as in viabtc."""

    FIELDS = ("id", "type", "side", "ctime", "mtime", "user", "market", "source", "price",
              "amount", "taker_fee", "maker_fee", "left", "freeze", "deal_stock", "deal_money",
              "deal_fee")
    # _fixed: printed price/amount/fees, which never change; _shown: the last info() and the
    # `left` and `mtime` it showed (every change of a printed field changes `left`)
    __slots__ = (*FIELDS, "_fixed", "_shown")

    def __init__(self, id: int, type: int, side: int, ctime: float, mtime: float, user: int,
                 market: str, source: str, price: Decimal, amount: Decimal,
                 taker_fee: Decimal, maker_fee: Decimal, left: Decimal, freeze: Decimal,
                 deal_stock: Decimal, deal_money: Decimal, deal_fee: Decimal) -> None:
        self.id = id
        self.type = type
        self.side = side
        self.ctime = ctime
        self.mtime = mtime
        self.user = user
        self.market = market
        self.source = source
        self.price = price
        self.amount = amount
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee
        self.left = left
        self.freeze = freeze
        self.deal_stock = deal_stock
        self.deal_money = deal_money
        self.deal_fee = deal_fee
        self._fixed: tuple[str, str, str, str] | None = None
        self._shown: tuple[Decimal, float, dict[str, Any]] | None = None

    def info(self) -> dict[str, Any]:
        """viabtc's `get_order_info` object (a new dict each call)."""
        shown = self._shown
        if shown is not None and shown[0] is self.left and shown[1] == self.mtime:
            return shown[2].copy()  # an order is often shown twice unchanged: put, cancel
        fixed = self._fixed
        if fixed is None:
            fixed = self._fixed = (fmt_shared(self.price), fmt_shared(self.amount),
                                   fmt_shared(self.taker_fee), fmt_shared(self.maker_fee))
        left, stock, money, fee = self.left, self.deal_stock, self.deal_money, self.deal_fee
        info = {
            "id": self.id, "market": self.market, "source": self.source, "type": self.type,
            "side": self.side, "user": self.user, "ctime": self.ctime, "mtime": self.mtime,
            "price": fixed[0], "amount": fixed[1], "taker_fee": fixed[2],
            "maker_fee": fixed[3],
            # an untouched order still holds the very objects it was created with
            "left": fixed[1] if left is self.amount else fmt(left),
            "deal_stock": "0" if stock is ZERO else fmt(stock),
            "deal_money": "0" if money is ZERO else fmt(money),
            "deal_fee": "0" if fee is ZERO else fmt(fee),
        }
        self._shown = (left, self.mtime, info)
        return info.copy()

    def as_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)


class BookSide:
    """Resting orders of one side: price levels (FIFO by id) plus a sorted price list."""

    __slots__ = ("levels", "prices", "is_ask", "count")

    def __init__(self, is_ask: bool) -> None:
        self.levels: dict[Decimal, dict[int, Order]] = {}
        self.prices: list[Decimal] = []  # ascending; best ask first, best bid last
        self.is_ask = is_ask
        self.count = 0

    def best(self) -> Order | None:
        if not self.prices:
            return None
        price = self.prices[0] if self.is_ask else self.prices[-1]
        return next(iter(self.levels[price].values()))

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = {}
            insort(self.prices, order.price)
        level[order.id] = order
        self.count += 1

    def remove(self, order: Order) -> None:
        level = self.levels[order.price]
        del level[order.id]
        self.count -= 1
        if not level:
            del self.levels[order.price]
            prices = self.prices
            if self.is_ask and prices[0] == order.price:
                del prices[0]
            elif not self.is_ask and prices[-1] == order.price:
                prices.pop()
            else:
                del prices[bisect_left(prices, order.price)]

    def __iter__(self) -> Iterator[Order]:
        """Orders in match priority: best price first, then oldest first."""
        prices = self.prices if self.is_ask else reversed(self.prices)
        for price in prices:
            yield from self.levels[price].values()


class Market:
    """One market's books and its per-user index of resting orders."""

    def __init__(self, conf: MarketConfig) -> None:
        self.conf = conf
        self.name = conf.name
        self.stock = conf.stock
        self.money = conf.money
        self.asks = BookSide(True)
        self.bids = BookSide(False)
        self.orders: dict[int, Order] = {}
        self.users: dict[int, dict[int, Order]] = {}
        self.stock_unit = exponent(conf.stock_prec)
        self.min_amount = conf.min_amount


class Engine:
    """All markets and balances. Call the write methods from one thread only."""

    def __init__(self, config: CoreConfig, sink: Sink | None = None) -> None:
        self.config = config
        self._bus: Any = None
        self.sink = sink
        self.prec_save = {a.name: a.prec_save for a in config.assets}
        self.prec_show = {a.name: a.prec_show for a in config.assets}
        self.quantum = {a.name: exponent(a.prec_save) for a in config.assets}
        self.markets = {m.name: Market(m) for m in config.markets}
        self.available: dict[tuple[int, str], Decimal] = {}
        self.frozen: dict[tuple[int, str], Decimal] = {}
        self.update_keys: set[tuple[int, str, str, int]] = set()
        # An upper bound of each asset's total over all balances (balance.update is the only
        # source of money; fees only lower the real total). Kept below 10**(34 - prec_save), no
        # balance can outgrow viabtc's 34-digit context, so no trade or freeze can fail half-way.
        self.supply: dict[str, Decimal] = {a.name: ZERO for a in config.assets}
        self.supply_digits = {a.name: CTX.prec - a.prec_save for a in config.assets}
        self.order_id = 0
        self.deal_id = 0
        # Not state: matchengine.methods' per-market caches of checked order parameters.
        self.order_params: dict[str, Any] = {}

    # -- event sink ---------------------------------------------------------------------------

    @property
    def sink(self) -> Sink | None:
        return self._sink

    @sink.setter
    def sink(self, sink: Sink | None) -> None:
        """A plain callable receives every message; None turns events off."""
        # Typed as set: it is called only while an emit_* flag is on, i.e. with a sink.
        self._sink: Sink = sink  # type: ignore[assignment]
        self._bus = None
        self._set_wanted(lambda topic, event=None: sink is not None)

    def attach(self, bus: Any) -> None:
        """Publish to `bus` (an EventBus), building only the messages it has subscribers for;
        follows later subscriptions."""
        self._sink = bus.publish
        self._bus = bus
        bus.watch(self._bus_changed)

    def _bus_changed(self, bus: Any) -> None:
        if bus is self._bus:
            self._set_wanted(bus.wants)

    def _set_wanted(self, wants: Callable[..., bool]) -> None:
        self.emit_deals = wants("deals")
        self.emit_balances = wants("balances")
        self.emit_history = wants("balance_history")
        self.emit_put = wants("orders", EVENT_PUT)
        self.emit_update = wants("orders", EVENT_UPDATE)
        self.emit_finish = wants("orders", EVENT_FINISH)

    # -- balances (me_balance.c) ------------------------------------------------------------

    def _add(self, table: Balances, user: int, asset: str, amount: Decimal) -> Decimal:
        key = (user, asset)
        current = table.get(key)
        if current is None:
            if amount == 0:
                return ZERO
            current = ZERO
        result = (current + amount).quantize(self.quantum[asset])
        table[key] = result
        return result

    def _sub(self, table: Balances, user: int, asset: str, amount: Decimal) -> Decimal | None:
        key = (user, asset)
        current = table.get(key)
        if current is None or current < amount:
            return None
        result = current - amount
        if result == 0:
            del table[key]
            return ZERO
        result = result.quantize(self.quantum[asset])
        table[key] = result
        return result

    def _move(self, source: Balances, target: Balances, user: int, asset: str,
              amount: Decimal) -> None:
        """`_sub(source)` then `_add(target)` of an amount > 0 that `source` holds (freeze and
        unfreeze), in one call: this runs for every order that rests or leaves the book."""
        key = (user, asset)
        quantum = self.quantum[asset]
        held = source.get(key)
        if held is None or held < amount:
            raise AssertionError("moving more than the balance holds")  # checked before
        current = target.get(key)
        target[key] = ((ZERO if current is None else current) + amount).quantize(quantum)
        left = held - amount
        if left == 0:
            del source[key]
        else:
            source[key] = left.quantize(quantum)

    def total(self, user: int, asset: str) -> Decimal:
        total = ZERO
        available = self.available.get((user, asset))
        if available is not None:
            total += available
        frozen = self.frozen.get((user, asset))
        if frozen is not None:
            total += frozen
        return total

    # -- events -------------------------------------------------------------------------------

    def _history(self, t: float, user: int, asset: str, business: str, change: Decimal,
                 detail: dict[str, Any]) -> None:
        self._sink("balance_history", [t, user, asset, business, fmt(change),
                                      fmt(self.total(user, asset)), detail])

    def _trade_history(self, order: Order, asset: str, change: Decimal,
                       price_amount: tuple[str, str], fee_rate: Decimal | None = None) -> None:
        """`price_amount`: the fill's printed price and amount (formatted once per fill)."""
        detail = {"m": order.market, "i": order.id, "p": price_amount[0], "a": price_amount[1]}
        if fee_rate is not None:
            detail["f"] = fmt(fee_rate)
        self._history(order.mtime, order.user, asset, "trade", change, detail)

    def _order_event(self, event: int, order: Order, market: Market) -> None:
        self._sink("orders", {"event": event, "order": order.info(), "stock": market.stock,
                             "money": market.money})

    # -- balance.update (me_update.c) ---------------------------------------------------------

    def update_balance(self, t: float, user: int, asset: str, business: str, business_id: int,
                       change: Decimal, detail: dict[str, Any]) -> None:
        """Apply a deposit/withdraw-like change once per (user, asset, business, business_id)."""
        if getcontext() is not CTX:
            return _in_context(self.update_balance, t, user, asset, business, business_id,
                               change, detail)
        key = (user, asset, business, business_id)
        if key in self.update_keys:
            raise EngineError(10, "repeat update")
        supply = self.supply[asset] + change
        if change > 0 and supply.adjusted() >= self.supply_digits[asset]:
            raise EngineError(1, "invalid argument")  # total of `asset` beyond the context
        result: Decimal | None
        if change >= 0:
            result = self._add(self.available, user, asset, abs(change))
        else:
            result = self._sub(self.available, user, asset, abs(change))
        if result is None:
            raise EngineError(11, "balance not enough")
        self.update_keys.add(key)
        self.supply[asset] = supply
        if self.emit_history:
            detail = dict(detail)
            detail["id"] = business_id
            self._history(t, user, asset, business, change, detail)
        if self.emit_balances:
            self._sink("balances", [t, user, asset, business, fmt_raw(change)])

    # -- orders (me_market.c) -----------------------------------------------------------------

    def put_limit(self, t: float, user: int, market_name: str, side: int, amount: Decimal,
                  price: Decimal, taker_fee: Decimal, maker_fee: Decimal, source: str) -> Order:
        """Match a limit order at makers' prices, rest the remainder; returns the order."""
        if getcontext() is not CTX:
            return _in_context(self.put_limit, t, user, market_name, side, amount, price,
                               taker_fee, maker_fee, source)
        market = self.markets[market_name]
        if side == ASK:
            balance = self.available.get((user, market.stock))
            if balance is None or balance < amount:
                raise EngineError(10, "balance not enough")
            against = market.bids.prices
            crosses = bool(against) and price <= against[-1]
        else:
            balance = self.available.get((user, market.money))
            if balance is None or balance < amount * price:
                raise EngineError(10, "balance not enough")
            against = market.asks.prices
            crosses = bool(against) and price >= against[0]
        if amount < market.min_amount:
            raise EngineError(11, "amount too small")
        self.order_id += 1
        order = Order(self.order_id, LIMIT, side, t, t, user, market.name, source, price,
                      amount, taker_fee, maker_fee, amount, ZERO, ZERO, ZERO, ZERO)
        if crosses:  # else it rests at once
            self._execute(market, order, limit=True)
        if order.left == 0:
            if self.emit_finish:
                self._order_event(EVENT_FINISH, order, market)
        else:
            if self.emit_put:
                self._order_event(EVENT_PUT, order, market)
            self._rest(market, order)
        return order

    def put_market(self, t: float, user: int, market_name: str, side: int, amount: Decimal,
                   taker_fee: Decimal, source: str) -> Order:
        """Execute a market order (bid amount = money to spend); it never rests."""
        if getcontext() is not CTX:
            return _in_context(self.put_market, t, user, market_name, side, amount, taker_fee,
                               source)
        market = self.markets[market_name]
        if side == ASK:
            balance = self.available.get((user, market.stock))
            if balance is None or balance < amount:
                raise EngineError(10, "balance not enough")
            if not market.bids.prices:
                raise EngineError(12, "no enough trader")
            if amount < market.min_amount:
                raise EngineError(11, "amount too small")
        else:
            balance = self.available.get((user, market.money))
            if balance is None or balance < amount:
                raise EngineError(10, "balance not enough")
            best = market.asks.best()
            if best is None:
                raise EngineError(12, "no enough trader")
            if amount < best.price * market.min_amount:
                raise EngineError(11, "amount too small")
        self.order_id += 1
        order = Order(self.order_id, MARKET, side, t, t, user, market.name, source, ZERO,
                      amount, taker_fee, ZERO, amount, ZERO, ZERO, ZERO, ZERO)
        if side == BID:
            self._execute_market_bid(market, order)
        else:
            self._execute(market, order, limit=False)
        if self.emit_finish:
            self._order_event(EVENT_FINISH, order, market)
        return order

    def cancel(self, t: float, user: int, market_name: str, order_id: int) -> Order:
        """Cancel a resting order; returns it as it was when cancelled."""
        if getcontext() is not CTX:
            return _in_context(self.cancel, t, user, market_name, order_id)
        market = self.markets[market_name]
        order = market.orders.get(order_id)
        if order is None:
            raise EngineError(10, "order not found")
        if order.user != user:
            raise EngineError(11, "user not match")
        if self.emit_finish:
            self._order_event(EVENT_FINISH, order, market)
        self._finish(market, order)
        return order

    def _rest(self, market: Market, order: Order) -> None:
        order_id, user = order.id, order.user
        market.orders[order_id] = order
        mine = market.users.get(user)
        if mine is None:
            mine = market.users[user] = {}
        mine[order_id] = order
        if order.side == ASK:
            market.asks.add(order)
            order.freeze = order.left
            self._move(self.available, self.frozen, user, market.stock, order.left)
        else:
            market.bids.add(order)
            order.freeze = order.price * order.left
            self._move(self.available, self.frozen, user, market.money, order.freeze)

    def _finish(self, market: Market, order: Order) -> None:
        if order.side == ASK:
            market.asks.remove(order)
            if order.freeze > 0:
                self._move(self.frozen, self.available, order.user, market.stock, order.freeze)
        else:
            market.bids.remove(order)
            if order.freeze > 0:
                self._move(self.frozen, self.available, order.user, market.money, order.freeze)
        del market.orders[order.id]
        mine = market.users[order.user]
        del mine[order.id]
        if not mine:
            del market.users[order.user]

    def _execute(self, market: Market, taker: Order, limit: bool) -> None:
        """execute_limit_{ask,bid}_order and execute_market_ask_order."""
        is_ask = taker.side == ASK
        book = market.bids if is_ask else market.asks
        while taker.left != 0:
            maker = book.best()
            if maker is None:
                break
            if limit and (taker.price > maker.price if is_ask else taker.price < maker.price):
                break
            price = maker.price
            amount = taker.left if taker.left < maker.left else maker.left
            self._fill(market, taker, maker, price, amount, is_ask)

    def _execute_market_bid(self, market: Market, taker: Order) -> None:
        """execute_market_bid_order: spend `left` money, quantity truncated to stock_prec."""
        book = market.asks
        unit = market.stock_unit
        while taker.left != 0:
            maker = book.best()
            if maker is None:
                break
            price = maker.price
            amount = (taker.left / price).quantize(unit)
            while amount * price > taker.left:
                amount -= unit
            if amount > maker.left:
                amount = maker.left
            if amount == 0:
                break
            self._fill(market, taker, maker, price, amount, False)

    def _fill(self, market: Market, taker: Order, maker: Order, price: Decimal,
              amount: Decimal, taker_is_ask: bool) -> None:
        deal = price * amount
        if taker_is_ask:
            ask, bid = taker, maker
            ask_fee = deal * taker.taker_fee
            bid_fee = amount * maker.maker_fee
        else:
            ask, bid = maker, taker
            ask_fee = deal * maker.maker_fee
            bid_fee = amount * taker.taker_fee
        # A fee finer than a balance can hold (prec_save of the asset it is paid in) is cut
        # down to it: the fee debited is then exactly the fee reported in the deal, the order's
        # deal_fee and the history. viabtc debits the exact product and rounds the balance
        # down, losing the difference when stock_prec + money_prec + fee_prec > prec_save
        # (issue 14). A fee that fits keeps its Decimal (and its printed digits) as it was.
        if ask_fee:
            cut = ask_fee.quantize(self.quantum[market.money], rounding=ROUND_DOWN)
            if cut != ask_fee:
                ask_fee = cut
        if bid_fee:
            cut = bid_fee.quantize(self.quantum[market.stock], rounding=ROUND_DOWN)
            if cut != bid_fee:
                bid_fee = cut
        t = taker.mtime  # one timestamp per operation (replayable)
        maker.mtime = t
        self.deal_id += 1
        if self.emit_deals:
            self._sink("deals", [t, market.name, ask.id, bid.id, ask.user, bid.user,
                                 fmt_raw(price), fmt_raw(amount), fmt_raw(ask_fee),
                                 fmt_raw(bid_fee), taker.side, self.deal_id, market.stock,
                                 market.money])
        printed = (fmt(price), fmt(amount)) if self.emit_history else ("", "")
        stock, money = market.stock, market.money
        # taker side
        if taker.type == MARKET and not taker_is_ask:
            taker.left -= deal
        else:
            taker.left -= amount
        taker.deal_stock += amount
        taker.deal_money += deal
        if taker_is_ask:  # the taker pays available stock, receives money, fee in money
            taker.deal_fee += ask_fee
            self._settle(taker, self.available, stock, amount, money, deal, ask_fee,
                         taker.taker_fee, printed)
        else:  # the taker pays available money, receives stock, fee in stock
            taker.deal_fee += bid_fee
            self._settle(taker, self.available, money, deal, stock, amount, bid_fee,
                         taker.taker_fee, printed)
        # maker side
        maker.left -= amount
        maker.deal_stock += amount
        maker.deal_money += deal
        if taker_is_ask:  # maker is a bid: pays frozen money, receives stock, fee in stock
            maker.freeze -= deal
            maker.deal_fee += bid_fee
            self._settle(maker, self.frozen, money, deal, stock, amount, bid_fee,
                         maker.maker_fee, printed)
        else:  # maker is an ask: pays frozen stock, receives money, fee in money
            maker.freeze -= amount
            maker.deal_fee += ask_fee
            self._settle(maker, self.frozen, stock, amount, money, deal, ask_fee,
                         maker.maker_fee, printed)
        if maker.left == 0:
            if self.emit_finish:
                self._order_event(EVENT_FINISH, maker, market)
            self._finish(market, maker)
        elif self.emit_update:
            self._order_event(EVENT_UPDATE, maker, market)

    def _settle(self, order: Order, source: Balances, paid_asset: str, paid: Decimal,
                got_asset: str, got: Decimal, fee: Decimal, fee_rate: Decimal,
                printed: tuple[str, str]) -> None:
        """One party's balance moves of a fill: pay from `source` (available for the taker,
        frozen for the maker), receive into available, pay the fee out of what was received;
        each move followed by its balance-history row."""
        user = order.user
        history = self.emit_history
        self._sub(source, user, paid_asset, paid)
        if history:
            self._trade_history(order, paid_asset, -paid, printed)
        self._add(self.available, user, got_asset, got)
        if history:
            self._trade_history(order, got_asset, got, printed)
        if fee > 0:
            self._sub(self.available, user, got_asset, fee)
            if history:
                self._trade_history(order, got_asset, -fee, printed, fee_rate)

    # -- state capture (snapshots, replay checks) ---------------------------------------------

    def capture(self) -> dict[str, Any]:
        """A consistent copy of the state, cheap enough to take between operations.

        Decimals are immutable, so copying references is enough; serialise it elsewhere."""
        orders = [o.as_tuple() for m in self.markets.values() for o in m.orders.values()]
        return {"order_id": self.order_id, "deal_id": self.deal_id,
                "available": list(self.available.items()), "frozen": list(self.frozen.items()),
                "orders": orders}

    @staticmethod
    def encode(captured: dict[str, Any]) -> dict[str, Any]:
        """JSON-ready form of `capture()`; str(Decimal) keeps the exact value and scale."""
        def row(values: tuple[Any, ...]) -> list[Any]:
            return [str(v) if isinstance(v, Decimal) else v for v in values]

        return {
            "order_id": captured["order_id"], "deal_id": captured["deal_id"],
            "available": sorted([u, a, str(v)] for (u, a), v in captured["available"]),
            "frozen": sorted([u, a, str(v)] for (u, a), v in captured["frozen"]),
            "orders": sorted((row(o) for o in captured["orders"]), key=lambda r: r[0]),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load an `encode()`d state into this (fresh) engine."""
        self.order_id = state["order_id"]
        self.deal_id = state["deal_id"]
        self.available = {(u, a): Decimal(v) for u, a, v in state["available"]}
        self.frozen = {(u, a): Decimal(v) for u, a, v in state["frozen"]}
        with localcontext(CTX):  # the exact total: at most the bound the live engine had
            for table in (self.available, self.frozen):
                for (_, asset), value in table.items():
                    self.supply[asset] += value
        decimal_fields = {"price", "amount", "taker_fee", "maker_fee", "left", "freeze",
                          "deal_stock", "deal_money", "deal_fee"}
        for row in sorted(state["orders"], key=lambda r: r[0]):
            fields = dict(zip(Order.FIELDS, row, strict=True))
            for name in decimal_fields:
                fields[name] = Decimal(fields[name])
            order = Order(**fields)
            market = self.markets[order.market]
            market.orders[order.id] = order
            market.users.setdefault(order.user, {})[order.id] = order
            (market.asks if order.side == ASK else market.bids).add(order)


__all__ = ["ASK", "BID", "LIMIT", "MARKET", "Engine", "EngineError", "Order", "ONE"]
