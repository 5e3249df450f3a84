"""The entity cache: answers kept per backend and key, for a TTL, bounded.

    cache = EntityCache(settings.cache, clock=time.monotonic)
    cache.put(("users", "7"), record, ttl_s=30, caller="Bearer x")   # or caller=None: shared
    hit = cache.get(("users", "7"), caller="Bearer x")    # Hit(value, ttl_left_s, shared)

Off unless a backend sets `cache.ttl_s`. An answer that depends on who asks is
kept under the caller's identity (the forwarded Authorization), and only that
caller gets it back; an answer the backend marks `public`, or any answer of a
backend declared `shared = true`, is kept once for everyone. The backend's own
`Cache-Control` is honoured (`parse_cache_control`): `no-store` and `no-cache`
keep nothing, `private` keeps it per caller, `s-maxage`/`max-age` set the TTL
(never longer than the config's). Bounded in entries and in bytes (the JSON
size of what is kept), least recently used first.

It is also the stale-if-error store (`stale_s`, the backend's `stale_if_error_s`):
an answer stays recallable for that long after it was fetched, fresh or not,
for the same caller, and `recall` serves it when the backend fails (never to
hide a 4xx). One store, one bound.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..config import CacheSettings
from ..lru import LRU
from .stale import Stale, backend_failed

if TYPE_CHECKING:
    from ..backends.scope import Tab
    from .shared import SharedState


@dataclass(frozen=True)
class Policy:
    """What one backend answer's Cache-Control allows."""

    store: bool = True
    ttl_s: float | None = None  # from max-age / s-maxage
    private: bool = False
    public: bool = False


def parse_cache_control(header: str | None) -> Policy:
    """A Cache-Control header as a Policy.

    >>> parse_cache_control("public, max-age=30")
    Policy(store=True, ttl_s=30.0, private=False, public=True)
    >>> parse_cache_control("no-store").store
    False
    """
    if not header:
        return Policy()
    directives: dict[str, str | None] = {}
    for part in header.lower().split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip()] = value.strip().strip('"') or None
    if "no-store" in directives or "no-cache" in directives:
        return Policy(store=False)
    ttl = None
    for name in ("s-maxage", "max-age"):  # a shared cache prefers s-maxage
        raw = directives.get(name)
        if raw is not None and raw.isdigit():
            ttl = float(raw)
            break
    return Policy(True, ttl, "private" in directives, "public" in directives)


@dataclass(frozen=True)
class Hit:
    value: Any
    ttl_left_s: float
    shared: bool
    size: int = 0  # its JSON's bytes (what a request using it is charged: AnswerBudget)


@dataclass(frozen=True)
class _Entry:
    value: Any
    stored: float
    fresh_until: float
    stale_until: float
    size: int


class EntityCache:
    """One backend's answers: in process, and in Redis as a second level when
    `second` (the app's SharedState) is configured."""

    def __init__(self, settings: CacheSettings, *, stale_s: float = 0, service: str = "",
                 clock: Callable[[], float] = time.monotonic,
                 second: SharedState | None = None) -> None:
        self.settings = settings
        self.stale_s = stale_s
        self.service = service
        self._clock = clock
        self._second = second if second is not None and second.configured else None
        self._entries: LRU[Hashable, _Entry] = LRU(settings.max_entries,
                                                   weigh=lambda e: e.size,
                                                   max_weight=settings.max_bytes)

    @property
    def enabled(self) -> bool:
        return self.settings.ttl_s > 0

    def _find(self, key: Hashable, caller: str | None) -> tuple[_Entry, bool] | None:
        """This caller's entry (an anonymous caller is "" here, never everyone's),
        else the shared one; expired entries are dropped on the way."""
        now = self._clock()
        for who, shared in ((caller or "", False), (None, True)):
            entry = self._entries.get((key, who))
            if entry is None:
                continue
            if max(entry.fresh_until, entry.stale_until) <= now:
                self._entries.pop((key, who))
                continue
            return entry, shared
        return None

    def get(self, key: Hashable, caller: str | None) -> Hit | None:
        found = self._find(key, caller)
        if found is None or found[0].fresh_until <= self._clock():
            return None
        entry, shared = found
        return Hit(entry.value, entry.fresh_until - self._clock(), shared, entry.size)

    def remember(self, namespace: str, values: Any, caller: str | None = None) -> None:
        """Keep answers for stale-if-error (None means the backend had nothing)."""
        if self.stale_s <= 0:
            return
        now = self._clock()
        for key, value in values.items():
            if value is not None and self.get((namespace, key), caller) is None:
                self._entries.put(((namespace, key), caller or ""),
                                  _Entry(value, now, now, now + self.stale_s,
                                         len(orjson.dumps(value))))

    def recall(self, namespace: str, key: Hashable, error: Exception,
               caller: str | None = None) -> Stale | Exception:
        """The kept answer for `key` if `error` is the backend failing, else `error`."""
        if self.stale_s <= 0 or not backend_failed(error):
            return error
        found = self._find((namespace, key), caller)
        if found is None:
            return error
        entry = found[0]
        if entry.stored + self.stale_s <= self._clock():
            return error
        return Stale(entry.value, self.service, round(self._clock() - entry.stored, 3))

    def shared(self, policy: Policy) -> bool:
        """Is an answer with this policy the same for every caller?"""
        return (self.settings.shared or policy.public) and not policy.private

    def put(self, key: Hashable, value: Any, policy: Policy, caller: str | None) -> float | None:
        """Keep `value`; the TTL it was kept for, or None when it may not be kept."""
        if not self.enabled or not policy.store:
            return None
        ttl = self.settings.ttl_s if policy.ttl_s is None else min(policy.ttl_s,
                                                                    self.settings.ttl_s)
        if ttl <= 0:
            return None
        now = self._clock()
        self._entries.put((key, None if self.shared(policy) else caller or ""),
                          _Entry(value, now, now + ttl, now + max(ttl, self.stale_s),
                                 len(orjson.dumps(value))))
        return ttl

    async def lookup(self, namespace: str, keys: list[Hashable], caller: str | None,
                     report: Any, tab: Tab | None = None
                     ) -> tuple[dict[Hashable, Any], list[Hashable]]:
        """The answers kept for these keys (here, then in Redis), and the keys still
        to fetch; each answer found is reported as a cacheable part, and charged to
        the request's `tab` (served from here, it weighs as a fetched one would)."""
        found: dict[Hashable, Any] = {}
        missing: list[Hashable] = []
        for key in keys:
            hit = self.get((namespace, key), caller)
            if hit is None:
                missing.append(key)
            else:
                if tab is not None:
                    tab.take(hit.size, self.service)
                found[key] = hit.value
                report.cache_part(hit.ttl_left_s, private=not hit.shared and caller is not None)
        if missing and self._second is not None:
            missing = await self._from_second(namespace, missing, caller, found, report, tab)
        return found, missing

    def keep(self, namespace: str, key: Hashable, value: Any, cache_control: str | None,
             caller: str | None, report: Any) -> Awaitable[None] | None:
        """Keep a fetched answer as its Cache-Control allows, and report it; the Redis
        write to await, when there is one."""
        if value is None:
            report.cache_part(None)
            return None
        policy = parse_cache_control(cache_control)
        ttl = self.put((namespace, key), value, policy, caller)
        shared = self.shared(policy)
        report.cache_part(ttl, private=policy.private or (not shared and caller is not None))
        if ttl is None or self._second is None:
            return None
        envelope = orjson.dumps({"v": value, "exp": time.time() + ttl})
        return self._second.set(self._second_key(namespace, key, None if shared else
                                                 caller or ""), envelope, ttl)

    async def _from_second(self, namespace: str, keys: list[Hashable], caller: str | None,
                           found: dict[Hashable, Any], report: Any,
                           tab: Tab | None = None) -> list[Hashable]:
        """Keys answered by Redis (this caller's entry, else the shared one); the rest."""
        assert self._second is not None
        names = [name for key in keys for name in (
            self._second_key(namespace, key, caller or ""),
            self._second_key(namespace, key, None))]
        values = await self._second.get_many(names)
        still: list[Hashable] = []
        for index, key in enumerate(keys):
            mine, everyone = values[2 * index], values[2 * index + 1]
            raw = mine or everyone
            try:
                envelope = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                envelope = None
            left = envelope["exp"] - time.time() if isinstance(envelope, dict) else 0
            if not isinstance(envelope, dict) or left <= 0:
                still.append(key)
                continue
            if tab is not None:
                tab.take(len(raw or b""), self.service)
            found[key] = envelope.get("v")
            report.cache_part(left, private=mine is not None and caller is not None)
        return still

    def _second_key(self, namespace: str, key: Hashable, caller: str | None) -> str:
        """An answer's Redis key: per caller (a hash of the Authorization, never the
        token itself), or `*` when shared by every caller."""
        who = "*" if caller is None else hashlib.sha256(caller.encode()).hexdigest()[:24]
        return f"cache:{self.service}:{namespace}:{who}:{_key_text(key)}"

    def purge(self, key: str | None = None) -> int:
        """Forget every entry here, or those of `key` (the first part of a key that
        carries arguments too); how many went."""
        def match(entry: Any) -> bool:
            loader_key = entry[0][1]
            return key is None or loader_key == key or (
                isinstance(loader_key, tuple) and loader_key[0] == key)
        return self._entries.remove_where(match)

    async def purge_second(self, key: str | None = None) -> int:
        """The same in Redis (0 without it)."""
        if self._second is None:
            return 0
        prefix = f"cache:{_glob(self.service)}:*:*:"
        if key is None:
            return await self._second.purge(prefix + "*")
        return (await self._second.purge(prefix + _glob(key))
                + await self._second.purge(prefix + _glob(key) + "|*"))

    def __len__(self) -> int:
        return len(self._entries)


def _key_text(key: Hashable) -> str:
    """A loader key in a Redis key: `7`, or `7|(20,)` for one with arguments."""
    return f"{key[0]}|{key[1]!r}" if isinstance(key, tuple) else str(key)


def _glob(text: str) -> str:
    """`text` matched literally in a Redis SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
