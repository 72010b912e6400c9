"""The 23 viabtc JSON-RPC methods: parameter checks, dispatch and result shapes.

Write methods are split in two: `parse_write` checks and truncates the raw params into an
operation whose decimals are already at their final precision (that operation is what the
durable log stores, so replay sees exactly what live saw), and `apply_write` runs it on the
engine at a given time. Read methods answer from the engine, the history store and market data.
No I/O happens here; history and market data are passed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any, NoReturn, Protocol

from common.decimals import ONE, ZERO, fmt, fmt_raw, parse, rescale
from common.errors import InvalidArgument
from matchengine.engine import ASK, BID, BookSide, Engine, EngineError, Market
from matchengine.errors import CoreError, invalid

WRITE_METHODS = frozenset({"balance.update", "order.put_limit", "order.put_market",
                           "order.cancel"})
DECIMAL_ARGS = {"update_balance": (4,), "put_limit": (3, 4, 5, 6), "put_market": (3, 4),
                "cancel": ()}
BOOK_MAX = 101
HISTORY_MAX = 101
DEALS_MAX = 10000
SOURCE_MAX = 30
BUSINESS_MAX = 30
UINT32 = 2**32
UINT64 = 2**64

Op = tuple[str, tuple[Any, ...]]
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_STRICT = json.JSONEncoder(allow_nan=False)


class History(Protocol):
    def balance_history(self, user: int, asset: str, business: str, start: int, end: int,
                        offset: int, limit: int) -> list[dict[str, Any]]: ...
    def order_finished(self, user: int, market: str, start: int, end: int, offset: int,
                       limit: int, side: int) -> list[dict[str, Any]]: ...
    def order_deals(self, order_id: int, offset: int, limit: int) -> list[dict[str, Any]]: ...
    def finished_detail(self, order_id: int) -> dict[str, Any] | None: ...
    def user_deals(self, user: int, market: str, offset: int,
                   limit: int) -> list[dict[str, Any]]: ...


# -- parameter helpers ------------------------------------------------------------------------

def _int(value: Any, lo: int = 0, hi: int = UINT64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value < hi:
        raise invalid(f"expected an integer in [{lo}, {hi}), got {value!r}")
    return value


def _str(value: Any, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise invalid(f"expected a string, got {value!r}")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") decodes from JSON, encodes nowhere
        raise invalid(f"not a valid unicode string: {value!r}") from None
    if max_len is not None and size > max_len:
        raise invalid(f"string longer than {max_len} bytes")
    return value


def _arity(params: list[Any], n: int) -> None:
    if len(params) != n:
        raise invalid(f"expected exactly {n} params, got {len(params)}")


def _user(value: Any, nonzero: bool = False) -> int:
    user = _int(value, 1 if nonzero else 0, UINT32)
    return user


def _market(engine: Engine, value: Any) -> Market:
    market = engine.markets.get(value) if isinstance(value, str) else None
    if market is None:
        raise invalid(f"unknown market {value!r}")
    return market


def _side(value: Any, sides: tuple[int, ...] = (ASK, BID)) -> int:
    if type(value) is not int or value not in sides:  # not True, not 1.0
        raise invalid(f"side must be one of {sides}, got {value!r}")
    return value


def _decimal(value: Any, prec: int) -> Decimal:
    number = parse(value, prec) if isinstance(value, str) else None
    if number is None:
        raise invalid(f"not a decimal string: {value!r}")
    return number


# Every number lives in viabtc's 34-digit context. A value whose integer digits plus the
# asset's saved decimals exceed it cannot be applied (the quantize fails half-way through a
# write), so such values are refused while parsing, with nothing changed: code 1.
DIGITS = 34


def _bounded(value: Decimal, int_digits: int, what: str) -> Decimal:
    if value and value.adjusted() >= int_digits:
        raise invalid(f"{what} too large: at most {int_digits} integer digits")
    return value


def _order_digits(engine: Engine, conf: Any) -> int:
    """Integer digits allowed in a market's amounts and prices: their product, at the larger
    saved precision of the two assets, still fits the context."""
    widest = max(engine.prec_save[conf.stock], engine.prec_save[conf.money])
    return (DIGITS - widest) // 2 - 1


def _positive(value: Any, prec: int) -> Decimal:
    number = _decimal(value, prec)
    if number <= 0:
        raise invalid(f"must be > 0: {value!r}")
    return number


def _fee(value: Any, prec: int) -> Decimal:
    number = _decimal(value, prec)
    if number < 0 or number >= ONE:
        raise invalid(f"fee rate must be in [0, 1): {value!r}")
    return number


def _limit(value: Any, lo: int, hi: int) -> int:
    return _int(value, lo, hi + 1)


# -- writes -----------------------------------------------------------------------------------

class _Checked(dict[Any, Decimal]):
    """Checked decimals by their text: a miss runs `check`, which refuses bad text (code 1,
    nothing stored); a value of another type is checked, never stored. A full table is
    cleared. Look values up with `table[text]` (C speed; an unhashable value raises
    TypeError, see `_refuse_unhashable`)."""

    MAX = 65536

    def __init__(self, check: Callable[[Any], Decimal]) -> None:
        super().__init__()
        self.check = check

    def __missing__(self, text: Any) -> Decimal:
        value = self.check(text)
        if type(text) is str:
            if len(self) >= self.MAX:
                self.clear()
            self[text] = value
        return value


class _OrderParams:
    """One market's order decimals, checked and truncated, by their text.

    Order streams repeat the same amounts, prices and fee rates, and a Decimal is immutable, so
    a value checked once is handed out again: `amount(text)` is one dict lookup on the hot
    path and the full check (with its refusal) only for text not seen before."""

    __slots__ = ("conf", "amounts", "prices", "fees", "amount", "price", "fee")

    def __init__(self, engine: Engine, conf: Any) -> None:
        self.conf = conf
        digits = _order_digits(engine, conf)
        self.amounts = _Checked(
            lambda text: _bounded(_positive(text, conf.stock_prec), digits, "amount"))
        self.prices = _Checked(
            lambda text: _bounded(_positive(text, conf.money_prec), digits, "price"))
        self.fees = _Checked(lambda text: _fee(text, conf.fee_prec))
        # the tables' own lookups: no Python frame between the parser and the dict
        self.amount = self.amounts.__getitem__
        self.price = self.prices.__getitem__
        self.fee = self.fees.__getitem__


def _refuse_unhashable(*checks: tuple[_Checked, Any]) -> NoReturn:
    """Raise the check's refusal of the first value a table could not look up (an array or
    an object where a decimal string goes)."""
    for table, value in checks:
        try:
            table[value]
        except TypeError:
            table.check(value)
    raise invalid("invalid argument")  # not reached: the check refuses such a value


def _new_order_params(engine: Engine, market_name: Any) -> _OrderParams:
    """The market's `_OrderParams` when `engine.order_params[market_name]` has none yet (the
    first order of the market, or no market name at all: code 1)."""
    market = _market(engine, market_name)
    params = engine.order_params[market.name] = _OrderParams(engine, market.conf)
    return params


def _source(value: Any) -> str:
    if type(value) is str and len(value) <= SOURCE_MAX and value.isascii():
        return value  # ASCII: one byte a character
    return _str(value, SOURCE_MAX)


def _parse_update_balance(engine: Engine, params: list[Any]) -> Op:
    _arity(params, 6)
    user = _user(params[0])
    asset = params[1]
    if not isinstance(asset, str) or asset not in engine.prec_show:
        raise invalid(f"unknown asset {asset!r}")
    business = _str(params[2], BUSINESS_MAX)
    business_id = _int(params[3])
    change = _bounded(_decimal(params[4], engine.prec_show[asset]),
                      DIGITS - engine.prec_save[asset] - 3, "change")
    detail = params[5]
    if not isinstance(detail, dict):
        raise invalid("detail must be an object")
    try:  # in-process callers pass objects that never went through JSON
        _STRICT.encode(detail)
    except (TypeError, ValueError, RecursionError):
        raise invalid("detail must be a JSON object") from None
    return "update_balance", (user, asset, business, business_id, change, detail)


def _order_target(engine: Engine, user: Any, market: Any, side: Any) -> _OrderParams:
    """Check an order's user, market and side; the market's checked parameters."""
    if type(user) is not int or not 0 <= user < UINT32:
        _user(user)
    checked: _OrderParams
    try:
        checked = engine.order_params[market]
    except (KeyError, TypeError):
        checked = _new_order_params(engine, market)
    if type(side) is not int or side not in (ASK, BID):
        _side(side)
    return checked


def _parse_put_limit(engine: Engine, params: list[Any]) -> Op:
    if len(params) != 8:
        _arity(params, 8)
    user, market, side, amount, price, taker_fee, maker_fee, source = params
    checked = _order_target(engine, user, market, side)
    try:
        return "put_limit", (user, checked.conf.name, side, checked.amount(amount),
                             checked.price(price), checked.fee(taker_fee),
                             checked.fee(maker_fee), _source(source))
    except TypeError:
        _refuse_unhashable((checked.amounts, amount), (checked.prices, price),
                           (checked.fees, taker_fee), (checked.fees, maker_fee))


def _parse_put_market(engine: Engine, params: list[Any]) -> Op:
    if len(params) != 6:
        _arity(params, 6)
    user, market, side, amount, taker_fee, source = params
    checked = _order_target(engine, user, market, side)
    # viabtc parses the amount at stock_prec, also for bids (where it is money to spend)
    try:
        return "put_market", (user, checked.conf.name, side, checked.amount(amount),
                              checked.fee(taker_fee), _source(source))
    except TypeError:
        _refuse_unhashable((checked.amounts, amount), (checked.fees, taker_fee))


def _parse_cancel(engine: Engine, params: list[Any]) -> Op:
    if len(params) != 3:
        _arity(params, 3)
    user, market, order_id = params
    if type(user) is not int or not 0 <= user < UINT32:
        _user(user)
    try:
        name = engine.order_params[market].conf.name
    except (KeyError, TypeError):
        name = _new_order_params(engine, market).conf.name
    if type(order_id) is not int or not 0 <= order_id < UINT64:
        _int(order_id)
    return "cancel", (user, name, order_id)


_WRITE_PARSERS = {"balance.update": _parse_update_balance, "order.put_limit": _parse_put_limit,
                  "order.put_market": _parse_put_market, "order.cancel": _parse_cancel}


def parse_write(engine: Engine, method: str, params: list[Any]) -> Op:
    """Check a write call's params; return the operation with truncated decimals."""
    if not isinstance(params, list):
        raise invalid("params must be an array")
    parser = _WRITE_PARSERS.get(method)
    if parser is None:
        raise CoreError(4, "method not found")
    return parser(engine, params)


def apply_write(engine: Engine, op: Op, t: float) -> Any:
    """Run a parsed operation at time `t`; returns the JSON result, raises CoreError."""
    name, args = op
    try:
        if name == "put_limit":
            return engine.put_limit(t, *args).info()
        if name == "cancel":
            return engine.cancel(t, *args).info()
        if name == "put_market":
            return engine.put_market(t, *args).info()
        if name == "update_balance":
            engine.update_balance(t, *args)
            return {"status": "success"}
    except EngineError as exc:
        raise CoreError(exc.code, exc.message) from None
    raise CoreError(2, "internal error")


def encode_log_entry(op: Op, t: float) -> bytes:
    """The operation-log value `[name, time, args]`: the bytes of compact `json.dumps` with
    decimals as str, written directly (the encoder cost more than the operation). The two
    operations of nearly every order stream have their own format."""
    name, args = op
    if name == "put_limit":
        user, market, side, amount, price, taker_fee, maker_fee, source = args
        return (f'["put_limit",{t!r},[{user:d},{encode_basestring_ascii(market)},{side:d},'
                f'"{amount!s}","{price!s}","{taker_fee!s}","{maker_fee!s}",'
                f'{encode_basestring_ascii(source)}]]').encode()
    if name == "cancel":
        user, market, order_id = args
        return (f'["cancel",{t!r},[{user:d},{encode_basestring_ascii(market)},'
                f'{order_id:d}]]').encode()
    parts = []
    for arg in args:
        kind = type(arg)
        if kind is Decimal:
            parts.append('"' + str(arg) + '"')
        elif kind is int:
            parts.append(str(arg))
        elif kind is str:
            parts.append(encode_basestring_ascii(arg))
        else:
            parts.append(_COMPACT.encode(arg))
    return f'["{name}",{t!r},[{",".join(parts)}]]'.encode()


def decode_op(name: str, args: list[Any]) -> Op:
    positions = DECIMAL_ARGS[name]
    return name, tuple(Decimal(a) if i in positions else a for i, a in enumerate(args))


# -- reads ------------------------------------------------------------------------------------

def _balance_unit(engine: Engine, user: int, asset: str) -> dict[str, str]:
    unit = {}
    save, show = engine.prec_save[asset], engine.prec_show[asset]
    for label, table in (("available", engine.available), ("freeze", engine.frozen)):
        value = table.get((user, asset))
        if value is None:
            unit[label] = "0"
        elif save != show:
            unit[label] = fmt(rescale(value, show))
        else:
            unit[label] = fmt(value)
    return unit


def balance_query(engine: Engine, params: list[Any]) -> dict[str, Any]:
    if not params:
        raise invalid("user_id required")
    user = _user(params[0], nonzero=True)
    assets = params[1:] or list(engine.prec_save)
    for asset in assets:
        if not isinstance(asset, str) or asset not in engine.prec_save:
            raise invalid(f"unknown asset {asset!r}")
    return {asset: _balance_unit(engine, user, asset) for asset in assets}


def asset_list(engine: Engine, params: list[Any]) -> list[Any]:
    return [{"name": a.name, "prec": a.prec_show} for a in engine.config.assets]


def asset_summary(engine: Engine, params: list[Any]) -> list[Any]:
    assets = params or list(engine.prec_save)
    for asset in assets:
        if not isinstance(asset, str) or asset not in engine.prec_save:
            raise invalid(f"unknown asset {asset!r}")
    wanted = set(assets)
    # total, n_avail, avail, n_frz, frz
    sums: dict[str, list[Any]] = {a: [ZERO, 0, ZERO, 0, ZERO] for a in wanted}
    for (_, asset), value in engine.available.items():
        if asset in wanted:
            row = sums[asset]
            row[0] += value
            row[1] += 1
            row[2] += value
    for (_, asset), value in engine.frozen.items():
        if asset in wanted:
            row = sums[asset]
            row[0] += value
            row[3] += 1
            row[4] += value
    return [{"name": a, "total_balance": fmt(sums[a][0]), "available_count": sums[a][1],
             "available_balance": fmt(sums[a][2]), "freeze_count": sums[a][3],
             "freeze_balance": fmt(sums[a][4])} for a in assets]


def market_list(engine: Engine, params: list[Any]) -> list[Any]:
    return [{"name": m.name, "stock": m.stock, "money": m.money, "fee_prec": m.fee_prec,
             "stock_prec": m.stock_prec, "money_prec": m.money_prec,
             "min_amount": fmt(m.min_amount)} for m in engine.config.markets]


def market_summary(engine: Engine, params: list[Any]) -> list[Any]:
    markets = [_market(engine, name) for name in params] or list(engine.markets.values())
    result = []
    for market in markets:
        ask_amount = sum((o.left for o in market.asks), ZERO)
        bid_amount = sum((o.left for o in market.bids), ZERO)
        result.append({"name": market.name, "ask_count": market.asks.count,
                       "ask_amount": fmt(ask_amount), "bid_count": market.bids.count,
                       "bid_amount": fmt(bid_amount)})
    return result


def order_book(engine: Engine, params: list[Any]) -> dict[str, Any]:
    _arity(params, 4)
    market = _market(engine, params[0])
    side = _side(params[1])
    offset = _int(params[2])
    limit = _limit(params[3], 0, BOOK_MAX)
    book = market.asks if side == ASK else market.bids
    orders = []
    for index, order in enumerate(book):
        if index >= offset + limit:
            break
        if index >= offset:
            orders.append(order.info())
    return {"offset": offset, "limit": limit, "total": book.count, "orders": orders}


def _depth_side(book: BookSide, limit: int, interval: Decimal, is_ask: bool) -> list[list[str]]:
    rows: list[list[str]] = []
    price: Decimal | None = None
    amount = ZERO  # set together with price
    for order in book:
        if price is not None:
            same = (order.price == price if interval == 0 else
                    (price >= order.price if is_ask else price <= order.price))
            if same:
                amount += order.left
                continue
            rows.append([fmt(price), fmt(amount)])
            price = None
        if len(rows) >= limit:
            break
        if interval == 0:
            price = order.price
        else:
            q, r = divmod(order.price, interval)
            price = q * interval
            if is_ask and r != 0:
                price += interval
        amount = order.left
    if price is not None and len(rows) < limit:
        rows.append([fmt(price), fmt(amount)])
    return rows


def order_depth(engine: Engine, params: list[Any]) -> dict[str, Any]:
    _arity(params, 3)
    market = _market(engine, params[0])
    limit = _limit(params[1], 0, BOOK_MAX)
    interval = _decimal(params[2], market.conf.money_prec)
    if interval < 0:
        raise invalid("interval must be >= 0")
    return {"asks": _depth_side(market.asks, limit, interval, True),
            "bids": _depth_side(market.bids, limit, interval, False)}


def order_pending(engine: Engine, params: list[Any]) -> dict[str, Any]:
    _arity(params, 4)
    user = _user(params[0])
    market = _market(engine, params[1])
    offset = _int(params[2])
    limit = _limit(params[3], 0, BOOK_MAX)
    mine = market.users.get(user, {})
    ids = sorted(mine, reverse=True)[offset:offset + limit]
    return {"offset": offset, "limit": limit, "total": len(mine),
            "records": [mine[i].info() for i in ids]}


def order_pending_detail(engine: Engine, params: list[Any]) -> dict[str, Any] | None:
    _arity(params, 2)
    market = _market(engine, params[0])
    order = market.orders.get(_int(params[1]))
    return order.info() if order is not None else None


def balance_history(engine: Engine, history: History, params: list[Any]) -> dict[str, Any]:
    _arity(params, 7)
    user = _user(params[0], nonzero=True)
    asset = _str(params[1])
    if asset and asset not in engine.prec_save:
        raise invalid(f"unknown asset {asset!r}")
    business = _str(params[2], BUSINESS_MAX)
    start, end = _int(params[3]), _int(params[4])
    if end and start > end:
        raise invalid("start_time after end_time")
    offset = _int(params[5])
    limit = _limit(params[6], 1, HISTORY_MAX)
    records = history.balance_history(user, asset, business, start, end, offset, limit)
    return {"offset": offset, "limit": limit, "records": records}


def order_finished(engine: Engine, history: History, params: list[Any]) -> dict[str, Any]:
    if len(params) not in (6, 7):
        raise invalid("expected 6 or 7 params")
    user = _user(params[0], nonzero=True)
    market = _market(engine, params[1])
    start, end = _int(params[2]), _int(params[3])
    if end and start > end:
        raise invalid("start_time after end_time")
    offset = _int(params[4])
    limit = _limit(params[5], 1, HISTORY_MAX)
    side = 0
    if len(params) == 7:
        side = _side(params[6], (0, ASK, BID))
    records = history.order_finished(user, market.name, start, end, offset, limit, side)
    return {"offset": offset, "limit": limit, "records": records}


def order_deals(engine: Engine, history: History, params: list[Any]) -> dict[str, Any]:
    _arity(params, 3)
    order_id = _int(params[0], 1)
    offset = _int(params[1])
    limit = _limit(params[2], 1, HISTORY_MAX)
    return {"offset": offset, "limit": limit,
            "records": history.order_deals(order_id, offset, limit)}


def order_finished_detail(engine: Engine, history: History,
                          params: list[Any]) -> dict[str, Any] | None:
    _arity(params, 1)
    return history.finished_detail(_int(params[0], 1))


def market_user_deals(engine: Engine, history: History, params: list[Any]) -> dict[str, Any]:
    _arity(params, 4)
    user = _user(params[0], nonzero=True)
    market = _market(engine, params[1])
    offset = _int(params[2])
    limit = _limit(params[3], 1, HISTORY_MAX)
    return {"offset": offset, "limit": limit,
            "records": history.user_deals(user, market.name, offset, limit)}


ENGINE_READS = {
    "balance.query": balance_query, "asset.list": asset_list, "asset.summary": asset_summary,
    "market.list": market_list, "market.summary": market_summary, "order.book": order_book,
    "order.depth": order_depth, "order.pending": order_pending,
    "order.pending_detail": order_pending_detail,
}
HISTORY_READS = {
    "balance.history": balance_history, "order.finished": order_finished,
    "order.deals": order_deals, "order.finished_detail": order_finished_detail,
    "market.user_deals": market_user_deals,
}
MARKET_READS = {"market.last", "market.deals", "market.kline", "market.status",
                "market.status_today"}
ALL_METHODS = WRITE_METHODS | set(ENGINE_READS) | set(HISTORY_READS) | MARKET_READS


class MarketReads(Protocol):
    """What the core needs of a market-data service (``marketdata.MarketData`` is one): it
    follows the ``deals`` events and answers the five ``market.*`` reads, raising
    ``InvalidArgument`` for a value out of range."""

    def on_deal(self, deal: list[Any]) -> None: ...
    def last(self, market: str) -> str: ...
    def deals(self, market: str, limit: int, last_id: int) -> list[Any]: ...
    def kline(self, market: str, start: int, end: int, interval: int) -> list[Any]: ...
    def status(self, market: str, period: int) -> dict[str, Any]: ...
    def status_today(self, market: str) -> dict[str, Any]: ...


def market_read(engine: Engine, md: MarketReads | None, method: str, params: list[Any]) -> Any:
    """Arity, types and market name are checked here; ranges are market data's business."""
    if md is None:
        raise CoreError(3, "service unavailable")  # a core composed without market data
    call: tuple[Any, ...]  # (bound method, its arguments...)
    if method == "market.last":
        _arity(params, 1)
        call = (md.last, _market(engine, params[0]).name)
    elif method == "market.deals":
        _arity(params, 3)
        call = (md.deals, _market(engine, params[0]).name, _int(params[1], -2**63, 2**63),
                _int(params[2], -2**63, 2**63))
    elif method == "market.kline":
        _arity(params, 4)
        call = (md.kline, _market(engine, params[0]).name,
                *(_int(p, -2**63, 2**63) for p in params[1:]))
    elif method == "market.status":
        _arity(params, 2)
        call = (md.status, _market(engine, params[0]).name, _int(params[1], -2**63, 2**63))
    else:
        _arity(params, 1)
        call = (md.status_today, _market(engine, params[0]).name)
    try:
        return call[0](*call[1:])
    except InvalidArgument as exc:
        raise invalid(str(exc)) from None


__all__ = ["ALL_METHODS", "WRITE_METHODS", "apply_write", "parse_write", "fmt_raw"]
