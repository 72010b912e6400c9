"""The viabtc accessws dialect (path `/`): `{"id","method","params"}` -> `{"error","result","id"}`.

Methods and params as accessws (exchange-core.md §4), plus order entry for authenticated users
(`order.put_limit`, `order.put_market`, `order.cancel`: the HTTP params without the user id;
with `[ws] taker_fee` and `maker_fee` set, those rates replace the client's fee params).
Deviations, each what a client needs: an unknown method is answered with code 4 (accessws
stays silent), a malformed request gets code 1 with `"id": null` instead of closing the
connection, and `*.query` replies are not cached (the core answers from memory).
"""

from __future__ import annotations

import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from common.decimals import parse
from matchengine.errors import CoreError
from wsgateway.core import call

DEPTH_LIMITS = frozenset({1, 5, 10, 20, 30, 50, 100})  # accessws depth_limit
SOURCE_MAX = 30
SIGN_FIELD_MAX = 1024  # server.sign's access_id and authorisation, in characters
PUSH_METHOD = {"depth": "depth.update", "kline": "kline.update", "price": "price.update",
               "state": "state.update", "today": "today.update", "deals": "deals.update",
               "order": "order.update", "asset": "asset.update"}
QUERIES = {"kline.query": "market.kline", "depth.query": "order.depth",
           "price.query": "market.last", "state.query": "market.status",
           "today.query": "market.status_today", "deals.query": "market.deals"}
# private: (core method, exact arity or None for any)
PRIVATE = {"order.query": ("order.pending", 3), "order.history": ("order.finished", 6),
           "asset.query": ("balance.query", None), "asset.history": ("balance.history", 6),
           "order.put_limit": ("order.put_limit", 7), "order.put_market": ("order.put_market", 5),
           "order.cancel": ("order.cancel", 2)}
# order entry: where the fee rates sit in the params, replaced by [ws] taker_fee / maker_fee
FEE_PARAMS = {"order.put_limit": (4, 5), "order.put_market": (3,)}
LIST_SUBSCRIBE = {"price": "market", "state": "market", "today": "market", "deals": "market",
                  "order": "market", "asset": "asset"}


def invalid(message: str = "invalid argument") -> CoreError:
    return CoreError(1, message)


class Viabtc:
    """Stateless: the connection carries user, source and subscriptions."""

    name = "viabtc"

    @staticmethod
    def encode(kind: str, key: Any, params: list) -> bytes:
        return json.dumps({"method": PUSH_METHOD[kind], "params": params, "id": None},
                          separators=(",", ":")).encode()

    @staticmethod
    def reply(id_: Any, result: Any = None, error: CoreError | None = None) -> bytes:
        err = {"code": error.code, "message": error.message} if error is not None else None
        return json.dumps({"error": err, "result": None if error else result, "id": id_},
                          separators=(",", ":")).encode()

    def error(self, exc: CoreError) -> bytes:
        return self.reply(None, error=exc)

    async def handle(self, gw: Any, conn: Any, text: str | bytes) -> None:
        try:
            request = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            conn.enqueue(self.reply(None, error=invalid("invalid argument: not JSON")))
            return
        id_ = request.get("id") if isinstance(request, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        params = request.get("params") if isinstance(request, dict) else None
        if (isinstance(id_, bool) or not isinstance(id_, int) or not isinstance(method, str)
                or not isinstance(params, list)):
            conn.enqueue(self.reply(id_ if isinstance(id_, int) and not isinstance(id_, bool)
                                    else None, error=invalid(
                "invalid argument: need {\"id\": int, \"method\": str, \"params\": [...]}")))
            return
        try:
            result = await self._dispatch(gw, conn, method, params)
        except CoreError as exc:
            conn.enqueue(self.reply(id_, error=exc))
            return
        if isinstance(result, _Then):
            conn.enqueue(self.reply(id_, result.result))
            result.then()  # subscribe after the reply: its first push follows the reply
        else:
            conn.enqueue(self.reply(id_, result))

    async def _dispatch(self, gw: Any, conn: Any, method: str, params: list) -> Any:
        if method == "server.ping":
            return "pong"
        if method == "server.time":
            return int(time.time())
        if method == "server.auth":
            return await self._auth(gw, conn, params)
        if method == "server.sign":
            return await self._sign(gw, conn, params)
        if method in QUERIES:
            return await call(gw.core, QUERIES[method], params)
        if method in PRIVATE:
            if conn.user is None:
                raise CoreError(6, "require authentication")
            target, arity = PRIVATE[method]
            if arity is not None and len(params) != arity:
                raise invalid()
            if method in FEE_PARAMS and gw.config.taker_fee:
                params = _operator_fees(params, FEE_PARAMS[method], gw.config)
            return await call(gw.core, target, [conn.user, *params])
        kind, _, verb = method.partition(".")
        if verb == "unsubscribe" and kind in PUSH_METHOD:
            if kind in ("order", "asset") and conn.user is None:
                raise CoreError(6, "require authentication")
            return _Then({"status": "success"},
                         lambda: gw.hub.replace(conn, kind, set(), gw.config.max_subscriptions))
        if verb == "subscribe" and kind in PUSH_METHOD:
            keys = await self._subscription(gw, conn, kind, params)
            cap = gw.config.max_subscriptions
            current = conn.subs.get(kind, set())
            if sum(len(k) for k in conn.subs.values()) - len(current) + len(keys) > cap:
                raise invalid(f"invalid argument: more than {cap} subscriptions")
            return _Then({"status": "success"}, lambda: gw.hub.replace(conn, kind, keys, cap))
        raise CoreError(4, "method not found")

    async def _auth(self, gw: Any, conn: Any, params: list) -> Any:
        if (len(params) != 2 or not all(isinstance(p, str) for p in params)
                or len(params[1].encode()) > SOURCE_MAX or not params[0]):
            raise invalid()
        user = await gw.auth.user_id(params[0])
        return self._become(gw, conn, user, params[1])

    async def _sign(self, gw: Any, conn: Any, params: list) -> Any:
        """accessws's API-key login: [access_id, authorisation, tonce]; source "api"."""
        if (len(params) != 3 or not all(isinstance(p, str) and p for p in params[:2])
                or len(params[0]) > SIGN_FIELD_MAX or len(params[1]) > SIGN_FIELD_MAX
                or isinstance(params[2], bool) or not isinstance(params[2], int)
                or not params[2] or abs(params[2]) >= 2**63):
            raise invalid()
        user = await gw.auth.signed_user(params[0], params[1], params[2])
        return self._become(gw, conn, user, "api")

    @staticmethod
    def _become(gw: Any, conn: Any, user: int, source: str) -> dict:
        if conn.user is not None and conn.user != user:  # another user: private subs go
            for kind in ("order", "asset"):
                gw.hub.replace(conn, kind, set(), gw.config.max_subscriptions)
        conn.user, conn.source = user, source
        return {"status": "success"}

    async def _subscription(self, gw: Any, conn: Any, kind: str, params: list) -> set:
        """The keys a `<kind>.subscribe` asks for, checked (CoreError otherwise)."""
        if kind == "depth":
            if len(params) != 3:
                raise invalid()
            market, limit, interval = params
            if (market not in gw.markets or isinstance(limit, bool)
                    or limit not in DEPTH_LIMITS or not _interval_ok(interval)):
                raise invalid()
            await call(gw.core, "order.depth", [market, limit, interval])  # the core agrees
            return {(market, limit, interval)}
        if kind == "kline":
            if len(params) != 2:
                raise invalid()
            market, interval = params
            if (market not in gw.markets or isinstance(interval, bool)
                    or not isinstance(interval, int) or interval <= 0):
                raise invalid()
            now = int(time.time())
            await call(gw.core, "market.kline", [market, max(1, now - interval), now, interval])
            return {(market, interval)}
        if kind in ("order", "asset") and conn.user is None:
            raise CoreError(6, "require authentication")
        names = gw.markets if LIST_SUBSCRIBE[kind] == "market" else gw.assets
        if not all(isinstance(p, str) and p in names for p in params):
            raise invalid()
        if kind in ("order", "asset"):
            return {(conn.user, p) for p in params}
        return set(params)


def _operator_fees(params: list, places: tuple[int, ...], config: Any) -> list:
    """The order's params with the operator's fee rates in place of the client's, which must
    still be fee rates (bad input is refused, as the core would refuse it)."""
    fixed = list(params)
    for place, rate in zip(places, (config.taker_fee, config.maker_fee), strict=False):
        sent = parse(fixed[place], 0)
        if sent is None or not 0 <= sent < 1:
            raise invalid()
        fixed[place] = rate
    return fixed


def _interval_ok(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        number = Decimal(value)
    except InvalidOperation:
        return False
    return number.is_finite() and number >= 0


class _Then:
    """A result plus what to do once it is queued."""

    __slots__ = ("result", "then")

    def __init__(self, result: Any, then: Any) -> None:
        self.result = result
        self.then = then


VIABTC = Viabtc()
