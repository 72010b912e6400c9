"""History built from the engine's event stream: balance history, finished orders (including
cancelled-unfilled ones, unlike viabtc), order deals, user deals, and the deals feed that market
data is rebuilt from at start-up.

`HistoryWriter` subscribes to the bus and turns events into LMDB rows, staged in memory; the
service writer flushes them in the same transaction as the operations that produced them, so
history is exactly as durable as the operation log and replay never has to rewrite it.
`HistoryReader` answers the readhistory methods (newest first, like viabtc's ORDER BY id DESC).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from common.decimals import CTX, fmt
from matchengine.bus import EventBus
from matchengine.engine import ASK, BID, EVENT_FINISH, MAKER, TAKER
from matchengine.store import Rows, Store, dumps, empty_rows, u32, u64

SEQ_PER_OPERATION = 1 << 20


_text = encode_basestring_ascii  # a JSON string literal, as json.dumps writes it


_TRADE_DETAIL = ("m", "i", "p", "a")
_TRADE_FEE_DETAIL = ("m", "i", "p", "a", "f")


def _detail(detail: Any) -> str:
    """JSON of a balance-history detail; the engine's trade details are written directly."""
    if type(detail) is dict:
        keys = tuple(detail)
        if (keys == _TRADE_DETAIL or keys == _TRADE_FEE_DETAIL) and type(detail["i"]) is int \
                and type(detail["m"]) is str and type(detail["p"]) is str \
                and type(detail["a"]) is str and type(detail.get("f", "")) is str:
            text = (f'{{"m":{_text(detail["m"])},"i":{detail["i"]},"p":{_text(detail["p"])},'
                    f'"a":{_text(detail["a"])}')
            return text + (f',"f":{_text(detail["f"])}}}' if len(keys) == 5 else "}")
    return dumps(detail).decode()


_MARKET_KEYS: dict[str, bytes] = {}


def _market_key(market: str) -> bytes:
    key = _MARKET_KEYS.get(market)
    if key is None:
        key = _MARKET_KEYS[market] = market.encode().ljust(31, b"\0")
    return key


class HistoryWriter:
    """Stages history rows for the operations applied since the last `take()`."""

    def __init__(self, bus: EventBus) -> None:
        self.pending: Rows = empty_rows()
        self._bind()
        self.oper_id = 0
        self._index = 0
        self._marks: tuple[int, ...] = ()
        bus.subscribe("balance_history", self._on_balance)
        bus.subscribe("orders", self._on_order, events=(EVENT_FINISH,))
        bus.subscribe("deals", self._on_deal)

    def _bind(self) -> None:
        """Name the table lists of `pending` (in the store's HISTORY_DBS order)."""
        (self._balances, self._orders, self._details, self._order_deals, self._user_deals,
         self._deals) = self.pending

    def begin(self, oper_id: int) -> None:
        """Rows staged from now on belong to operation `oper_id` (keys derive from it)."""
        self.oper_id = oper_id
        self._index = 0
        self._marks = tuple(map(len, self.pending))

    def rollback(self) -> None:
        """Drop the rows staged since `begin` (the operation failed and is not logged)."""
        for items, mark in zip(self.pending, self._marks, strict=True):
            del items[mark:]

    def _seq(self) -> bytes:
        self._index += 1
        return u64(self.oper_id * SEQ_PER_OPERATION + self._index)

    def take(self) -> Rows:
        rows, self.pending = self.pending, empty_rows()
        self._bind()
        return rows

    def discard(self) -> None:
        self.take()

    # The rows are written as JSON text directly (same bytes as `dumps(record)`): building a
    # dict and running the encoder was most of the writer's per-operation cost. Numbers and the
    # engine's decimal strings need no escaping; names and user text go through `_text`.

    def _on_balance(self, row: list[Any]) -> None:
        t, user, asset, business, change, balance, detail = row
        self._balances.append((u32(user) + self._seq(),
                               (f'{{"time":{t!r},"asset":{_text(asset)},'
                                f'"business":{_text(business)},"change":"{change}",'
                                f'"balance":"{balance}","detail":{_detail(detail)}}}').encode()))

    def _on_order(self, message: dict[str, Any]) -> None:
        if message["event"] != EVENT_FINISH:
            return
        o = message["order"]
        value = (f'{{"id":{o["id"]},"ctime":{o["ctime"]!r},"ftime":{o["mtime"]!r},'
                 f'"user":{o["user"]},"market":{_text(o["market"])},'
                 f'"source":{_text(o["source"])},"type":{o["type"]},"side":{o["side"]},'
                 f'"price":"{o["price"]}","amount":"{o["amount"]}",'
                 f'"taker_fee":"{o["taker_fee"]}","maker_fee":"{o["maker_fee"]}",'
                 f'"deal_stock":"{o["deal_stock"]}","deal_money":"{o["deal_money"]}",'
                 f'"deal_fee":"{o["deal_fee"]}"}}').encode()
        order_key = u64(o["id"])
        # the record once, under the order id; the per-user index entry points at it
        self._orders.append((u32(o["user"]) + _market_key(o["market"]) + order_key, b""))
        self._details.append((order_key, value))

    def _on_deal(self, deal: list[Any]) -> None:
        """Deal messages carry viabtc's unstripped decimals; history rows are zero-stripped."""
        (t, market, ask_id, bid_id, ask_user, bid_user, price_raw, amount_raw, ask_fee, bid_fee,
         taker_side, deal_id, stock, money_asset) = deal
        price, amount = fmt(Decimal(price_raw)), fmt(Decimal(amount_raw))
        money = fmt(CTX.multiply(Decimal(price), Decimal(amount)))  # as from stripped strings
        ask_role = MAKER if taker_side == BID else TAKER
        bid_role = MAKER if taker_side == ASK else TAKER
        sides = ((ASK, ask_id, ask_user, ask_role, ask_fee, bid_id),
                 (BID, bid_id, bid_user, bid_role, bid_fee, ask_id))
        market_key = _market_key(market)
        market_tail = ',"market":' + _text(market) + "}"
        order_deals, user_deals = self._order_deals, self._user_deals
        when = repr(t)  # the float as json.dumps writes it, once for the three rows
        for side, order_id, user, role, fee, other in sides:
            record = (f'{{"time":{when},"user":{user},"id":{deal_id},"role":{role},'
                      f'"price":"{price}","amount":"{amount}","deal":"{money}",'
                      f'"fee":"{fmt(Decimal(fee))}","deal_order_id":{other}}}').encode()
            order_deals.append((u64(order_id) + u64(deal_id), record))
            # the same object plus side and market, as dict(record, side=..., market=...)
            user_record = record[:-1] + b',"side":%d' % side + market_tail.encode()
            user_deals.append((u32(user) + market_key + u64(deal_id) + bytes([side]),
                               user_record))
        # the message as json.dumps writes it: its decimals and names need no escaping
        self._deals.append((u64(deal_id), (
            f'[{when},{_text(market)},{ask_id},{bid_id},{ask_user},{bid_user},"{price_raw}",'
            f'"{amount_raw}","{ask_fee}","{bid_fee}",{taker_side},{deal_id},{_text(stock)},'
            f'{_text(money_asset)}]').encode()))


class HistoryReader:
    """The readhistory queries over the store. Each query first indexes the rows the store
    has staged, so it sees every acknowledged operation."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _page(rows: Any, offset: int, limit: int) -> list[dict[str, Any]]:
        out = []
        for index, record in enumerate(rows):
            if index >= offset + limit:
                break
            if index >= offset:
                out.append(record)
        return out

    def balance_history(self, user: int, asset: str, business: str, start: int, end: int,
                        offset: int, limit: int) -> list[dict[str, Any]]:
        self.store.index_history()

        def rows() -> Iterator[dict[str, Any]]:
            for _, value in self.store.scan_prefix_desc("h_balance", u32(user)):
                record = json.loads(value)
                if asset and record["asset"] != asset:
                    continue
                if business and record["business"] != business:
                    continue
                if start and record["time"] < start:
                    continue
                if end and record["time"] >= end:
                    continue
                yield record
        return self._page(rows(), offset, limit)

    def order_finished(self, user: int, market: str, start: int, end: int, offset: int,
                       limit: int, side: int) -> list[dict[str, Any]]:
        self.store.index_history()

        def rows() -> Iterator[dict[str, Any]]:
            prefix = u32(user) + _market_key(market)
            for key, value in self.store.scan_prefix_desc("h_order", prefix):
                # data written before the index entries became pointers hold the record
                found = value or self.store.get("h_detail", key[-8:])
                if found is None:  # both are written in one transaction: never expected
                    continue
                record = json.loads(found)
                if side and record["side"] != side:
                    continue
                if start and record["ctime"] < start:
                    continue
                if end and record["ctime"] >= end:
                    continue
                yield record
        return self._page(rows(), offset, limit)

    def order_deals(self, order_id: int, offset: int, limit: int) -> list[dict[str, Any]]:
        self.store.index_history()
        rows = (json.loads(v) for _, v in self.store.scan_prefix_desc("h_odeal", u64(order_id)))
        return self._page(rows, offset, limit)

    def finished_detail(self, order_id: int) -> dict[str, Any] | None:
        self.store.index_history()
        value = self.store.get("h_detail", u64(order_id))
        return None if value is None else json.loads(value)

    def user_deals(self, user: int, market: str, offset: int, limit: int) -> list[dict[str, Any]]:
        self.store.index_history()
        prefix = u32(user) + _market_key(market)
        rows = (json.loads(v) for _, v in self.store.scan_prefix_desc("h_udeal", prefix))
        return self._page(rows, offset, limit)

    def recent_deals(self, since: float, markets: list[str]) -> list[list[Any]]:
        """Deals with time >= since, plus each market's latest older deal, in deal-id order."""
        self.store.index_history()
        recent: list[list[Any]] = []
        missing = set(markets)
        for _, value in self.store.iter_desc("h_deal"):
            deal = json.loads(value)
            if deal[0] >= since:
                recent.append(deal)
                missing.discard(deal[1])
            elif deal[1] in missing:
                recent.append(deal)
                missing.discard(deal[1])
            elif not missing:
                break
        recent.sort(key=lambda d: d[11])
        return recent
