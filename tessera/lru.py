"""A bounded mapping that forgets the least recently used key.

    cache: LRU[str, str] = LRU(1000)
    cache.put("a", "x"); cache.get("a")      # "x", and "a" is now the most recent

The one bounded store every per-process table uses (APQ queries, per-document
limit analyses, rate-limit buckets, stale answers), so no table grows with
what clients send.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `max_entries`; with `weigh`, also at most `max_weight` in total (a
    value heavier than that alone is not kept)."""

    def __init__(self, max_entries: int, *, weigh: Callable[[V], int] | None = None,
                 max_weight: int = 0) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.weight = 0
        self._weigh = weigh
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, *, touch: bool = True) -> V | None:
        """The value (None when absent); `touch` makes the key the most recent."""
        value = self._entries.get(key)
        if value is not None and touch:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self.pop(key)
        if self._weigh is not None:
            weight = self._weigh(value)
            if weight > self.max_weight:
                return
            self.weight += weight
        self._entries[key] = value
        while len(self._entries) > self.max_entries or self.weight > self.max_weight > 0:
            self._drop(self._entries.popitem(last=False)[1])

    def pop(self, key: K) -> V | None:
        value = self._entries.pop(key, None)
        if value is not None:
            self._drop(value)
        return value

    def remove_where(self, match: Callable[[K], bool]) -> int:
        """Forget every key that `match`es; how many were forgotten."""
        doomed = [key for key in self._entries if match(key)]
        for key in doomed:
            self.pop(key)
        return len(doomed)

    def _drop(self, value: V) -> None:
        if self._weigh is not None:
            self.weight -= self._weigh(value)

    def __len__(self) -> int:
        return len(self._entries)
