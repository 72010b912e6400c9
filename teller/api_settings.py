"""Admin API routes for runtime settings: read, change, reset, and the audit log.

``GET /api/settings`` — every runtime setting with its effective value and source;
``POST /api/settings`` ``{"key": K, "value": V}`` or ``{"settings": {K: V, ...}}`` — checked
as at start-up and applied together, or refused with every problem (400) and nothing changed;
``POST /api/settings/reset`` ``{"key": K}`` — back to the config file's value;
``GET /api/settings/audit[?limit=N]`` — the append-only log of changes, oldest first.
``register_settings_routes`` adds them to the admin app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from ledger.settings import RESET, SettingsError, resolve_key

from .http import error_response, json_response
from .jsonbody import BodyError, decode_object, string_field

if TYPE_CHECKING:
    from .service import Service

ACTOR_HEADER = "X-Teller-Actor"  # who, as the CLI reports it ("cli root@host")


def _by() -> str:
    actor = request.headers.get(ACTOR_HEADER, "").strip()[:100]
    where = f"admin API {request.remote_addr}"
    return f"{where} ({actor})" if actor else where


def _json_body() -> dict[str, Any] | Response:
    if request.mimetype != "application/json":
        return error_response(415, "Invalid content type")
    try:
        return decode_object(request.get_data())
    except BodyError as exc:
        return error_response(400, f"Invalid json request body: {exc}")


def register_settings_routes(app: Flask, service: Service) -> None:
    settings = service.settings

    def apply(changes: dict[str, Any]) -> Response:
        try:
            entries = settings.change(changes, by=_by())
        except SettingsError as exc:
            return error_response(400, "Invalid setting: " + "; ".join(exc.problems))
        return json_response({"changed": entries, "settings": settings.view()})

    @app.get("/api/settings")
    def get_settings() -> Response:
        return json_response({"settings": settings.view()})

    @app.post("/api/settings")
    def set_settings() -> Response:
        body = _json_body()
        if isinstance(body, Response):
            return body
        if "settings" in body:
            many = body["settings"]
            if not isinstance(many, dict) or not many or set(body) - {"settings"}:
                return error_response(400, "Invalid json request body: \"settings\" must be a "
                                           "non-empty object of key: value, and alone")
            raw = many
        else:
            try:
                key = string_field(body, "key")
            except BodyError as exc:
                return error_response(400, f"Invalid json request body: {exc}")
            if not key or "value" not in body or body["value"] is None:
                return error_response(400, "Missing key or value")
            raw = {key: body["value"]}
        try:
            changes = {resolve_key(k): v for k, v in raw.items()}
        except SettingsError as exc:
            return error_response(400, "Invalid setting: " + "; ".join(exc.problems))
        return apply(changes)

    @app.post("/api/settings/reset")
    def reset_setting() -> Response:
        body = _json_body()
        if isinstance(body, Response):
            return body
        try:
            key = string_field(body, "key")
            if not key:
                return error_response(400, "Missing key")
            return apply({resolve_key(key): RESET})
        except BodyError as exc:
            return error_response(400, f"Invalid json request body: {exc}")
        except SettingsError as exc:
            return error_response(400, "Invalid setting: " + "; ".join(exc.problems))

    @app.get("/api/settings/audit")
    def audit() -> Response:
        text = request.args.get("limit", "1000")
        if not text.isdigit() or not 0 < int(text) <= 100_000:
            return error_response(400, "Invalid limit: an integer 1..100000")
        return json_response({"entries": settings.store.audit(int(text))})
