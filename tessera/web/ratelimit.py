"""Rate limiting: a token bucket per client, in process.

    limiter = RateLimiter(settings.rate_limit)
    wait_s = limiter.take(key, tokens=1)    # 0.0 when allowed, else seconds to wait

Each client has a bucket of `burst` tokens refilled at `requests_per_second`. A
client is a configured API key (`api_keys`, sent in `key_header`), else its peer
address: a key the config does not list is ignored, so sending a fresh random
key per request buys no fresh bucket. Buckets are kept for the `max_clients`
most recently seen clients; a forgotten one starts full again, which errs on
the side of serving. API keys are kept only as hashes.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from ..config import RateLimitSettings
from ..errors import RequestError
from ..lru import LRU


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._rate = settings.requests_per_second
        self._burst = float(settings.burst)
        self._clock = clock
        self._buckets: LRU[str, tuple[float, float]] = LRU(settings.max_clients)  # tokens, at
        self._keys = frozenset(_digest(key) for key in settings.api_keys)

    def take(self, key: str, tokens: int = 1) -> float:
        """Take `tokens` from `key`'s bucket: 0.0 if there were enough, else the
        seconds until there will be (nothing is taken then)."""
        now = self._clock()
        need = min(float(tokens), self._burst)  # a batch larger than the burst needs it full
        level, at = self._buckets.get(key) or (self._burst, now)
        level = min(self._burst, level + (now - at) * self._rate)
        if level >= need:
            self._buckets.put(key, (level - need, now))
            return 0.0
        self._buckets.put(key, (level, now))
        return (need - level) / self._rate

    def client_key(self, request: Request) -> str:
        given = request.headers.get(self.settings.key_header)
        if given and self._keys:
            digest = _digest(given)
            if digest in self._keys:
                return "key:" + digest
        return "peer:" + (request.client.host if request.client else "unknown")

    async def acheck(self, request: Request, tokens: int = 1, shared: Any = None) -> None:
        """`check`, with the bucket in Redis when `[redis]` is configured (shared by
        every replica, taken atomically); the local bucket when Redis cannot say."""
        if shared is None or not shared.configured:
            return self.check(request, tokens)
        need = min(float(tokens), self._burst)
        taken = await shared.take_token(self.client_key(request), self._rate, self._burst,
                                        need)
        if taken is None:
            return self.check(request, tokens)
        if not taken:
            self._refuse(need / self._rate)
        return None

    def check(self, request: Request, tokens: int = 1) -> None:
        """Raise the 429 RequestError when this request's client is over its rate."""
        wait = self.take(self.client_key(request), tokens)
        if wait > 0:
            self._refuse(wait)

    def _refuse(self, wait: float) -> None:
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RequestError("RATE_LIMITED", f"Too many requests: retry in {seconds} s.",
                               429, headers={"retry-after": str(seconds)},
                               extra={"retry_after_s": seconds})
