"""A bounded mapping that forgets the least recently used key.

    cache: LRU[str, str] = LRU(1000)
    cache.put("a", "x"); cache.get("a")      # "x", and "a" is now the most recent

The one bounded store every per-process table uses (APQ queries, per-document
limit analyses, rate-limit buckets, stale answers), so no table grows with
what clients send.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, *, touch: bool = True) -> V | None:
        """The value (None when absent); `touch` makes the key the most recent."""
        value = self._entries.get(key)
        if value is not None and touch:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> V | None:
        return self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
