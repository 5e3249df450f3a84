"""Stale-if-error: the last good answer per key, served when the backend fails.

    store = StaleStore(ttl_s=60)
    store.put(("users", "7"), record)
    hit = store.get(("users", "7"))       # Stale(value, age_s) or None

Off unless a backend sets `stale_if_error_s`. An answer is kept for that long
after it was fetched; at most `max_entries` keys per backend are kept (the
least recently stored go first), so memory is bounded. Values are the decoded
backend records, shared read-only between requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError
from ..lru import LRU

MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Stale:
    """A value served from the stale store instead of a failed backend."""

    value: Any
    service: str
    age_s: float


class StaleStore:
    def __init__(self, service: str, ttl_s: float, *, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: LRU[Hashable, tuple[float, Any]] = LRU(max_entries)

    def put(self, key: Hashable, value: Any) -> None:
        self._entries.put(key, (self._clock(), value))

    def get(self, key: Hashable) -> Stale | None:
        entry = self._entries.get(key, touch=False)  # kept by when it was answered
        if entry is None:
            return None
        age = self._clock() - entry[0]
        if age > self.ttl_s:
            self._entries.pop(key)
            return None
        return Stale(entry[1], self.service, round(age, 3))

    def remember(self, namespace: str, values: Mapping[Any, Any]) -> None:
        """Keep every value that is there (None means the backend had nothing)."""
        for key, value in values.items():
            if value is not None:
                self.put((namespace, key), value)

    def recall(self, namespace: str, key: Hashable, error: Exception) -> Stale | Exception:
        """The kept answer for `key` if `error` is the backend failing, else `error`."""
        if not backend_failed(error):
            return error
        return self.get((namespace, key)) or error


def backend_failed(error: BaseException) -> bool:
    """A failure of the backend (timeout, refused, 5xx, circuit open, bad body), as
    opposed to a 4xx, which says the request was wrong and stale data would hide it."""
    if not isinstance(error, BackendError):
        return False
    return error.status is None or error.status >= 500
