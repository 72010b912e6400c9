"""The OpenRPC document of the core's JSON-RPC (served at ``GET /openrpc.json``).

viabtc's envelope, not JSON-RPC 2.0's: ``{"id": int, "method", "params": [positional]}`` in,
``{"error": null | {"code", "message"}, "result", "id"}`` out; decimals are strings. Business
errors come back with HTTP 200 and an ``error`` object (codes in ``x-error-codes``).
tests/test_teller_api_openapi_core.py checks that every method the core serves is here (and nothing
else), and that real answers match each result schema.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

DEC = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?(e-?[0-9]+)?$",
       "description": "a decimal as a string (viabtc's rstripzero form)"}
INT = {"type": "integer"}
STR = {"type": "string"}
TIME = {"type": "number", "description": "Unix seconds with microseconds"}
SIDE = {"type": "integer", "enum": [1, 2], "description": "1 = ask/sell, 2 = bid/buy"}
LIMIT = {"type": "integer", "minimum": 0, "maximum": 101}
HLIMIT = {"type": "integer", "minimum": 1, "maximum": 101}

ORDER = {"$ref": "#/components/schemas/Order"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required}


def _page(records: dict[str, Any], total: bool = False) -> dict[str, Any]:
    props = {"offset": INT, "limit": INT, **({"total": INT} if total else {}),
             "records": {"type": "array", "items": records}}
    return _obj(props)


SCHEMAS = {
    "Order": _obj({"id": INT, "market": STR, "source": STR, "type": {"enum": [1, 2]},
                   "side": SIDE, "user": INT, "ctime": TIME, "mtime": TIME, "price": DEC,
                   "amount": DEC, "taker_fee": DEC, "maker_fee": DEC, "left": DEC,
                   "deal_stock": DEC, "deal_money": DEC, "deal_fee": DEC}),
    "FinishedOrder": _obj({"id": INT, "ctime": TIME, "ftime": TIME, "user": INT, "market": STR,
                           "source": STR, "type": {"enum": [1, 2]}, "side": SIDE, "price": DEC,
                           "amount": DEC, "taker_fee": DEC, "maker_fee": DEC,
                           "deal_stock": DEC, "deal_money": DEC, "deal_fee": DEC}),
    "Error": _obj({"code": INT, "message": STR}),
}

# (name, summary, [(param, schema)], result schema, method error codes)
METHODS: list[tuple[str, str, list[tuple[str, Any]], Any, list[int]]] = [
    ("balance.query", "Balances of a user (all assets, or those listed after user_id).",
     [("user_id", INT), ("assets...", STR)],
     {"type": "object", "additionalProperties": _obj({"available": DEC, "freeze": DEC})}, [1]),
    ("balance.update", "Deposit/withdraw: idempotent per (user, asset, business, business_id).",
     [("user_id", INT), ("asset", STR), ("business", STR), ("business_id", INT),
      ("change", DEC), ("detail", {"type": "object"})],
     _obj({"status": {"const": "success"}}), [1, 3, 10, 11]),
    ("balance.history", "Balance changes, newest first.",
     [("user_id", INT), ("asset", STR), ("business", STR), ("start_time", INT),
      ("end_time", INT), ("offset", INT), ("limit", HLIMIT)],
     _page(_obj({"time": TIME, "asset": STR, "business": STR, "change": DEC, "balance": DEC,
                 "detail": {"type": "object"}})), [1, 2]),
    ("asset.list", "Configured assets.", [],
     {"type": "array", "items": _obj({"name": STR, "prec": INT})}, []),
    ("asset.summary", "Totals per asset (all, or those listed).", [("assets...", STR)],
     {"type": "array", "items": _obj({"name": STR, "total_balance": DEC, "available_count": INT,
                                      "available_balance": DEC, "freeze_count": INT,
                                      "freeze_balance": DEC})}, [1]),
    ("order.put_limit", "Place a limit order; the order after matching.",
     [("user_id", INT), ("market", STR), ("side", SIDE), ("amount", DEC), ("price", DEC),
      ("taker_fee_rate", DEC), ("maker_fee_rate", DEC), ("source", STR)], ORDER, [1, 3, 10, 11]),
    ("order.put_market", "Place a market order (bid: money to spend); always finished.",
     [("user_id", INT), ("market", STR), ("side", SIDE), ("amount", DEC),
      ("taker_fee_rate", DEC), ("source", STR)], ORDER, [1, 3, 10, 11, 12]),
    ("order.cancel", "Cancel a resting order; the order as it was.",
     [("user_id", INT), ("market", STR), ("order_id", INT)], ORDER, [1, 3, 10, 11]),
    ("order.book", "Resting orders of one side in match priority.",
     [("market", STR), ("side", SIDE), ("offset", INT), ("limit", LIMIT)],
     _obj({"offset": INT, "limit": INT, "total": INT,
           "orders": {"type": "array", "items": ORDER}}), [1]),
    ("order.depth", "Aggregated price levels, best first.",
     [("market", STR), ("limit", LIMIT), ("interval", DEC)],
     _obj({"asks": {"type": "array", "items": {"type": "array", "items": DEC}},
           "bids": {"type": "array", "items": {"type": "array", "items": DEC}}}), [1]),
    ("order.pending", "A user's resting orders in a market, newest first.",
     [("user_id", INT), ("market", STR), ("offset", INT), ("limit", LIMIT)],
     _page(ORDER, total=True), [1]),
    ("order.pending_detail", "One resting order, or null.",
     [("market", STR), ("order_id", INT)], {"oneOf": [ORDER, {"type": "null"}]}, [1]),
    ("order.deals", "Deals of one order, newest first.",
     [("order_id", INT), ("offset", INT), ("limit", HLIMIT)],
     _page(_obj({"time": TIME, "user": INT, "id": INT, "role": {"enum": [1, 2]}, "price": DEC,
                 "amount": DEC, "deal": DEC, "fee": DEC, "deal_order_id": INT})), [1, 2]),
    ("order.finished", "A user's finished orders (cancelled ones included), newest first.",
     [("user_id", INT), ("market", STR), ("start_time", INT), ("end_time", INT),
      ("offset", INT), ("limit", HLIMIT), ("side (optional)", {"enum": [0, 1, 2]})],
     _page({"$ref": "#/components/schemas/FinishedOrder"}), [1, 2]),
    ("order.finished_detail", "One finished order, or null.", [("order_id", INT)],
     {"oneOf": [{"$ref": "#/components/schemas/FinishedOrder"}, {"type": "null"}]}, [1, 2]),
    ("market.list", "Configured markets.", [],
     {"type": "array", "items": _obj({"name": STR, "stock": STR, "money": STR, "fee_prec": INT,
                                      "stock_prec": INT, "money_prec": INT,
                                      "min_amount": DEC})}, []),
    ("market.summary", "Resting orders per market (all, or those listed).",
     [("markets...", STR)],
     {"type": "array", "items": _obj({"name": STR, "ask_count": INT, "ask_amount": DEC,
                                      "bid_count": INT, "bid_amount": DEC})}, [1]),
    ("market.last", "Last trade price (not zero-stripped).", [("market", STR)], DEC, [1]),
    ("market.deals", "Recent deals after last_id, newest first; type is the taker's side.",
     [("market", STR), ("limit", {"type": "integer", "minimum": 1, "maximum": 10000}),
      ("last_id", INT)],
     {"type": "array", "items": _obj({"id": INT, "time": TIME, "price": DEC, "amount": DEC,
                                      "type": {"enum": ["sell", "buy"]}})}, [1]),
    ("market.kline", "Candles: [time, open, close, high, low, volume, deal, market].",
     [("market", STR), ("start", INT), ("end", INT), ("interval", INT)],
     {"type": "array", "items": {"type": "array", "minItems": 8, "maxItems": 8}}, [1]),
    ("market.status", "Figures over the trailing period seconds.",
     [("market", STR), ("period", INT)],
     _obj({"period": INT, "last": DEC, "open": DEC, "close": DEC, "high": DEC, "low": DEC,
           "volume": DEC, "deal": DEC}), [1]),
    ("market.status_today", "Today's candle with rolling 24 h volume.", [("market", STR)],
     _obj({"open": DEC, "last": DEC, "high": DEC, "low": DEC, "volume": DEC, "deal": DEC}), [1]),
    ("market.user_deals", "A user's deals in a market, newest first.",
     [("user_id", INT), ("market", STR), ("offset", INT), ("limit", HLIMIT)],
     _page(_obj({"time": TIME, "user": INT, "id": INT, "side": SIDE, "role": {"enum": [1, 2]},
                 "price": DEC, "amount": DEC, "deal": DEC, "fee": DEC, "deal_order_id": INT,
                 "market": STR})), [1, 2]),
]


def document() -> dict[str, Any]:
    methods = []
    for name, summary, params, result, codes in METHODS:
        methods.append({
            "name": name, "summary": summary, "paramStructure": "by-position",
            "params": [{"name": p, "required": not p.endswith(("...", "(optional)")),
                        "schema": s} for p, s in params],
            "result": {"name": "result", "schema": result},
            "x-error-codes": codes,
        })
    return {
        "openrpc": "1.2.6",
        "info": {"title": "teller exchange core (viabtc_exchange_server JSON-RPC)",
                 "version": "1",
                 "description": "POST a JSON body {id, method, params} to any path. The reply "
                                "is {error, result, id}; business errors are HTTP 200 with an "
                                "error {code, message} (1 invalid argument, 2 internal error, 3 "
                                "service unavailable, 4 method not found (HTTP 404), 5 timeout "
                                "(HTTP 504), 10-12 method-specific). A JSON array is a batch "
                                "(an extension). A body that is not a JSON-RPC request, and any "
                                "method but POST (except GET /metrics and GET /openrpc.json), "
                                "get HTTP 400 with an empty body, as in viabtc."},
        "methods": methods,
        "components": {"schemas": SCHEMAS},
    }


@cache
def openrpc_bytes() -> bytes:
    return json.dumps(document(), indent=2).encode()
