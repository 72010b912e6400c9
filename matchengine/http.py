"""The exchange core's JSON-RPC over HTTP (viabtc's accesshttp), apart from the transport.

POST any path with `{"id": int, "method": str, "params": [...]}`. HTTP status rules follow
accesshttp: non-POST or empty body -> 400 with an empty body; undecodable JSON (not UTF-8,
NaN/Infinity, nested too deeply) or a malformed envelope -> 400; unknown method -> 404 with
code 4; a reply not ready in time -> 504 with code 5; otherwise 200 with
`{"error", "result", "id"}` (business errors are HTTP 200).
Extension: a JSON array of requests is a batch, run in order and answered by an array of
replies in order (HTTP 200; malformed elements get code 1, unknown methods code 4, in their
own slot); a history read in a batch sees the writes before it. A batch holds at most
`MAX_BATCH_CALLS` calls (more: 413) and its reads at most `BATCH_ROWS_MAX` rows by their
declared limits (`_rows`); calls past that budget are answered code 1 "batch reply too large"
in their slot: 14,000 `market.deals` calls in one 1 MB body built a 259 MB reply (issue 14).

`parse_request` turns a body into the calls to run and `RpcRequest.reply` turns their results
into the HTTP answer; `matchengine.rpcserver` carries them over the wire.
"""

from __future__ import annotations

import json
from typing import Any

from common.jsonguard import too_deep
from matchengine.errors import CoreError

JSON = "application/json"
STATUS = {200: "200 OK", 400: "400 BAD REQUEST", 404: "404 NOT FOUND", 411: "411 LENGTH REQUIRED",
          413: "413 REQUEST ENTITY TOO LARGE", 431: "431 REQUEST HEADER FIELDS TOO LARGE",
          500: "500 INTERNAL SERVER ERROR", 501: "501 NOT IMPLEMENTED",
          504: "504 GATEWAY TIMEOUT"}
_COMPACT = json.JSONEncoder(separators=(",", ":"))

MAX_BATCH_CALLS = 10_000
BATCH_ROWS_MAX = 50_000
KLINE_ROWS_MAX = 30_000  # marketdata.kline.KLINE_MAX_ROWS (matchengine does not import it)
# Reads whose reply is a list of rows: the index of their `limit` parameter.
_LIMIT_PARAM = {"market.deals": 1, "order.book": 3, "order.depth": 1, "order.pending": 3,
                "order.pending_detail": 3, "balance.history": 6, "order.finished": 5,
                "order.deals": 2, "market.user_deals": 3}


class BatchTooLarge(ValueError):
    """More than MAX_BATCH_CALLS calls in one body: 413."""


def _rows(method: str, params: list[Any]) -> int:
    """Rows a read may return, from its parameters (0 for anything else or malformed)."""
    if method == "market.kline":
        if len(params) == 4 and all(_is_id(p) for p in params[1:]) and params[3] > 0:
            start: int = params[1]
            end: int = params[2]
            interval: int = params[3]
            return min(max(end - start, 0) // interval + 1, KLINE_ROWS_MAX)
        return 0
    index = _LIMIT_PARAM.get(method)
    if index is None or len(params) <= index or not _is_id(params[index]):
        return 0
    limit: int = params[index]
    return max(limit, 0)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# viabtc's parser (jansson) refuses NaN/Infinity: they would otherwise reach the log and history.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _reply(req_id: Any, result: Any) -> dict[str, Any]:
    if isinstance(result, CoreError):
        return {"error": result.as_json(), "result": None, "id": req_id}
    return {"error": None, "result": result, "id": req_id}


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid(envelope: Any) -> bool:
    return (isinstance(envelope, dict) and isinstance(envelope.get("method"), str)
            and isinstance(envelope.get("params"), list) and _is_id(envelope.get("id")))


class RpcRequest:
    """One decoded POST body: `calls` to run, then `reply(results)` -> (status, body)."""

    __slots__ = ("calls", "_ids", "_replies", "_slots")

    def __init__(self, calls: list[tuple[str, list[Any]]], ids: list[Any],
                 replies: list[Any] | None = None, slots: list[int] | None = None) -> None:
        self.calls = calls
        self._ids = ids  # one request: [its id]; a batch: the valid elements' ids
        self._replies = replies  # a batch: the array, malformed elements already answered
        self._slots = slots  # a batch: where each call's reply goes

    def reply(self, results: list[Any]) -> tuple[int, bytes]:
        if self._replies is None:
            result = results[0]
            status = 200
            if isinstance(result, CoreError):
                status = {4: 404, 5: 504}.get(result.code, 200)
            return status, _COMPACT.encode(_reply(self._ids[0], result)).encode()
        replies = list(self._replies)
        for slot, req_id, result in zip(self._slots or [], self._ids, results, strict=True):
            replies[slot] = _reply(req_id, result)
        return 200, _COMPACT.encode(replies).encode()


def parse_request(raw: bytes) -> RpcRequest | None:
    """The calls of a POST body, or None where accesshttp answers 400 with an empty body."""
    if not raw:
        return None
    try:
        text = raw.decode("utf-8-sig")
        if too_deep(text):  # before decoding: see teller.jsonbody.MAX_DEPTH
            return None
        body = _DECODER.decode(text)
    except ValueError:
        return None
    if isinstance(body, list):
        if len(body) > MAX_BATCH_CALLS:
            raise BatchTooLarge(len(body))
        return _batch(body) if body else None
    if not _valid(body):
        return None
    return RpcRequest([(body["method"], body["params"])], [body["id"]])


def _batch(body: list[Any]) -> RpcRequest:
    calls, ids, slots = [], [], []
    replies: list[Any] = [None] * len(body)
    rows = 0
    for index, envelope in enumerate(body):
        if not _valid(envelope):
            req_id = envelope.get("id") if isinstance(envelope, dict) else None
            replies[index] = _reply(req_id if _is_id(req_id) else None,
                                    CoreError(1, "invalid argument"))
            continue
        rows += _rows(envelope["method"], envelope["params"])
        if rows > BATCH_ROWS_MAX:
            replies[index] = _reply(envelope["id"], CoreError(1, "batch reply too large"))
            continue
        calls.append((envelope["method"], envelope["params"]))
        ids.append(envelope["id"])
        slots.append(index)
    return RpcRequest(calls, ids, replies, slots)
