"""The CONNMIX channel dialect (path `/connmix`), per the published exchange-stream sample.

Requests: `{"op": "auth" | "subscribe" | "unsubscribe", "args": [...]}`; the sample's own
forms `{"op":"auth","token":"..."}` and `{"op":"subscribe","channel":"..."}` work too. An
optional `"id"` is echoed in the reply (the sample has no way to match replies to requests).
Replies: `{"result": true}` or `{"code": N, "msg": "..."}` with viabtc's codes (6 "Not Auth"
for a private channel before auth). Unlike the sample, auth is answered (`{"result": true}`)
and a bad message gets an error reply instead of closing the connection.

Channels (all data in viabtc's shapes, decimals as strings):
  `<M>@depth`          {"clean": bool, "asks": [[p, a]...], "bids": [...]}: top 50 levels, no
                       merging; a clean snapshot first, then diffs (amount "0" = level gone)
  `<M>@trades`         [{"id","time","price","amount","type"}...] newest first; the last 100
                       on subscribe
  `<M>@ticker`         market.status_today: {"open","last","high","low","volume","deal"}
  `<M>@kline_<secs>`   market.kline rows of the current bucket(s), e.g. `BTCUSDT@kline_60`
  `@balance`           {"<ASSET>": {"available","freeze"}} after each change (every asset)
  `@order`             {"event": 1 put | 2 update | 3 finish, "order": {...}} (every market)
"""

from __future__ import annotations

import json
import time
from typing import Any

from matchengine.errors import CoreError
from wsgateway.core import call

DEPTH_LIMIT = 50
DEPTH_INTERVAL = "0"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Connmix:
    name = "connmix"

    @staticmethod
    def encode(kind: str, key: Any, params: list) -> bytes | None:
        if kind == "depth":
            clean, book, market = params
            return _dumps({"event": f"{market}@depth", "data": {"clean": clean, **book}})
        if kind == "deals":
            return _dumps({"event": f"{key}@trades", "data": params[1]})
        if kind == "today":
            return _dumps({"event": f"{key}@ticker", "data": params[1]})
        if kind == "kline":
            return _dumps({"event": f"{key[0]}@kline_{key[1]}", "data": params})
        if kind == "asset":
            return _dumps({"event": "@balance", "data": params[0]})
        if kind == "order":
            return _dumps({"event": "@order", "data": {"event": params[0], "order": params[1]}})
        return None

    @staticmethod
    def _reply(id_: Any, error: CoreError | None = None) -> bytes:
        body: dict[str, Any] = ({"result": True} if error is None
                                else {"code": error.code, "msg": error.message})
        if id_ is not None:
            body["id"] = id_
        return _dumps(body)

    def error(self, exc: CoreError) -> bytes:
        return self._reply(None, exc)

    async def handle(self, gw: Any, conn: Any, text: str | bytes) -> None:
        try:
            request = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            request = None
        if not isinstance(request, dict):
            conn.enqueue(self._reply(None, CoreError(1, "invalid argument: not a JSON object")))
            return
        id_ = request.get("id")
        if not isinstance(id_, int | str) or isinstance(id_, bool):
            id_ = None
        op = request.get("op")
        args = request.get("args")
        if args is None:
            one = request.get("token" if op == "auth" else "channel")
            args = [one] if one is not None else []
        try:
            if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
                raise CoreError(1, "invalid argument: args must be a non-empty list of strings")
            if op == "auth":
                if len(args) != 1 or not args[0]:
                    raise CoreError(1, "invalid argument: auth takes one token")
                user = await gw.auth.user_id(args[0])
                if conn.user is not None and conn.user != user:
                    for kind in ("order", "asset"):
                        gw.hub.replace(conn, kind, set(), gw.config.max_subscriptions)
                conn.user = user
            elif op in ("subscribe", "unsubscribe"):
                wanted: dict[str, set] = {}
                for channel in args:
                    kind, keys = self._channel(gw, conn, channel)
                    wanted.setdefault(kind, set()).update(keys)
                cap = gw.config.max_subscriptions
                now = int(time.time())
                for market, seconds in wanted.get("kline", ()) if op == "subscribe" else ():
                    # the core decides which intervals exist (market.kline's rules)
                    await call(gw.core, "market.kline",
                               [market, max(1, now - seconds), now, seconds])
                if op == "subscribe":
                    total = sum(len(k) for k in conn.subs.values())
                    total += sum(len(keys - conn.subs.get(kind, set()))
                                 for kind, keys in wanted.items())
                    if total > cap:
                        raise CoreError(1, f"invalid argument: more than {cap} subscriptions")
                conn.enqueue(self._reply(id_))
                for kind, keys in wanted.items():
                    if op == "subscribe":
                        gw.hub.add(conn, kind, keys, cap)
                    else:
                        gw.hub.remove(conn, kind, keys)
                return
            else:
                raise CoreError(1, "invalid argument: op must be auth, subscribe or unsubscribe")
        except CoreError as exc:
            conn.enqueue(self._reply(id_, exc))
            return
        conn.enqueue(self._reply(id_))

    @staticmethod
    def _channel(gw: Any, conn: Any, channel: str) -> tuple[str, set]:
        symbol, sep, name = channel.partition("@")
        if not sep:
            raise CoreError(1, f"invalid argument: unknown channel {channel!r}")
        if not symbol and name in ("balance", "order"):
            if conn.user is None:
                raise CoreError(6, "Not Auth")
            if name == "balance":
                return "asset", {(conn.user, asset) for asset in gw.assets}
            return "order", {(conn.user, market) for market in gw.markets}
        if symbol not in gw.markets:
            raise CoreError(1, f"invalid argument: unknown market in {channel!r}")
        if name == "depth":
            return "depth", {(symbol, DEPTH_LIMIT, DEPTH_INTERVAL)}
        if name == "trades":
            return "deals", {symbol}
        if name == "ticker":
            return "today", {symbol}
        if name.startswith("kline_"):
            suffix = name[len("kline_"):]
            if suffix.isdigit() and suffix == str(int(suffix)) and int(suffix) > 0:
                return "kline", {(symbol, int(suffix))}
        raise CoreError(1, f"invalid argument: unknown channel {channel!r}")


CONNMIX = Connmix()
