"""OpenAPI 3.1 documents of the teller's three HTTP APIs, served at ``/api/openapi.json``.

One document per app (public, admin, dummy), written here next to each other so a route and
its contract change together. tests/test_teller_api_openapi_teller.py checks every route of each
app's ``url_map`` is documented with its methods (and nothing else), and runs schemathesis
against the running teller: no 5xx, documented statuses and content types, responses that
match these schemas, and no state change on any 4xx.

Conventions (the Go teller's): a 200 is JSON; every other answer is a plain-text message
ending in a newline; amounts in JSON are strings of decimals, counts and base units integers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response

from .http import json_response

TEXT = {"text/plain": {"schema": {"type": "string"}}}
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
DEC = {"type": "string", "description": "a decimal number as text"}
COIN_PARAM = {"name": "coin", "in": "query", "schema": STR,
              "description": "deposit coin_type (default BTC)"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": TEXT}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _obj(props: dict[str, Any], required: list[str] | None = None,
         extra: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props,
                              "required": list(props) if required is None else required}
    if not extra:
        schema["additionalProperties"] = False
    return schema


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses, **extra}


def _not_allowed(allow: str) -> dict[str, Any]:
    return _op(f"Not allowed: use {allow}",
               {"405": _error("Invalid request method (Allow header names the method)")})


def _document(title: str, description: str, paths: dict[str, Any],
              schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    paths["/api/openapi.json"] = {"get": _op("This document", {"200": _json({"type": "object"})})}
    return {"openapi": "3.1.0",
            "info": {"title": title, "version": "1", "description": description},
            "paths": paths, "components": {"schemas": schemas or {}}}


def _json_body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"required": True, "content": {"application/json": media}}


EXAMPLE_SKYADDR = "2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW"  # the Go teller's example address


# -- public --------------------------------------------------------------------------------

STATUS_ENTRY = _obj({"seq": INT, "coin_type": STR, "status": {"enum": [
    "waiting_deposit", "waiting_decide", "waiting_passthrough",
    "waiting_passthrough_order_complete", "waiting_send", "waiting_confirm", "done",
    "cancelled", "needs_review"]}, "updated_at": INT})

BIND_ERRORS = {
    "400": _error("Missing skyaddr / Missing coin_type / Invalid coin_type / <coin> not enabled "
                  "/ Invalid skycoin address: ... / Invalid json request body: ..."),
    "403": _error("Address binding is disabled"),
    "409": _error("The max number of bound deposit addresses is reached"),
    "413": _error("Request Entity Too Large"),
    "415": _error("Invalid content type"),
    "429": _error("You have reached maximum request limit."),
    "503": _error("Deposit address pool is empty"),
}


def public_document() -> dict[str, Any]:
    skyaddr = {"name": "skyaddr", "in": "query", "required": True, "schema": STR,
               "example": EXAMPLE_SKYADDR,
               "description": "the buyer's receive address (`address` is accepted too)"}
    deposit_config = _obj({"enabled": BOOL, "confirmations_required": INT,
                           "fixed_exchange_rate": DEC, "passthrough_minimum_volume": DEC})
    setting = _obj({"value": {}, "source": {"enum": ["file", "runtime"]}, "file_value": {},
                    "set_at": INT, "set_by": STR}, ["value", "source", "file_value"])
    bind = {
        "post": _op("Bind a receive address to a deposit address of coin_type",
                    {"200": _json(_obj({"deposit_address": STR, "coin_type": STR,
                                        "buy_method": STR})), **BIND_ERRORS},
                    requestBody=_json_body(_obj({"skyaddr": STR, "address": STR,
                                                 "coin_type": STR}, ["coin_type"]),
                                           {"skyaddr": EXAMPLE_SKYADDR, "coin_type": "BTC"})),
        **{m: _not_allowed("POST") for m in ("get", "put", "delete", "patch")},
    }
    status = {
        "get": _op("Deposit statuses of a receive address, by seq",
                   {"200": _json({"oneOf": [
                       _obj({"statuses": {"type": "array", "items": STATUS_ENTRY}}),
                       _obj({}, [], extra=False)]}, "statuses, or {} when nothing is bound"),
                    "400": _error("Missing skyaddr / Invalid skycoin address: ..."),
                    "429": _error("You have reached maximum request limit.")},
                   parameters=[skyaddr]),
        **{m: _not_allowed("GET") for m in ("post", "put", "delete", "patch")},
    }
    config = _op("The teller's configuration as buyers see it", {"200": _json(_obj({
        "enabled": BOOL, "buy_method": STR, "max_bound_addrs": INT, "max_decimals": INT,
        "deposits": {"type": "object", "additionalProperties": deposit_config},
        "payout_token": STR,
        "settings": {"type": "object", "additionalProperties": setting,
                     "description": "runtime settings: effective value and source"}}))})
    scanner = _obj({"node_reachable": BOOL, "tip": {"type": ["integer", "null"]},
                    "cursor_height": {"type": ["integer", "null"]},
                    "lag_blocks": {"type": ["integer", "null"]},
                    "confirmations_required": INT, "last_error": STR}, ["node_reachable"])
    health = _op("Liveness, balance, scanners, pools and warnings", {"200": _json(_obj({
        "status": {"const": "OK"}, "application": STR, "version": STR, "uptime": STR,
        "exchange": _obj({"buy_method": STR, "processor_error": STR, "sender_error": STR,
                          "deposit_error_count": INT,
                          "balance": _obj({"coins": DEC, "hours": STR, "token": STR})}),
        "scanners": {"type": "object", "additionalProperties": scanner},
        "address_pools": {"type": "object", "additionalProperties": INT},
        "warnings": {"type": "array", "items": STR}}))})
    qr = _op("The QR code of a deposit address, as SVG (the buyer page shows it)", {
        "200": {"description": "SVG", "content": {"image/svg+xml": {"schema": STR}}},
        "400": _error("Invalid data: a deposit address is expected")},
        parameters=[{"name": "data", "in": "query", "required": True, "schema": STR,
                     "example": "1PZ63K3G4gZP6A6E2TTbBwxT5bFQGL2TLB"}])
    payouts = _op("Payout txids of a receive address's deposits, by status seq (new)", {
        "200": _json(_obj({"payouts": {"type": "array",
                                       "items": _obj({"seq": INT, "txid": STR})}})),
        "400": _error("Missing skyaddr / Invalid skycoin address: ..."),
        "429": _error("You have reached maximum request limit.")}, parameters=[skyaddr])
    return _document(
        "teller public API", "The Go teller's buyer-facing routes (skycoin/teller), and the "
        "buyer page's two helpers.",
        {"/api/bind": bind, "/api/status": status, "/api/config": {"get": config},
         "/api/health": {"get": health}, "/api/qr.svg": {"get": qr},
         "/api/status/payouts": {"get": payouts}})


# -- admin ---------------------------------------------------------------------------------

DEPOSIT = _obj({
    "seq": INT, "status": STR, "coin_type": STR, "sky_address": STR, "buy_method": STR,
    "deposit_address": STR, "deposit_id": STR, "txid": STR, "conversion_rate": STR,
    "deposit_value": INT, "sky_sent": INT, "created_at": INT, "updated_at": INT,
    "error": STR, "error_kind": STR,
    "deposit": _obj({"address": STR, "coin_type": STR, "height": INT, "n": INT,
                     "processed": BOOL, "tx": STR, "value": INT}),
    "passthrough": {"type": "object"}}, ["seq", "status", "coin_type", "deposit_id"])
DEPOSITS = _json(_obj({"deposits": {"type": "array", "items": {"$ref": "#/components/schemas/Deposit"}}}))
SETTING = _obj({"value": {}, "source": {"enum": ["file", "runtime"]}, "file_value": {},
                "set_at": INT, "set_by": STR}, ["value", "source", "file_value"])
AUDIT_ENTRY = _obj({"seq": INT, "at": INT, "key": STR, "old": {}, "new": {},
                    "action": {"enum": ["set", "reset"]}, "by": STR})
SETTINGS_VIEW = _obj({"settings": {"type": "object", "additionalProperties": SETTING}})
CHANGED = _json(_obj({"changed": {"type": "array", "items": AUDIT_ENTRY},
                      "settings": {"type": "object", "additionalProperties": SETTING}}))
BODY_ERRORS = {"400": _error("Invalid json request body: ... / Invalid setting: ..."),
               "413": _error("Request Entity Too Large"),
               "415": _error("Invalid content type")}


PAGE = _obj({"deposits": {"type": "array", "items": {"type": "object"}}, "total": INT,
             "offset": INT, "limit": INT})
PAGING = [{"name": "coin_type", "in": "query", "schema": STR},
          {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
           "description": "receive address, deposit address or txid (prefix)"},
          {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                     "maximum": 500}}]
REVIEW_ENTRY = _obj({"seq": INT, "at": INT, "action": STR, "deposit": STR, "note": STR,
                     "who": {"type": "object"}, "outcome": STR, "detail": STR})


def admin_document() -> dict[str, Any]:
    pool = _obj({"address_manager_enabled": BOOL, "remaining_addresses": INT,
                 "scanning_addresses": {"type": "array", "items": STR},
                 "scanning_enabled": BOOL})
    status_param = {"name": "status", "in": "query", "schema": STR,
                    "description": "one stored status (waiting_decide ... needs_review)"}
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                        "maximum": 100000}}
    paths = {
        "/api/deposit-addresses": {"get": _op("Address pools and bound addresses per coin", {
            "200": _json({"type": "object", "additionalProperties": pool})})},
        "/api/deposits": {"get": _op(
            "Deposit records (Go field names); paged and searched when any of coin_type, q, "
            "offset, limit is given", {
                "200": _json({"anyOf": [
                    DEPOSITS["content"]["application/json"]["schema"], PAGE]}),
                "400": _error("Invalid status / Invalid coin_type / Invalid offset: ...")},
            parameters=[status_param, *PAGING])},
        "/api/deposits/detail": {"get": _op("One deposit with its payout and audit entries", {
            "200": _json(_obj({"deposit": {"type": "object"}, "payout": {},
                               "audit": {"type": "array", "items": REVIEW_ENTRY}},
                              ["deposit", "audit"])),
            "404": _error("Deposit not found")}, parameters=[
                {"name": "coin_type", "in": "query", "required": True, "schema": STR},
                {"name": "deposit_id", "in": "query", "required": True, "schema": STR}])},
        "/api/deposits.csv": {"get": _op("Deposits as CSV (same filters as /api/deposits)", {
            "200": {"description": "CSV", "content": {"text/csv": {"schema": STR}}},
            "400": _error("Invalid status / Invalid coin_type / Invalid q: ...")},
            parameters=[status_param, *PAGING[:2]])},
        "/api/deposits/daily": {"get": _op("Deposits received and payouts sent per UTC day", {
            "200": _json(_obj({"days": {"type": "array", "items": {"type": "object"}},
                               "token": STR})),
            "400": _error("Invalid days: an integer 0..3660 is expected")}, parameters=[
                {"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                          "maximum": 3660}}])},
        "/api/overview": {"get": _op("What the operator console's overview shows", {
            "200": _json(_obj({"counts": {"type": "object"}, "accounting": {"type": "object"},
                               "health": {"type": "object"}, "pools": {},
                               "events": {"type": "array"}}))})},
        "/api/audit": {"get": _op("Operators' review decisions, newest first (append-only)", {
            "200": _json(_obj({"entries": {"type": "array", "items": REVIEW_ENTRY},
                               "total": INT, "offset": INT, "limit": INT})),
            "400": _error("Invalid offset / Invalid limit: ...")}, parameters=[
                {"name": "deposit", "in": "query", "schema": STR},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                           "maximum": 500}}])},
        "/": {"get": _op("The operator console (web/admin/index.html)", {
            "200": {"description": "HTML", "content": {"text/html": {"schema": STR}}}})},
        "/console/{path}": {"get": _op("The operator console's files", {
            "200": {"description": "a file of web/admin/"},
            "404": _error("404 page not found")}, parameters=[
                {"name": "path", "in": "path", "required": True, "schema": STR}])},
        "/api/deposits/errored": {"get": _op("Deposits that ended with an error",
                                             {"200": DEPOSITS})},
        "/api/accounting": {"get": _op("Received per coin and sent in the payout token", {
            "200": _json(_obj({"received": {"type": "object", "additionalProperties": DEC},
                               "sent": DEC, "sent_token": STR}))})},
        "/api/backup": {"get": _op("A consistent copy of the LMDB database", {"200": {
            "description": "data.mdb", "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}})},
        "/metrics": {"get": _op("Prometheus text", {"200": {
            "description": "exposition format 0.0.4", "content": {"text/plain": {
                "schema": STR}}}})},
        "/api/deposits/review": {"post": _op(
            "An operator's decision on a deposit in needs_review",
            {"200": _json({"$ref": "#/components/schemas/Deposit"}), **BODY_ERRORS,
             "400": _error("Invalid json request body: ... / Invalid action: ..."),
             "404": _error("Deposit not found"), "409": _error("the transition is refused")},
            requestBody=_json_body(_obj({"coin_type": STR, "deposit_id": STR,
                                         "action": {"enum": ["mark_done", "retry", "cancel"]},
                                         "note": STR, "operator": STR},
                                        ["coin_type", "deposit_id", "action"])))},
        "/api/settings": {
            "get": _op("Runtime settings: effective value and source", {
                "200": _json(SETTINGS_VIEW)}),
            "post": _op("Change runtime settings (all checked, applied together)", {
                "200": CHANGED, **BODY_ERRORS}, requestBody=_json_body({"oneOf": [
                    _obj({"key": STR, "value": {"type": ["string", "integer", "boolean"]}},
                         ["key", "value"]),
                    _obj({"settings": {"type": "object", "minProperties": 1}}, ["settings"])]},
                    {"key": "max_bound_addrs", "value": 3}))},
        "/api/settings/reset": {"post": _op("Back to the config file's value", {
            "200": CHANGED, **BODY_ERRORS}, requestBody=_json_body(_obj({"key": STR}, ["key"]),
                                                                {"key": "max_bound_addrs"}))},
        "/api/settings/audit": {"get": _op("Append-only log of runtime-setting changes", {
            "200": _json(_obj({"entries": {"type": "array", "items": AUDIT_ENTRY}})),
            "400": _error("Invalid limit: an integer 1..100000")}, parameters=[limit])},
    }
    return _document("teller admin API", "Operators' routes (loopback).", paths,
                     {"Deposit": DEPOSIT})


# -- dummy ---------------------------------------------------------------------------------


def dummy_document() -> dict[str, Any]:
    deposit_params = [
        {"name": "addr", "in": "query", "required": True, "schema": STR},
        {"name": "value", "in": "query", "required": True,
         "schema": {"type": "integer", "minimum": 0}},
        {"name": "height", "in": "query", "required": True,
         "schema": {"type": "integer", "minimum": 0}},
        {"name": "tx", "in": "query", "required": True, "schema": STR},
        {"name": "n", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        COIN_PARAM]
    empty = {"description": "done (empty body)", "content": TEXT}
    deposit = _op("A scanner 'sees' a deposit (persisted before the 200)", {
        "200": empty, "400": _error("addr required / invalid value / ... / <coin> is not "
                                    "served by the dummy scanner")},
        parameters=deposit_params)
    confirm_params = [{"name": "txid", "in": "query", "schema": STR},
                      {"name": "seq", "in": "query", "schema": {"type": "integer",
                                                                 "minimum": 0}}]
    confirm = _op("The dummy chain confirms a payout", {
        "200": empty, "400": _error("txid or seq required / invalid seq"),
        "404": _error("txn not found")}, parameters=confirm_params)
    broadcast = _obj({"txid": STR, "confirmed": BOOL, "outputs": {"type": "array", "items": _obj(
        {"address": STR, "coins": DEC})}}, ["txid", "confirmed", "outputs"])
    return _document("teller dummy API", "Inject deposits and confirm payouts by hand.", {
        "/dummy/scanner/deposit": {"get": deposit, "post": deposit},
        "/dummy/sender/broadcasts": {"get": _op("Payouts the dummy sender broadcast", {
            "200": _json({"type": "array", "items": broadcast})}, parameters=[
                {"name": "confirmed", "in": "query", "schema": {"enum": ["true", "false"]}}])},
        "/dummy/sender/confirm": {"get": confirm, "post": confirm},
    })


DOCUMENTS = {"public": public_document, "admin": admin_document, "dummy": dummy_document}


def register_openapi(app: Flask, name: str) -> None:
    """``GET /api/openapi.json`` on ``app``: the document of API ``name``."""
    document = DOCUMENTS[name]()

    @app.get("/api/openapi.json")
    def openapi() -> Response:
        return json_response(document)
