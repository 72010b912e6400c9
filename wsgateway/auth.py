"""Tokens to user ids through `[ws] auth_url`, viabtc accessws's contract, with a cache; and
API-key signatures through `[ws] sign_url` (accessws's `server.sign`).

GET auth_url with `Authorization: <token>`, or GET `sign_url?access_id=...&tonce=...` with
`Authorization: <signature>`; the reply must be
`{"code": 0, "message": null, "data": {"user_id": N}}`. A non-zero code becomes error 11 with
the server's message, an unreadable reply error 2, no reply within `auth_timeout` error 5
(viabtc's mapping). CONNMIX's `{"uid": N}` reply is accepted as well, so the same check serves
both dialects. Successful answers are cached for `auth_cache_seconds` (bounded, oldest out),
refusals are not: a user who just logged in must not wait for a cached "no". Signatures are
not cached: each carries its own tonce, and the sign service judges whether one is fresh.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import requests

from matchengine.errors import CoreError

CACHE_MAX = 100_000
USER_MAX = 2**63 - 1


class Authenticator:
    def __init__(self, url: str, timeout: float, cache_seconds: float,
                 loop: asyncio.AbstractEventLoop, workers: int = 4, sign_url: str = "") -> None:
        self.url = url
        self.sign_url = sign_url
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.loop = loop
        self._cache: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ws-auth")
        self._local = threading.local()  # a requests session per worker thread
        self.checks = 0  # auth_url requests made (tests read it to see the cache work)

    async def user_id(self, token: str) -> int:
        """The user the token belongs to; raises CoreError (11 refused, 2 bad reply, 5 timeout,
        3 no auth_url)."""
        if not self.url:
            raise CoreError(3, "service unavailable: no auth_url configured")
        hit = self._cache.get(token)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            self._cache.move_to_end(token)
            return hit[0]
        user = await self.loop.run_in_executor(self._pool, self._check, self.url, token, None)
        if self.cache_seconds > 0:
            self._cache[token] = (user, now + self.cache_seconds)
            self._cache.move_to_end(token)
            while len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        return user

    async def signed_user(self, access_id: str, signature: str, tonce: int) -> int:
        """The user an API key's signed request belongs to; raises CoreError as `user_id`."""
        if not self.sign_url:
            raise CoreError(3, "service unavailable: no sign_url configured")
        query = {"access_id": access_id, "tonce": str(tonce)}
        return await self.loop.run_in_executor(self._pool, self._check, self.sign_url,
                                               signature, query)

    def _check(self, url: str, authorization: str, query: dict[str, str] | None) -> int:
        self.checks += 1
        try:
            session = getattr(self._local, "session", None)
            if session is None:
                session = self._local.session = requests.Session()
            reply = session.get(url, params=query, headers={"Authorization": authorization},
                                timeout=self.timeout)
            body = reply.json()
        except requests.Timeout:
            raise CoreError(5, "service timeout") from None
        except (requests.RequestException, ValueError):
            raise CoreError(2, "internal error") from None
        if not isinstance(body, dict):
            raise CoreError(2, "internal error")
        if "uid" in body and "code" not in body:  # CONNMIX's auth reply
            user = body["uid"]
        else:
            if body.get("code") != 0:
                message = body.get("message")
                raise CoreError(11, message if isinstance(message, str) and message
                                else "auth fail")
            data = body.get("data")
            user = data.get("user_id") if isinstance(data, dict) else None
        if isinstance(user, bool) or not isinstance(user, int) or not 0 < user <= USER_MAX:
            raise CoreError(2, "internal error")
        return user

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
