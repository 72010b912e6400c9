"""The pure matching engine: balances, order books, matching, cancellation.

Owns the exchange state and nothing else: no I/O, no clocks, no threads. Every write operation
takes its timestamp as an argument, so replaying the operation log with the logged times gives
bit-identical state. Arithmetic follows viabtc's `me_balance.c` / `me_market.c` step for step
(34-digit ROUND_DOWN context, balances rescaled to `prec_save` after every change), so the same
operations give the same numbers as viabtc.

Events (viabtc's `deals`, `orders`, `balances` message shapes, plus `balance_history` rows) are
handed to an optional `sink(topic, message)`; with no sink the engine builds no messages at all.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from decimal import Decimal, localcontext
from typing import Any

from matchengine.config import CoreConfig, MarketConfig
from matchengine.decimals import CTX, ONE, ZERO, exponent, fmt

ASK, BID = 1, 2
LIMIT, MARKET = 1, 2
MAKER, TAKER = 1, 2
EVENT_PUT, EVENT_UPDATE, EVENT_FINISH = 1, 2, 3

Sink = Callable[[str, Any], None]


class EngineError(Exception):
    """A business rule refused the operation (viabtc's method-specific codes); nothing changed."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Order:
    """One order; `freeze` is internal (never printed), as in viabtc."""

    __slots__ = ("id", "type", "side", "ctime", "mtime", "user", "market", "source", "price",
                 "amount", "taker_fee", "maker_fee", "left", "freeze", "deal_stock",
                 "deal_money", "deal_fee")

    FIELDS = __slots__

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields[name])

    def info(self) -> dict[str, Any]:
        """viabtc's `get_order_info` object."""
        return {
            "id": self.id, "market": self.market, "source": self.source, "type": self.type,
            "side": self.side, "user": self.user, "ctime": self.ctime, "mtime": self.mtime,
            "price": fmt(self.price), "amount": fmt(self.amount),
            "taker_fee": fmt(self.taker_fee), "maker_fee": fmt(self.maker_fee),
            "left": fmt(self.left), "deal_stock": fmt(self.deal_stock),
            "deal_money": fmt(self.deal_money), "deal_fee": fmt(self.deal_fee),
        }

    def as_tuple(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)


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


class Engine:
    """All markets and balances. Call the write methods from one thread only."""

    def __init__(self, config: CoreConfig, sink: Sink | None = None) -> None:
        self.config = config
        self.sink = sink
        self.prec_save = {a.name: a.prec_save for a in config.assets}
        self.prec_show = {a.name: a.prec_show for a in config.assets}
        self.quantum = {a.name: exponent(a.prec_save) for a in config.assets}
        self.markets = {m.name: Market(m) for m in config.markets}
        self.available: dict[tuple[int, str], Decimal] = {}
        self.frozen: dict[tuple[int, str], Decimal] = {}
        self.update_keys: set[tuple[int, str, str, int]] = set()
        self.order_id = 0
        self.deal_id = 0

    # -- balances (me_balance.c) ------------------------------------------------------------

    def _add(self, table: dict, user: int, asset: str, amount: Decimal) -> Decimal:
        key = (user, asset)
        current = table.get(key)
        if current is None:
            if amount == 0:
                return ZERO
            current = ZERO
        result = (current + amount).quantize(self.quantum[asset])
        table[key] = result
        return result

    def _sub(self, table: dict, user: int, asset: str, amount: Decimal) -> Decimal | None:
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

    def _freeze(self, user: int, asset: str, amount: Decimal) -> None:
        available = self.available.get((user, asset))
        if available is None or available < amount:
            raise AssertionError("freeze beyond available balance")  # checked before matching
        self._add(self.frozen, user, asset, amount)
        self._sub(self.available, user, asset, amount)

    def _unfreeze(self, user: int, asset: str, amount: Decimal) -> None:
        self._add(self.available, user, asset, amount)
        self._sub(self.frozen, user, asset, amount)

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
                 detail: dict) -> None:
        self.sink("balance_history", [t, user, asset, business, fmt(change),
                                      fmt(self.total(user, asset)), detail])

    def _trade_history(self, order: Order, asset: str, change: Decimal, price: Decimal,
                       amount: Decimal, fee_rate: Decimal | None = None) -> None:
        detail = {"m": order.market, "i": order.id, "p": fmt(price), "a": fmt(amount)}
        if fee_rate is not None:
            detail["f"] = fmt(fee_rate)
        self._history(order.mtime, order.user, asset, "trade", change, detail)

    def _order_event(self, event: int, order: Order, market: Market) -> None:
        self.sink("orders", {"event": event, "order": order.info(), "stock": market.stock,
                             "money": market.money})

    # -- balance.update (me_update.c) ---------------------------------------------------------

    def update_balance(self, t: float, user: int, asset: str, business: str, business_id: int,
                       change: Decimal, detail: dict) -> None:
        """Apply a deposit/withdraw-like change once per (user, asset, business, business_id)."""
        with localcontext(CTX):
            key = (user, asset, business, business_id)
            if key in self.update_keys:
                raise EngineError(10, "repeat update")
            if change >= 0:
                result = self._add(self.available, user, asset, abs(change))
            else:
                result = self._sub(self.available, user, asset, abs(change))
            if result is None:
                raise EngineError(11, "balance not enough")
            self.update_keys.add(key)
            if self.sink is not None:
                detail = dict(detail)
                detail["id"] = business_id
                self._history(t, user, asset, business, change, detail)
                self.sink("balances", [t, user, asset, business, fmt(change)])

    # -- orders (me_market.c) -----------------------------------------------------------------

    def _new_order(self, t: float, kind: int, market: Market, user: int, side: int,
                   amount: Decimal, price: Decimal, taker_fee: Decimal, maker_fee: Decimal,
                   source: str) -> Order:
        self.order_id += 1
        return Order(id=self.order_id, type=kind, side=side, ctime=t, mtime=t, user=user,
                     market=market.name, source=source, price=price, amount=amount,
                     taker_fee=taker_fee, maker_fee=maker_fee, left=amount, freeze=ZERO,
                     deal_stock=ZERO, deal_money=ZERO, deal_fee=ZERO)

    def put_limit(self, t: float, user: int, market_name: str, side: int, amount: Decimal,
                  price: Decimal, taker_fee: Decimal, maker_fee: Decimal, source: str) -> Order:
        """Match a limit order at makers' prices, rest the remainder; returns the order."""
        market = self.markets[market_name]
        with localcontext(CTX):
            if side == ASK:
                balance = self.available.get((user, market.stock))
                if balance is None or balance < amount:
                    raise EngineError(10, "balance not enough")
            else:
                balance = self.available.get((user, market.money))
                if balance is None or balance < amount * price:
                    raise EngineError(10, "balance not enough")
            if amount < market.conf.min_amount:
                raise EngineError(11, "amount too small")
            order = self._new_order(t, LIMIT, market, user, side, amount, price, taker_fee,
                                    maker_fee, source)
            self._execute(market, order, limit=True)
            if order.left == 0:
                if self.sink is not None:
                    self._order_event(EVENT_FINISH, order, market)
            else:
                if self.sink is not None:
                    self._order_event(EVENT_PUT, order, market)
                self._rest(market, order)
            return order

    def put_market(self, t: float, user: int, market_name: str, side: int, amount: Decimal,
                   taker_fee: Decimal, source: str) -> Order:
        """Execute a market order (bid amount = money to spend); it never rests."""
        market = self.markets[market_name]
        with localcontext(CTX):
            if side == ASK:
                balance = self.available.get((user, market.stock))
                if balance is None or balance < amount:
                    raise EngineError(10, "balance not enough")
                if not market.bids.prices:
                    raise EngineError(12, "no enough trader")
                if amount < market.conf.min_amount:
                    raise EngineError(11, "amount too small")
            else:
                balance = self.available.get((user, market.money))
                if balance is None or balance < amount:
                    raise EngineError(10, "balance not enough")
                best = market.asks.best()
                if best is None:
                    raise EngineError(12, "no enough trader")
                if amount < best.price * market.conf.min_amount:
                    raise EngineError(11, "amount too small")
            order = self._new_order(t, MARKET, market, user, side, amount, ZERO, taker_fee,
                                    ZERO, source)
            if side == BID:
                self._execute_market_bid(market, order)
            else:
                self._execute(market, order, limit=False)
            if self.sink is not None:
                self._order_event(EVENT_FINISH, order, market)
            return order

    def cancel(self, t: float, user: int, market_name: str, order_id: int) -> Order:
        """Cancel a resting order; returns it as it was when cancelled."""
        market = self.markets[market_name]
        with localcontext(CTX):
            order = market.orders.get(order_id)
            if order is None:
                raise EngineError(10, "order not found")
            if order.user != user:
                raise EngineError(11, "user not match")
            if self.sink is not None:
                self._order_event(EVENT_FINISH, order, market)
            self._finish(market, order)
            return order

    def _rest(self, market: Market, order: Order) -> None:
        market.orders[order.id] = order
        market.users.setdefault(order.user, {})[order.id] = order
        if order.side == ASK:
            market.asks.add(order)
            order.freeze = order.left
            self._freeze(order.user, market.stock, order.left)
        else:
            market.bids.add(order)
            order.freeze = order.price * order.left
            self._freeze(order.user, market.money, order.freeze)

    def _finish(self, market: Market, order: Order) -> None:
        if order.side == ASK:
            market.asks.remove(order)
            if order.freeze > 0:
                self._unfreeze(order.user, market.stock, order.freeze)
        else:
            market.bids.remove(order)
            if order.freeze > 0:
                self._unfreeze(order.user, market.money, order.freeze)
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
        t = taker.mtime  # one timestamp per operation (replayable)
        maker.mtime = t
        self.deal_id += 1
        sink = self.sink
        if sink is not None:
            sink("deals", [t, market.name, ask.id, bid.id, ask.user, bid.user, fmt(price),
                           fmt(amount), fmt(ask_fee), fmt(bid_fee), taker.side, self.deal_id,
                           market.stock, market.money])
        stock, money = market.stock, market.money
        # taker side
        if taker.type == MARKET and not taker_is_ask:
            taker.left -= deal
        else:
            taker.left -= amount
        taker.deal_stock += amount
        taker.deal_money += deal
        taker_fee = ask_fee if taker_is_ask else bid_fee
        taker.deal_fee += taker_fee
        if taker_is_ask:
            self._sub(self.available, taker.user, stock, amount)
            if sink is not None:
                self._trade_history(taker, stock, -amount, price, amount)
            self._add(self.available, taker.user, money, deal)
            if sink is not None:
                self._trade_history(taker, money, deal, price, amount)
            if ask_fee > 0:
                self._sub(self.available, taker.user, money, ask_fee)
                if sink is not None:
                    self._trade_history(taker, money, -ask_fee, price, amount, taker.taker_fee)
        else:
            self._sub(self.available, taker.user, money, deal)
            if sink is not None:
                self._trade_history(taker, money, -deal, price, amount)
            self._add(self.available, taker.user, stock, amount)
            if sink is not None:
                self._trade_history(taker, stock, amount, price, amount)
            if bid_fee > 0:
                self._sub(self.available, taker.user, stock, bid_fee)
                if sink is not None:
                    self._trade_history(taker, stock, -bid_fee, price, amount, taker.taker_fee)
        # maker side
        maker.left -= amount
        maker.deal_stock += amount
        maker.deal_money += deal
        if taker_is_ask:  # maker is a bid: pays frozen money, receives stock, fee in stock
            maker.freeze -= deal
            maker.deal_fee += bid_fee
            self._sub(self.frozen, maker.user, money, deal)
            if sink is not None:
                self._trade_history(maker, money, -deal, price, amount)
            self._add(self.available, maker.user, stock, amount)
            if sink is not None:
                self._trade_history(maker, stock, amount, price, amount)
            if bid_fee > 0:
                self._sub(self.available, maker.user, stock, bid_fee)
                if sink is not None:
                    self._trade_history(maker, stock, -bid_fee, price, amount, maker.maker_fee)
        else:  # maker is an ask: pays frozen stock, receives money, fee in money
            maker.freeze -= amount
            maker.deal_fee += ask_fee
            self._sub(self.frozen, maker.user, stock, amount)
            if sink is not None:
                self._trade_history(maker, stock, -amount, price, amount)
            self._add(self.available, maker.user, money, deal)
            if sink is not None:
                self._trade_history(maker, money, deal, price, amount)
            if ask_fee > 0:
                self._sub(self.available, maker.user, money, ask_fee)
                if sink is not None:
                    self._trade_history(maker, money, -ask_fee, price, amount, maker.maker_fee)
        if maker.left == 0:
            if sink is not None:
                self._order_event(EVENT_FINISH, maker, market)
            self._finish(market, maker)
        elif sink is not None:
            self._order_event(EVENT_UPDATE, maker, market)

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
        def row(values: tuple) -> list:
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
