"""What replicas share, in Redis (`[redis] url`): APQ queries, rate-limit buckets
and the entity cache's second level. Optional, and never on the critical path.

    shared = SharedState(settings.redis)         # None-like when no url is set
    value = await shared.get("apq:<hash>")       # None when missing *or* Redis is down
    await shared.set("apq:<hash>", query, ttl_s=86400)
    allowed = await shared.take_token(key, rate, burst)   # None: use the local bucket

Every call is bounded by `timeout_ms`; a failure (refused, reset, slow, an error
reply) marks Redis down for `retry_after_s`, during which nothing is sent to it
and every caller falls back to what it would do without Redis (a local APQ store,
a per-process bucket, the in-process cache). Each change of state is logged once
and exported as `tessera_redis_up`; /readyz shows it without turning not-ready.
The client is the `redis` library's asyncio API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..config import RedisSettings
from ..observability import metrics

log = logging.getLogger("tessera.redis")

# A token bucket, atomically: KEYS[1] the bucket; ARGV rate/s, burst, tokens wanted,
# now (s), ttl (s). Returns 1 (taken) or 0 (not enough).
_TAKE = """
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or ARGV[2])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or ARGV[4])
local now = tonumber(ARGV[4])
level = math.min(tonumber(ARGV[2]), level + math.max(0, now - at) * tonumber(ARGV[1]))
local taken = 0
if level >= tonumber(ARGV[3]) then level = level - tonumber(ARGV[3]); taken = 1 end
redis.call('HSET', KEYS[1], 'level', level, 'at', now)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return taken
"""


class SharedState:
    def __init__(self, settings: RedisSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._down_until = 0.0
        self._up: bool | None = None  # unknown until the first call
        self._client: Any = None
        if settings.url:
            import redis.asyncio

            seconds = settings.timeout_ms / 1000
            self._client = redis.asyncio.Redis.from_url(
                settings.url, socket_timeout=seconds, socket_connect_timeout=seconds,
                retry_on_timeout=False)
            self._take = self._client.register_script(_TAKE)

    @property
    def configured(self) -> bool:
        return self._client is not None

    def status(self) -> dict[str, Any]:
        state = "off" if not self.configured else "unknown" if self._up is None else \
            "up" if self._up else "down"
        return {"state": state}

    def _usable(self) -> bool:
        return self._client is not None and self._clock() >= self._down_until

    def _mark(self, up: bool, problem: BaseException | None = None) -> None:
        if up != self._up:
            if up:
                log.warning("redis is up: shared APQ, rate limits and cache in use")
            else:
                log.warning("redis is down (%s): serving without it for %.0f s at a time",
                            type(problem).__name__ if problem else "?",
                            self.settings.retry_after_s)
            metrics.REDIS_UP.set(1 if up else 0)
        self._up = up
        if not up:
            self._down_until = self._clock() + self.settings.retry_after_s

    async def _run(self, call: Callable[[], Any]) -> Any:
        """`call()` within the timeout; None (and Redis marked down) on any failure."""
        if not self._usable():
            return None
        try:
            async with asyncio.timeout(self.settings.timeout_ms / 1000):
                result = await call()
        except Exception as exc:  # refused, reset, timeout, an error reply: all the same
            self._mark(False, exc)
            return None
        self._mark(True)
        return result

    def _key(self, key: str) -> str:
        return self.settings.prefix + key

    async def get(self, key: str) -> bytes | None:
        found: bytes | None = await self._run(lambda: self._client.get(self._key(key)))
        return found

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        found = await self._run(lambda: self._client.mget([self._key(k) for k in keys]))
        return list(found) if found is not None else [None] * len(keys)

    async def set(self, key: str, value: bytes | str, ttl_s: float) -> None:
        await self._run(lambda: self._client.set(self._key(key), value,
                                                 px=max(1, int(ttl_s * 1000))))

    async def take_token(self, key: str, rate: float, burst: float,
                         tokens: float) -> bool | None:
        """True/False from the shared bucket; None when Redis cannot say."""
        ttl = max(1, int(burst / rate) + 1)
        taken = await self._run(lambda: self._take(keys=[self._key("rate:" + key)],
                                                   args=[rate, burst, tokens, time.time(),
                                                         ttl]))
        return None if taken is None else bool(taken)

    async def purge(self, pattern: str) -> int:
        async def delete() -> int:
            count = 0
            async for key in self._client.scan_iter(match=self._key(pattern), count=500):
                count += await self._client.delete(key)
            return count
        purged: int | None = await self._run(delete)
        return purged or 0

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
