"""HTTP JSON-RPC front of the exchange core (viabtc's accesshttp), as a plain WSGI callable.

POST any path with `{"id": int, "method": str, "params": [...]}`. HTTP status rules follow
accesshttp: non-POST or empty body -> 400 with an empty body; undecodable JSON (not UTF-8,
NaN/Infinity, nested too deeply) or a malformed envelope -> 400; unknown method -> 404 with code 4; a reply not ready in time -> 504 with code 5;
otherwise 200 with `{"error", "result", "id"}` (business errors are HTTP 200).
Extension: a JSON array of requests is a batch, answered by an array of replies in order
(HTTP 200; malformed elements get code 1, unknown methods code 4, in their own slot).

There is one endpoint and no routing, so this is a bare WSGI function (served by waitress):
Flask's request/response machinery cost more per call than the engine did.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from matchengine.errors import CoreError
from teller.jsonbody import too_deep

log = logging.getLogger(__name__)

JSON = "application/json"
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_STATUS = {200: "200 OK", 400: "400 BAD REQUEST", 404: "404 NOT FOUND",
           504: "504 GATEWAY TIMEOUT"}
_EMPTY_400 = ("400 BAD REQUEST", [("Content-Type", "text/plain"), ("Content-Length", "0")])


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# viabtc's parser (jansson) refuses NaN/Infinity: they would otherwise reach the log and history.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict, StartResponse], Iterable[bytes]]


def _reply(req_id: Any, result: Any) -> dict:
    if isinstance(result, CoreError):
        return {"error": result.as_json(), "result": None, "id": req_id}
    return {"error": None, "result": result, "id": req_id}


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid(envelope: Any) -> bool:
    return (isinstance(envelope, dict) and isinstance(envelope.get("method"), str)
            and isinstance(envelope.get("params"), list) and _is_id(envelope.get("id")))


def _read_body(environ: dict) -> bytes:
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return stream.read(length) if length > 0 else stream.read()


def create_app(service: Any) -> WsgiApp:
    """The JSON-RPC WSGI app over `service` (anything with `call_many(calls) -> results`)."""

    def app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _empty_400(start_response)
        raw = _read_body(environ)
        if not raw:
            return _empty_400(start_response)
        try:
            text = raw.decode("utf-8-sig")
            if too_deep(text):  # before decoding: see teller.jsonbody.MAX_DEPTH
                return _empty_400(start_response)
            body = _DECODER.decode(text)
        except ValueError:
            return _empty_400(start_response)
        if isinstance(body, list):
            if not body:
                return _empty_400(start_response)
            return _json(start_response, 200, _batch(service, body))
        if not _valid(body):
            return _empty_400(start_response)
        result = service.call_many([(body["method"], body["params"])])[0]
        status = 200
        if isinstance(result, CoreError):
            status = {4: 404, 5: 504}.get(result.code, 200)
        return _json(start_response, status, _reply(body["id"], result))

    return app


def _empty_400(start_response: StartResponse) -> list[bytes]:
    start_response(*_EMPTY_400)
    return [b""]


def _json(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    data = _COMPACT.encode(body).encode()
    start_response(_STATUS[status], [("Content-Type", JSON),
                                     ("Content-Length", str(len(data)))])
    return [data]


def _batch(service: Any, body: list) -> list:
    calls, slots = [], []
    replies: list[Any] = [None] * len(body)
    for index, envelope in enumerate(body):
        if not _valid(envelope):
            req_id = envelope.get("id") if isinstance(envelope, dict) else None
            replies[index] = _reply(req_id if _is_id(req_id) else None,
                                    CoreError(1, "invalid argument"))
            continue
        calls.append((envelope["method"], envelope["params"]))
        slots.append((index, envelope["id"]))
    if calls:
        for (index, req_id), result in zip(slots, service.call_many(calls), strict=True):
            replies[index] = _reply(req_id, result)
    return replies
