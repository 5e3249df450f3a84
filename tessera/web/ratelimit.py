"""Rate limiting: a token bucket per client, in process.

    limiter = RateLimiter(settings.rate_limit)
    wait_s = limiter.take(key, tokens=1)    # 0.0 when allowed, else seconds to wait

Each client key (the API key header when sent, else the peer address) has a
bucket of `burst` tokens refilled at `requests_per_second`. Buckets are kept for
the `max_clients` most recently seen keys; a forgotten key starts full again,
which errs on the side of serving. API keys are kept only as hashes.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

from starlette.requests import Request

from ..config import RateLimitSettings
from ..errors import RequestError
from ..lru import LRU


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._rate = settings.requests_per_second
        self._burst = float(settings.burst)
        self._clock = clock
        self._buckets: LRU[str, tuple[float, float]] = LRU(settings.max_clients)  # tokens, at

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
        if given:
            return "key:" + hashlib.sha256(given.encode()).hexdigest()[:32]
        return "peer:" + (request.client.host if request.client else "unknown")

    def check(self, request: Request, tokens: int = 1) -> None:
        """Raise the 429 RequestError when this request's client is over its rate."""
        wait = self.take(self.client_key(request), tokens)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RequestError("RATE_LIMITED", f"Too many requests: retry in {seconds} s.",
                               429, headers={"retry-after": str(seconds)},
                               extra={"retry_after_s": seconds})
