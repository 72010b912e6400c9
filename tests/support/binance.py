"""A stand-in for binance's spot REST API on ``responses``, in binance's own JSON shapes.

No external exchange can be reached here, so the ccxt venue tests drive ccxt's real binance
client against this: ``GET /api/v3/exchangeInfo`` (load_markets), ``GET /api/v3/depth``,
``POST /api/v3/order`` (market buy by ``quoteOrderQty`` with ``newClientOrderId``),
``GET /api/v3/order`` (by ``orderId`` or ``origClientOrderId``), ``GET /api/v3/allOrders`` and
``GET /api/v3/myTrades``.
Signed calls are checked (HMAC-SHA256 of the query with the secret, the API key header, the
timestamp) the way binance checks them. Orders live in ``orders`` so a test can fill them
later, and every request is in ``calls`` so a test can count POSTs.

Field names and error bodies follow binance's spot API documentation; the fill a POST gets is
chosen by the test (``fill_next``), and ``fail_next`` / ``raise_next`` make the next POST
answer an error or lose its answer after the order was stored (a timeout).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import responses

BASE = "http://binance.test"
SYMBOL = "SKYBTC"
NOW_MS = 1_764_633_600_000


def exchange_info(*, min_notional: str = "0.00010000", min_qty: str = "0.10000000",
                  status: str = "TRADING") -> dict[str, Any]:
    """``GET /api/v3/exchangeInfo`` with one market, SKYBTC (SKY bought with BTC)."""
    return {
        "timezone": "UTC",
        "serverTime": NOW_MS,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        ],
        "exchangeFilters": [],
        "symbols": [{
            "symbol": SYMBOL,
            "status": status,
            "baseAsset": "SKY",
            "baseAssetPrecision": 8,
            "quoteAsset": "BTC",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "1000.00000000",
                 "tickSize": "0.00000001"},
                {"filterType": "LOT_SIZE", "minQty": min_qty, "maxQty": "9000000.00000000",
                 "stepSize": "0.10000000"},
                {"filterType": "NOTIONAL", "minNotional": min_notional, "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100000.00000000",
                 "stepSize": "0.00000000"},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }],
    }


@dataclass
class Fill:
    price: str
    qty: str
    commission: str
    asset: str = "SKY"


def error(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


@dataclass
class FakeBinance:
    """The spot API of one account; register with ``install(rsps)``."""

    api_key: str
    secret: str
    base: str = BASE
    info: dict[str, Any] = field(default_factory=exchange_info)
    asks: list[list[str]] = field(default_factory=lambda: [["0.00000200", "100000.00000000"]])
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    # what the next POSTs do (consumed in order): fills + final status, an error, or a lost answer
    fill_next: list[tuple[list[Fill], str]] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    raise_next: list[Exception] = field(default_factory=list)
    hide_lookups: int = 0  # lookups by client id that answer "does not exist" (lag after a POST)
    next_id: int = 1000

    def install(self, rsps: responses.RequestsMock) -> None:
        api = re.escape(self.base + "/api/v3/")
        rsps.add_callback(responses.GET, re.compile(api + r"exchangeInfo(\?.*)?$"), self._exchange_info)
        rsps.add_callback(responses.GET, re.compile(api + r"depth\?.*"), self._depth)
        rsps.add_callback(responses.POST, re.compile(api + r"order$"), self._post_order)
        rsps.add_callback(responses.GET, re.compile(api + r"order\?.*"), self._get_order)
        rsps.add_callback(responses.GET, re.compile(api + r"myTrades\?.*"), self._my_trades)
        rsps.add_callback(responses.GET, re.compile(api + r"allOrders\?.*"), self._all_orders)

    def posts(self) -> list[dict[str, str]]:
        return [params for method, path, params in self.calls if method == "POST"]

    # --- endpoints ------------------------------------------------------------------------

    def _exchange_info(self, request: Any) -> tuple[int, dict[str, str], str]:
        self._record(request, signed=False)
        return 200, {}, json.dumps(self.info)

    def _depth(self, request: Any) -> tuple[int, dict[str, str], str]:
        params = self._record(request, signed=False)
        assert params["symbol"] == SYMBOL
        return 200, {}, json.dumps({"lastUpdateId": 1, "bids": [["0.00000150", "500.00000000"]],
                                    "asks": self.asks})

    def _post_order(self, request: Any) -> tuple[int, dict[str, str], str]:
        params = self._record(request, signed=True)
        if self.fail_next:
            http_status, body = self.fail_next.pop(0)
            return http_status, {}, json.dumps(body)
        cid = params["newClientOrderId"]
        if any(o["clientOrderId"] == cid and o["status"] in ("NEW", "PARTIALLY_FILLED")
               for o in self.orders.values()):
            return 400, {}, json.dumps(error(-2010, "Duplicate order sent."))
        fills, status = self.fill_next.pop(0) if self.fill_next else ([], "NEW")
        order_id = self.next_id
        self.next_id += 1
        self.orders[order_id] = {
            "symbol": params["symbol"], "orderId": order_id, "orderListId": -1,
            "clientOrderId": cid, "price": "0.00000000", "origQty": "0.00000000",
            "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000",
            "origQuoteOrderQty": params["quoteOrderQty"], "status": "NEW",
            "timeInForce": "GTC", "type": params["type"], "side": params["side"],
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": NOW_MS,
            "updateTime": NOW_MS, "isWorking": True, "workingTime": NOW_MS,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        self.fill(order_id, fills, status)
        if self.raise_next:
            raise self.raise_next.pop(0)  # the order exists; the answer never arrives
        answer = {k: v for k, v in self.orders[order_id].items()
                  if k not in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking")}
        answer["transactTime"] = NOW_MS
        answer["fills"] = [
            {"price": t["price"], "qty": t["qty"], "commission": t["commission"],
             "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
            for t in self.trades[order_id]
        ]
        return 200, {}, json.dumps(answer)

    def _get_order(self, request: Any) -> tuple[int, dict[str, str], str]:
        params = self._record(request, signed=True)
        if "origClientOrderId" in params:
            if self.hide_lookups:
                self.hide_lookups -= 1
                found = []
            else:
                found = [o for o in self.orders.values()
                         if o["clientOrderId"] == params["origClientOrderId"]]
        else:
            found = [self.orders[int(params["orderId"])]] if int(params["orderId"]) in self.orders else []
        if not found:
            return 400, {}, json.dumps(error(-2013, "Order does not exist."))
        return 200, {}, json.dumps(found[-1])

    def _all_orders(self, request: Any) -> tuple[int, dict[str, str], str]:
        params = self._record(request, signed=True)
        return 200, {}, json.dumps([o for o in self.orders.values() if o["symbol"] == params["symbol"]])

    def _my_trades(self, request: Any) -> tuple[int, dict[str, str], str]:
        params = self._record(request, signed=True)
        return 200, {}, json.dumps(self.trades.get(int(params["orderId"]), []))

    # --- state ------------------------------------------------------------------------------

    def fill(self, order_id: int, fills: list[Fill], status: str) -> None:
        """Add ``fills`` to the order and set its status (NEW, PARTIALLY_FILLED, FILLED, EXPIRED)."""
        order = self.orders[order_id]
        trades = self.trades.setdefault(order_id, [])
        for f in fills:
            quote = Decimal(f.price) * Decimal(f.qty)
            trades.append({
                "symbol": order["symbol"], "id": 5000 + len(trades) + 100 * order_id,
                "orderId": order_id, "orderListId": -1, "price": f.price, "qty": f.qty,
                "quoteQty": f"{quote:.8f}", "commission": f.commission,
                "commissionAsset": f.asset, "time": NOW_MS, "isBuyer": True,
                "isMaker": False, "isBestMatch": True,
            })
        qty = sum((Decimal(t["qty"]) for t in trades), Decimal(0))
        quote = sum((Decimal(t["quoteQty"]) for t in trades), Decimal(0))
        order.update(executedQty=f"{qty:.8f}", cummulativeQuoteQty=f"{quote:.8f}", status=status,
                     origQty=f"{qty:.8f}", isWorking=status in ("NEW", "PARTIALLY_FILLED"))

    def _record(self, request: Any, *, signed: bool) -> dict[str, str]:
        split = urlsplit(request.url)
        raw = split.query
        if request.method == "POST":
            body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
            raw = body or raw
        params = dict(parse_qsl(raw, keep_blank_values=True))
        if signed:
            assert request.headers.get("X-MBX-APIKEY") == self.api_key, "API key header missing"
            unsigned, _, signature = raw.rpartition("&signature=")
            expected = hmac.new(self.secret.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
            assert signature == expected, "bad HMAC signature"
            assert "timestamp" in params and params.get("recvWindow")
            params.pop("signature")
        self.calls.append((request.method, split.path, params))
        return params
