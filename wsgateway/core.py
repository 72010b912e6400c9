"""The gateway's view of the exchange core: `await core.call_many([(method, params), ...])`.

`LocalCore` runs next to a `CoreService` in the same process and never blocks the event loop:
calls go through `submit`, whose completion callback (writer or committer thread) only hands
the results to the loop. History reads wait for the disk, so they run in a worker thread.
`RemoteCore` speaks viabtc JSON-RPC over HTTP to a core elsewhere (`teller core ws`), from a
small thread pool (requests is blocking).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from matchengine.client import HttpClient
from matchengine.errors import CoreError

__all__ = ["Core", "CoreError", "LocalCore", "RemoteCore"]


class Core(Protocol):
    async def call_many(self, calls: list[tuple[str, list]]) -> list[Any]:
        """Each element: the method's result or a CoreError instance."""
        ...


async def call(core: Core, method: str, params: list) -> Any:
    """One call; raises CoreError."""
    result = (await core.call_many([(method, params)]))[0]
    if isinstance(result, CoreError):
        raise result
    return result


class LocalCore:
    """In-process access to a CoreService (anything with `submit`, `needs_thread`, `call_many`)."""

    def __init__(self, service: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.service = service
        self.loop = loop

    async def call_many(self, calls: list[tuple[str, list]]) -> list[Any]:
        if self.service.needs_thread(calls):
            return await self.loop.run_in_executor(None, self.service.call_many, calls)
        future = self.loop.create_future()

        def done(results: list[Any]) -> None:  # core thread: hand over, nothing else
            self.loop.call_soon_threadsafe(_resolve, future, results)

        self.service.submit(calls, done)
        return await future


def _resolve(future: asyncio.Future, results: list[Any]) -> None:
    if not future.done():  # the waiter may have been cancelled (connection closed)
        future.set_result(results)


class RemoteCore:
    """A core at `url` (its HTTP JSON-RPC endpoint); one requests session per worker thread."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, workers: int = 8,
                 timeout: float = 10.0) -> None:
        self.url = url
        self.loop = loop
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ws-core")
        self._local = threading.local()

    def _client(self) -> HttpClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = HttpClient(self.url, timeout=self.timeout)
        return client

    def _run(self, calls: list[tuple[str, list]]) -> list[Any]:
        try:
            return self._client().call_batch(calls)
        except CoreError as exc:
            return [exc] * len(calls)
        except Exception as exc:  # connection refused, bad JSON: the core is unavailable
            return [CoreError(3, f"service unavailable: {exc}")] * len(calls)

    async def call_many(self, calls: list[tuple[str, list]]) -> list[Any]:
        return await self.loop.run_in_executor(self._pool, self._run, calls)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
