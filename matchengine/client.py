"""Calling the exchange core from other code: in-process or over HTTP, same interface.

    client = LocalClient(service)                 # co-located: no sockets
    client = HttpClient("http://127.0.0.1:8080")  # remote: viabtc JSON-RPC over HTTP
    client.call("balance.update", [1, "BTC", "deposit", 7, "0.5", {}])

`call` returns the method's result or raises CoreError(code, message); code 10 from
balance.update ("repeat update") means the change was already applied.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Protocol

import requests

from matchengine.errors import CoreError

if TYPE_CHECKING:
    from matchengine.service import CoreService

__all__ = ["CoreClient", "CoreError", "HttpClient", "LocalClient"]


class CoreClient(Protocol):
    def call(self, method: str, params: list[Any]) -> Any: ...


class LocalClient:
    """In-process client over a running `CoreService`."""

    def __init__(self, service: CoreService) -> None:
        self.service = service

    def call(self, method: str, params: list[Any]) -> Any:
        result = self.service.call(method, params)
        if isinstance(result, CoreError):
            raise result
        return result

    def call_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return self.service.call_many(calls)


class HttpClient:
    """JSON-RPC over HTTP; transport failures raise CoreError(2 or 5)."""

    def __init__(self, url: str, timeout: float = 10.0,
                 session: requests.Session | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()
        self._ids = itertools.count(1)

    def call(self, method: str, params: list[Any]) -> Any:
        body = {"id": next(self._ids), "method": method, "params": params}
        try:
            reply = self.session.post(self.url, json=body, timeout=self.timeout)
        except requests.Timeout as exc:
            raise CoreError(5, "service timeout") from exc
        except requests.RequestException as exc:
            raise CoreError(2, f"internal error: {exc}") from exc
        if reply.status_code not in (200, 404, 504) or not reply.content:
            raise CoreError(2, f"internal error: HTTP {reply.status_code}")
        data = reply.json()
        if data.get("error"):
            raise CoreError(data["error"]["code"], data["error"]["message"])
        return data["result"]

    def call_batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """One round trip; each element is a result or a CoreError instance."""
        body = [{"id": next(self._ids), "method": m, "params": p} for m, p in calls]
        reply = self.session.post(self.url, json=body, timeout=self.timeout)
        if reply.status_code != 200:
            raise CoreError(2, f"internal error: HTTP {reply.status_code}")
        out: list[Any] = []
        for item in reply.json():
            if item.get("error"):
                out.append(CoreError(item["error"]["code"], item["error"]["message"]))
            else:
                out.append(item["result"])
        return out
