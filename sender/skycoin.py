"""SKY payouts through a Skycoin node's REST API, from a wallet loaded in that node.

The Go teller signed offline with a local ``.wlt`` file and spoke the ``/webrpc`` JSON-RPC API,
which current nodes no longer have. This backend uses the REST API (skycoin/skycoin
``src/api/README.md``):

- ``POST /api/v1/wallet/transaction`` creates and signs a transaction from the node's wallet
  *without* injecting it (``hours_selection`` auto/share: the node's fee and hour rules
  decide), so the exchanger can persist the signed bytes and txid first. Several outputs fit
  in one transaction (``sender.max_outputs``); two deposits of one buyer are merged into one
  output, because the node refuses identical outputs.
- ``POST /api/v1/injectTransaction`` broadcasts those bytes; the node accepts a transaction it
  already has in its pool; if it was already confirmed (its inputs are now spent), the
  transaction lookup tells us it is ours and that counts as success.
- ``GET /api/v1/transaction?txid=`` → ``status.confirmed`` finishes a payout. Skycoin has a
  single block publisher, so one confirmation is final. A payout the node does not know whose
  inputs were spent by another transaction (``/api/v1/uxout``) is CONFLICTED.
- ``GET /api/v1/wallet/balance?id=`` is the spendable balance (the smaller of confirmed and
  predicted, minus payouts signed but not yet injected).

Every POST carries a CSRF token (``GET /api/v1/csrf``, header ``X-CSRF-Token``), fetched again
once when the node answers 403 "invalid CSRF token". A node started without the needed API sets
answers 403 "Endpoint is disabled": the error names the flag that enables them. Amounts are
droplets (10^-6 SKY) and must fit the node's ``max_decimals`` (3 by default).

A transaction built while an earlier one is still not accepted by the node could spend the
same outputs; ``build`` refuses such a transaction (it is never persisted) until the earlier
one is injected, or found CONFLICTED. Node answers are parsed with exact numbers (int or
Decimal, never float); an answer that is not what the API promises is ``NodeUnavailable``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from common.units import SKY_DECIMALS, format_units

from .base import (
    Balance,
    BroadcastRejected,
    InsufficientFunds,
    NodeUnavailable,
    PayoutOutput,
    Sender,
    SenderError,
    SignedPayout,
    TxState,
)

log = logging.getLogger(__name__)

ENABLE_FLAG = "-enable-api-sets=READ,TXN,WALLET (or -enable-all-api-sets)"
_ZERO_HASH = "0" * 64
_INSUFFICIENT = ("balance is not sufficient", "hours are not sufficient",
                 "not enough coins", "insufficient")


class SkycoinAPIError(SenderError):
    """A non-2xx answer; ``status`` and ``detail`` (the node's message) kept for mapping."""

    def __init__(self, status: int, detail: str, what: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{what}: Skycoin node answered {status}: {detail}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _parse_json(content: bytes) -> Any:
    """A node answer as JSON with exact numbers: int or Decimal, never float; NaN and
    Infinity refused (ValueError)."""
    return json.loads(content, parse_float=Decimal, parse_constant=_refuse_constant)


def _detail(response: requests.Response) -> str:
    """The node's message: v1 bodies are "400 Bad Request - why", v2 bodies JSON errors."""
    text = response.text.strip()
    try:
        body = _parse_json(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or text)
    head, sep, tail = text.partition(" - ")
    return tail.strip() if sep else text


def _droplets(coins: Any) -> int:
    """A coins value ("1.5", or a JSON number parsed as Decimal) in droplets, exactly."""
    try:
        value = Decimal(str(coins)).scaleb(SKY_DECIMALS)
    except InvalidOperation:
        value = Decimal("NaN")
    if isinstance(coins, bool | float) or not value.is_finite() or value % 1:
        raise ValueError(f"bad coins value {coins!r}")
    return int(value)


def _whole(value: Any) -> int:
    """An integer field of a node answer (droplets, hours); anything else is ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an integer: {value!r}")
    return value


class SkycoinSender(Sender):
    name = "skycoin"
    token = "SKY"
    decimals = SKY_DECIMALS

    def __init__(self, storage: Any, *, address: str, wallet_id: str, password: str = "",
                 max_outputs: int = 1, max_decimals: int = 3, timeout: float = 15.0,
                 share_factor: str = "0.5", session: requests.Session | None = None) -> None:
        self.storage = storage
        self.base = address.rstrip("/") if "://" in address else f"http://{address}"
        self.wallet_id = wallet_id
        self._password = password  # never logged
        self.max_outputs = max_outputs
        self.max_decimals = max_decimals
        self.timeout = timeout
        self.share_factor = share_factor
        self.session = session or requests.Session()
        self._csrf: str | None = None
        self._lock = threading.Lock()
        self._prefix = f"skycoin/{wallet_id}/unbroadcast/"

    def __repr__(self) -> str:
        return f"SkycoinSender(node={self.base}, wallet={self.wallet_id})"

    # -- HTTP ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return self.session.request(method, self.base + path, timeout=self.timeout,
                                        **kwargs)
        except requests.RequestException as exc:
            raise NodeUnavailable(f"{what}: Skycoin node {self.base} unreachable "
                                  f"({type(exc).__name__})") from None

    def _fetch_csrf(self, what: str) -> str | None:
        response = self._send("GET", "/api/v1/csrf", what)
        if response.status_code == 404:
            return None  # the node runs with -disable-csrf
        if response.status_code != 200:
            self._raise(response, what)
        try:
            return str(_parse_json(response.content)["csrf_token"])
        except (ValueError, KeyError, TypeError):
            raise NodeUnavailable(f"{what}: the node's CSRF answer is not JSON with "
                                  "csrf_token") from None

    def _get(self, path: str, what: str, params: dict[str, str]) -> requests.Response:
        return self._send("GET", path, what, params=params)

    def _post(self, path: str, what: str, body: dict[str, Any]) -> requests.Response:
        """POST JSON with a CSRF token; one refetch of the token when the node refuses it."""
        for attempt in range(2):
            if self._csrf is None or attempt:
                self._csrf = self._fetch_csrf(what)
            headers = {"X-CSRF-Token": self._csrf} if self._csrf else {}
            response = self._send("POST", path, what, json=body, headers=headers)
            if response.status_code == 403 and "csrf" in response.text.lower():
                self._csrf = None
                continue
            return response
        raise SenderError(f"{what}: the Skycoin node refused two fresh CSRF tokens")

    def _raise(self, response: requests.Response, what: str) -> None:
        status, detail = response.status_code, _detail(response)
        if status == 403:
            raise SenderError(f"{what}: the Skycoin node refuses the endpoint ({detail}); start "
                              f"the node with {ENABLE_FLAG}")
        if status in (502, 503, 504) or (status == 500 and not detail):
            raise NodeUnavailable(f"{what}: Skycoin node answered {status}: {detail}")
        raise SkycoinAPIError(status, detail, what)

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            return _parse_json(response.content)
        except ValueError:
            raise NodeUnavailable(f"{what}: the Skycoin node's answer is not JSON") from None

    # -- Sender ------------------------------------------------------------------------------

    def balance(self) -> Balance:
        what = "reading the wallet balance"
        response = self._get("/api/v1/wallet/balance", what, {"id": self.wallet_id})
        if response.status_code == 404:
            raise SenderError(f"{what}: wallet {self.wallet_id!r} is not loaded in the node "
                              "(check sky_rpc.wallet_id and the node's wallet directory)")
        if response.status_code != 200:
            self._raise(response, what)
        body = self._json(response, what)
        try:
            confirmed, predicted = body["confirmed"], body["predicted"]
            coins = min(_whole(confirmed["coins"]), _whole(predicted["coins"]))
            hours = min(_whole(confirmed["hours"]), _whole(predicted["hours"]))
        except (KeyError, TypeError, ValueError):
            raise NodeUnavailable(f"{what}: unexpected balance answer") from None
        with self.storage.read() as txn:
            reserved = sum(entry["coins"] for _, entry in
                           self.storage.items(txn, "sender", self._prefix))
        return Balance(coins=max(0, coins - reserved), hours=hours)

    def _to_list(self, outputs: list[PayoutOutput]) -> OrderedDict[str, int]:
        step = 10 ** (SKY_DECIMALS - self.max_decimals)
        merged: OrderedDict[str, int] = OrderedDict()
        for out in outputs:
            if out.amount <= 0 or out.amount % step:
                raise SenderError(f"payout of {format_units(out.amount, SKY_DECIMALS)} SKY to "
                                  f"{out.address} is not a positive amount with at most "
                                  f"{self.max_decimals} decimals (the node refuses it)")
            merged[out.address] = merged.get(out.address, 0) + out.amount
        return merged

    def build(self, outputs: list[PayoutOutput], payout_id: str) -> SignedPayout:
        what = "creating the payout transaction"
        if not outputs or len(outputs) > self.max_outputs:
            raise SenderError(f"{what}: {len(outputs)} outputs (max {self.max_outputs})")
        wanted = self._to_list(outputs)
        body: dict[str, Any] = {
            "hours_selection": {"type": "auto", "mode": "share",
                                "share_factor": self.share_factor},
            "wallet_id": self.wallet_id,
            "to": [{"address": a, "coins": format_units(c, SKY_DECIMALS)}
                   for a, c in wanted.items()],
            "ignore_unconfirmed": True,
        }
        if self._password:
            body["password"] = self._password
        with self._lock:
            response = self._post("/api/v1/wallet/transaction", what, body)
        if response.status_code != 200:
            detail = _detail(response).lower()
            if any(s in detail for s in _INSUFFICIENT):
                raise InsufficientFunds(f"{what}: {_detail(response)}")
            if response.status_code == 404:
                raise SenderError(f"{what}: wallet {self.wallet_id!r} is not loaded in the node")
            if response.status_code == 401 or "password" in detail:
                raise SenderError(f"{what}: the node refused the wallet password "
                                  f"({_detail(response)}); check sky_rpc.password_file/env")
            self._raise(response, what)
        data = self._json(response, what)
        data = data.get("data", data) if isinstance(data, dict) else data
        try:
            txn = data["transaction"]
            txid, raw = str(txn["txid"]), str(data["encoded_transaction"])
            inputs = [str(i["uxid"] if isinstance(i, dict) else i) for i in txn["inputs"]]
            paid: dict[str, int] = {}
            for o in txn["outputs"]:
                addr = o.get("address") or o.get("dst")
                if addr in wanted:
                    paid[addr] = paid.get(addr, 0) + _droplets(o["coins"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NodeUnavailable(f"{what}: unexpected answer from the node ({exc})") from None
        wrong = [a for a, c in wanted.items() if paid.get(a) != c]
        if wrong or len(txid) != 64 or not raw:
            raise SenderError(f"{what}: the node built a transaction that does not pay exactly "
                              f"the requested outputs ({', '.join(wrong) or 'txid/raw'}); "
                              "not using it")
        self._check_inputs_free(inputs, what)
        return SignedPayout(txid=txid, raw=raw, outputs=tuple(outputs),
                            meta={"inputs": inputs, "wallet": self.wallet_id})

    def _check_inputs_free(self, inputs: list[str], what: str) -> None:
        with self.storage.read() as txn:
            for key, entry in self.storage.items(txn, "sender", self._prefix):
                if set(entry["inputs"]) & set(inputs):
                    raise SenderError(f"{what}: it would spend outputs of payout "
                                      f"{key[len(self._prefix):]}, which the node has not "
                                      "accepted yet; waiting for that one first")

    def commit_built(self, storage: Any, txn: Any, signed: SignedPayout) -> None:
        storage.put(txn, "sender", self._prefix + signed.txid, {
            "inputs": list(signed.meta.get("inputs", [])),
            "coins": sum(o.amount for o in signed.outputs)})

    def _release(self, txid: str) -> None:
        """The node has this payout, or it can never be mined: its inputs are no longer ours
        to guard, nor its coins to hold back from the balance."""
        key = self._prefix + txid
        with self.storage.read() as txn:
            if self.storage.get(txn, "sender", key) is None:
                return
        with self.storage.write() as txn:
            self.storage.delete(txn, "sender", key)

    def broadcast(self, signed: SignedPayout) -> None:
        what = f"injecting payout {signed.txid}"
        response = self._post("/api/v1/injectTransaction", what, {"rawtx": signed.raw})
        if response.status_code == 200:
            answered = self._json(response, what)
            if answered != signed.txid:
                log.error("notice=WATCH skycoin node returned txid %s for payout %s",
                          answered, signed.txid)
            self._release(signed.txid)
            return
        if response.status_code == 400:
            # Already confirmed (its inputs are spent by itself) or inputs spent elsewhere.
            if self._lookup(signed.txid) is not None:
                self._release(signed.txid)
                return
            detail = _detail(response)
            if any(s in detail.lower() for s in _INSUFFICIENT):
                raise InsufficientFunds(f"{what}: {detail}")
            raise BroadcastRejected(f"{what}: {detail}")
        self._raise(response, what)

    def _lookup(self, txid: str) -> dict[str, Any] | None:
        what = f"looking up payout {txid}"
        response = self._get("/api/v1/transaction", what, {"txid": txid})
        if response.status_code == 404:
            return None
        if response.status_code == 400 and "not found" in response.text.lower():
            return None
        if response.status_code != 200:
            self._raise(response, what)
        body = self._json(response, what)
        if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
            raise NodeUnavailable(f"{what}: unexpected transaction answer")
        return body["status"]

    def _spent_elsewhere(self, signed: SignedPayout) -> bool:
        for uxid in signed.meta.get("inputs", []):
            what = f"checking input {uxid}"
            response = self._get("/api/v1/uxout", what, {"uxid": uxid})
            if response.status_code != 200:
                continue
            body = self._json(response, what)
            spent = str(body.get("spent_tx") or "") if isinstance(body, dict) else ""
            if spent and spent != _ZERO_HASH and spent != signed.txid:
                return True
        return False

    def tx_state(self, signed: SignedPayout) -> TxState:
        status = self._lookup(signed.txid)
        if status is None:
            if self._spent_elsewhere(signed):
                self._release(signed.txid)  # its inputs are gone: it can never be mined
                return TxState.CONFLICTED
            return TxState.UNKNOWN
        self._release(signed.txid)
        if status.get("confirmed"):
            return TxState.CONFIRMED
        return TxState.PENDING

    def close(self) -> None:
        self.session.close()
