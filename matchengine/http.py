"""HTTP JSON-RPC front of the exchange core (viabtc's accesshttp), as a Flask app.

POST any path with `{"id": int, "method": str, "params": [...]}`. HTTP status rules follow
accesshttp: non-POST or empty body -> 400 with an empty body; undecodable JSON or a malformed
envelope -> 400; unknown method -> 404 with code 4; a reply not ready in time -> 504 with code 5;
otherwise 200 with `{"error", "result", "id"}` (business errors are HTTP 200).
Extension: a JSON array of requests is a batch, answered by an array of replies in order
(HTTP 200; malformed elements get code 1, unknown methods code 4, in their own slot).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, request

from matchengine.errors import CoreError

log = logging.getLogger(__name__)

JSON = "application/json"


def _reply(req_id: Any, result: Any) -> dict:
    if isinstance(result, CoreError):
        return {"error": result.as_json(), "result": None, "id": req_id}
    return {"error": None, "result": result, "id": req_id}


def _valid(envelope: Any) -> bool:
    return (isinstance(envelope, dict) and isinstance(envelope.get("method"), str)
            and isinstance(envelope.get("params"), list)
            and isinstance(envelope.get("id"), int) and not isinstance(envelope.get("id"), bool))


def _response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype=JSON)


def create_app(service: Any) -> Flask:
    """The JSON-RPC app over `service` (anything with `call_many(calls) -> results`)."""
    app = Flask("matchengine")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def rpc(path: str) -> Response:
        if request.method != "POST":
            return Response(b"", status=400)
        raw = request.get_data(cache=False)
        if not raw:
            return Response(b"", status=400)
        try:
            body = json.loads(raw)
        except ValueError:
            return Response(b"", status=400)
        if isinstance(body, list):
            return _batch(service, body)
        if not _valid(body):
            return Response(b"", status=400)
        result = service.call_many([(body["method"], body["params"])])[0]
        status = 200
        if isinstance(result, CoreError):
            status = {4: 404, 5: 504}.get(result.code, 200)
        return _response(_reply(body["id"], result), status)

    return app


def _batch(service: Any, body: list) -> Response:
    if not body:
        return Response(b"", status=400)
    calls, slots = [], []
    replies: list[Any] = [None] * len(body)
    for index, envelope in enumerate(body):
        if not _valid(envelope):
            req_id = envelope.get("id") if isinstance(envelope, dict) else None
            replies[index] = _reply(req_id if isinstance(req_id, int) else None,
                                    CoreError(1, "invalid argument"))
            continue
        calls.append((envelope["method"], envelope["params"]))
        slots.append((index, envelope["id"]))
    if calls:
        for (index, req_id), result in zip(slots, service.call_many(calls), strict=True):
            replies[index] = _reply(req_id, result)
    return _response(replies)
