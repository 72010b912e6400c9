"""btcsim's bitcoind JSON-RPC dialect and the WSGI app that also serves the control API.

Public entry point and documentation of the wire format: ``tools.btcsim``.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tools.btcsim_chain import _DIFFICULTY, RPCError, Simulator, SimulatorError

# --------------------------------------------------------------------------- JSON-RPC


_METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "getblockcount": (),
    "getbestblockhash": (),
    "getblockchaininfo": (),
    "getnetworkinfo": (),
    "getblockhash": ("height",),
    "getblock": ("blockhash", "verbosity"),
    "getblockheader": ("blockhash", "verbose"),
}
_REQUIRED = {"getblockhash": 1, "getblock": 1, "getblockheader": 1}
_USAGE = {
    "getblockcount": "getblockcount\n\nReturns the height of the most-work fully-validated chain.",
    "getbestblockhash": "getbestblockhash\n\nReturns the hash of the best (tip) block.",
    "getblockchaininfo": "getblockchaininfo\n\nReturns an object with blockchain state info.",
    "getnetworkinfo": "getnetworkinfo\n\nReturns an object with P2P networking state info.",
    "getblockhash": "getblockhash height\n\nReturns hash of block in best-block-chain at height.",
    "getblock": "getblock \"blockhash\" ( verbosity )\n\nReturns data for the block.",
    "getblockheader": "getblockheader \"blockhash\" ( verbose )\n\nReturns the block header.",
}


@dataclass
class _Raw:
    """Pre-serialised JSON for a result."""

    data: bytes


def _params(method: str, params: Any) -> list[Any]:
    names = _METHOD_PARAMS[method]
    if params is None:
        params = []
    if isinstance(params, dict):
        unknown = set(params) - set(names)
        if unknown:
            raise RPCError(-8, f"Unknown named parameter {sorted(unknown)[0]}")
        values = [params.get(n) for n in names]
        while values and values[-1] is None:
            values.pop()
        params = values
    if len(params) < _REQUIRED.get(method, 0) or len(params) > len(names):
        raise RPCError(-1, _USAGE[method])
    return params


def _expect_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RPCError(-1, "JSON value is not an integer as expected")
    return value


def _parse_hash(value: Any, name: str = "blockhash") -> str:
    if not isinstance(value, str):
        raise RPCError(-1, "JSON value is not a string as expected")
    if len(value) != 64:
        raise RPCError(-8, f"{name} must be of length 64 (not {len(value)}, for '{value}')")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise RPCError(-8, f"{name} must be hexadecimal string (not '{value}')") from None
    return value.lower()


def call_method(sim: Simulator, method: Any, params: Any) -> Any:
    """Run one RPC method; returns a JSON-able value or ``_Raw``; raises ``RPCError``."""
    if not isinstance(method, str):
        raise RPCError(-32600, "Method must be a string")
    if method not in _METHOD_PARAMS:
        raise RPCError(-32601, "Method not found")
    if params is not None and not isinstance(params, list | dict):
        raise RPCError(-32600, "Params must be an array or object")
    args = _params(method, params)
    if method == "getblockcount":
        return sim.height
    if method == "getbestblockhash":
        return sim.tip
    if method == "getblockhash":
        return sim.block_at(_expect_int(args[0])).hash
    if method in ("getblock", "getblockheader"):
        block_hash = _parse_hash(args[0])
        block = sim.block_by_hash(block_hash)
        if block is None:
            raise RPCError(-5, "Block not found")
        confirmations, nxt = sim.position(block)
        flag = args[1] if len(args) > 1 and args[1] is not None else None
        if method == "getblockheader":
            if flag is not None and not isinstance(flag, bool):
                raise RPCError(-1, "JSON value is not a boolean as expected")
            if flag is False:
                return block.header.hex()
            return _Raw(block.render_header(confirmations, nxt))
        if flag is None:
            verbosity = 1
        elif isinstance(flag, bool):
            verbosity = int(flag)
        else:
            verbosity = _expect_int(flag)
        if verbosity <= 0:
            return block.raw_hex()
        return _Raw(block.render(confirmations, nxt, verbosity))
    if method == "getblockchaininfo":
        with sim._lock:
            tip = sim._active[-1]
            first = sim._active[0]
            size = sum(80 + sum(t.size for t in b.txs) for b in sim._active)
        times = [b.time for b in sim._active[-11:]]
        return {
            "chain": sim.chain,
            "blocks": tip.height,
            "headers": tip.height,
            "bestblockhash": tip.hash,
            "difficulty": Decimal(_DIFFICULTY),
            "time": tip.time,
            "mediantime": sorted(times)[len(times) // 2],
            "verificationprogress": 1,
            "initialblockdownload": False,
            "chainwork": f"{(tip.height + 1) * 2:064x}",
            "size_on_disk": size,
            "pruned": first.height > 0,
            **({"pruneheight": first.height} if first.height > 0 else {}),
            "warnings": "",
        }
    # getnetworkinfo
    major = sim.core_version
    subversion = f"/Satoshi:{major}.0.0/" if major >= 22 else f"/Satoshi:0.{major}.0/"
    return {
        "version": major * 10000,
        "subversion": subversion,
        "protocolversion": 70016,
        "localservices": "0000000000000409",
        "localrelay": True,
        "timeoffset": 0,
        "networkactive": True,
        "connections": 0,
        "networks": [],
        "relayfee": Decimal("0.00001000"),
        "incrementalfee": Decimal("0.00001000"),
        "localaddresses": [],
        "warnings": "",
    }


def _envelope(result: Any, error: dict[str, Any] | None, req_id: Any,
              strict: bool = False) -> bytes:
    """A reply; ``strict`` is Core >= 28's JSON-RPC 2.0 form: ``result`` or ``error``, not both."""
    rid = json.dumps(req_id).encode()
    if strict:
        field = (b'"error":%s' % json.dumps(error).encode() if error is not None
                 else b'"result":%s' % _serialise(result))
        return b'{"jsonrpc":"2.0",%s,"id":%s}' % (field, rid)
    if error is not None:
        return b'{"result":null,"error":%s,"id":%s}' % (json.dumps(error).encode(), rid)
    return b'{"result":%s,"error":null,"id":%s}' % (_serialise(result), rid)


def _serialise(value: Any) -> bytes:
    """JSON without floats: Decimals are written with their exact digits."""
    if isinstance(value, _Raw):
        return value.data
    text = json.dumps(value, default=_decimal_marker, separators=(",", ":"))
    if _MARK in text:
        text = text.replace('"' + _MARK, "").replace(_MARK + '"', "")
    return text.encode()


_MARK = "\\u0000dec\\u0000"  # how json.dumps escapes the marker below


def _decimal_marker(o: Any) -> str:
    if isinstance(o, Decimal):
        return "\x00dec\x00" + str(o) + "\x00dec\x00"
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- WSGI app


_JSON = [("Content-Type", "application/json")]
_HTTP_STATUS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized",
                404: "404 Not Found", 405: "405 Method Not Allowed", 500: "500 Internal Server Error",
                503: "503 Service Unavailable"}


class SimulatorApp:
    """WSGI app: bitcoind JSON-RPC on every path but ``/control/*``, which is the control API."""

    def __init__(
        self,
        simulator: Simulator,
        user: str,
        password: str,
        refuse: Callable[[float], None] | None = None,
    ) -> None:
        self.sim = simulator
        self._credentials = f"{user}:{password}".encode()
        self._refuse = refuse

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/control" or path.startswith("/control/"):
            status, body = self._control(environ, path)
            return self._reply(start_response, status, body)
        return self._rpc(environ, start_response)

    @staticmethod
    def _reply(
        start_response: Callable[..., Any],
        status: int,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        hdrs = list(_JSON if headers is None else headers)
        hdrs.append(("Content-Length", str(len(body))))
        start_response(_HTTP_STATUS[status], hdrs)
        return [body]

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        return environ["wsgi.input"].read(length) if length > 0 else b""

    def _authorised(self, environ: dict[str, Any]) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given, self._credentials)

    # -- JSON-RPC

    def _rpc(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self._reply(
                start_response, 405, b"JSONRPC server handles only POST requests",
                [("Content-Type", "text/html; charset=ISO-8859-1")],
            )
        if not self._authorised(environ):
            return self._reply(
                start_response, 401, b"",
                [("WWW-Authenticate", 'Basic realm="jsonrpc"'), ("Content-Type", "text/html")],
            )
        body = self._body(environ)
        mode = self.sim.outage
        if mode == "hang":
            self.sim.outage_cleared.wait(self.sim.outage_seconds)
        elif mode == "http503":
            return self._reply(
                start_response, 503, b"<html><body>503 Service Unavailable</body></html>",
                [("Content-Type", "text/html")],
            )
        try:
            request = json.loads(body, parse_float=Decimal)
        except ValueError:
            return self._reply(
                start_response, 500, _envelope(None, {"code": -32700, "message": "Parse error"},
                                               None) + b"\n",
            )
        if mode == "error":  # Core's warm-up check runs per request, batch elements too
            err = {"code": -28, "message": "Loading block index..."}
            if isinstance(request, list):
                replies = [_envelope(None, err, r.get("id") if isinstance(r, dict) else None,
                                     self._strict(r)) for r in request]
                return self._reply(start_response, 200, b"[" + b",".join(replies) + b"]\n")
            rid = request.get("id") if isinstance(request, dict) else None
            strict = self._strict(request)
            return self._reply(start_response, 200 if strict else 500,
                               _envelope(None, err, rid, strict) + b"\n")
        if isinstance(request, list):
            replies = [self._one(item)[1] for item in request]
            return self._reply(start_response, 200, b"[" + b",".join(replies) + b"]\n")
        if not isinstance(request, dict):
            err = {"code": -32700, "message": "Top-level object parse error"}
            return self._reply(start_response, 500, _envelope(None, err, None) + b"\n")
        status, reply = self._one(request)
        return self._reply(start_response, status, reply + b"\n")

    def _strict(self, request: Any) -> bool:
        """Core >= 28 answers a request marked "jsonrpc": "2.0" strictly, always with HTTP 200."""
        return (self.sim.core_version >= 28 and isinstance(request, dict)
                and request.get("jsonrpc") == "2.0")

    def _one(self, request: Any) -> tuple[int, bytes]:
        if not isinstance(request, dict):
            err = {"code": -32600, "message": "Invalid Request object"}
            return 400, _envelope(None, err, None)
        rid = request.get("id")
        strict = self._strict(request)
        try:
            result = call_method(self.sim, request.get("method"), request.get("params"))
        except RPCError as exc:
            status = 200 if strict else {-32600: 400, -32601: 404}.get(exc.code, 500)
            return status, _envelope(None, {"code": exc.code, "message": exc.message}, rid,
                                     strict)
        return 200, _envelope(result, None, rid, strict)

    # -- control API

    def _control(self, environ: dict[str, Any], path: str) -> tuple[int, bytes]:
        method = environ.get("REQUEST_METHOD")
        action = path[len("/control/") :].strip("/")
        routes = {"state": "GET", "mine": "POST", "filler": "POST", "reorg": "POST",
                  "outage": "POST"}
        if action not in routes:
            return 404, _err(f"unknown control endpoint {path!r}; try {sorted(routes)}")
        if method != routes[action] and not (action == "state" and method == "POST"):
            return 405, _err(f"{path} needs {routes[action]}")
        body: dict[str, Any] = {}
        if method == "POST":
            raw = self._body(environ)
            if raw.strip():
                try:
                    parsed = json.loads(raw, parse_float=Decimal)
                except ValueError as exc:
                    return 400, _err(f"body is not JSON: {exc}")
                if not isinstance(parsed, dict):
                    return 400, _err("body must be a JSON object")
                body = parsed
        try:
            result = self._control_action(action, body)
        except SimulatorError as exc:
            return 400, _err(str(exc))
        return 200, _serialise(result)

    def _control_action(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        sim = self.sim
        if action == "state":
            return sim.state()
        allowed = {
            "mine": {"txs", "count", "time", "reinclude"},
            "filler": {"blocks", "outputs", "outputs_per_tx", "seed"},
            "reorg": {"depth", "blocks", "new_blocks"},
            "outage": {"mode", "seconds"},
        }[action]
        unknown = set(body) - allowed
        if unknown:
            raise SimulatorError(f"unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        if action == "mine":
            blocks = sim.mine(
                body.get("txs"), body.get("count", 1), body.get("time"), body.get("reinclude")
            )
            return {"height": sim.height, "tip": sim.tip, "blocks": [b.summary() for b in blocks]}
        if action == "filler":
            if "blocks" not in body or "outputs" not in body:
                raise SimulatorError("filler needs blocks and outputs")
            return sim.filler(
                body["blocks"], body["outputs"], body.get("outputs_per_tx", 2), body.get("seed")
            )
        if action == "reorg":
            if "depth" not in body:
                raise SimulatorError("reorg needs depth")
            orphaned, new = sim.reorg(body["depth"], body.get("blocks"), body.get("new_blocks"))
            return {
                "height": sim.height,
                "tip": sim.tip,
                "orphaned": [b.hash for b in orphaned],
                "blocks": [b.summary() for b in new],
            }
        mode = body.get("mode")
        seconds = body.get("seconds", 0)
        if mode == "refuse":
            if self._refuse is None:
                raise SimulatorError("refuse needs a server that owns its socket")
            sim.set_outage(mode, seconds)
            self._refuse(float(seconds))
        else:
            sim.set_outage(mode, seconds)
        return sim.state()


def _err(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


