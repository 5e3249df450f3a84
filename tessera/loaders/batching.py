"""When to dispatch: after the event loop has gone quiet, not after one tick.

aiodataloader dispatches a loader's queue one loop tick after its first load.
graphql-core reaches sibling fields through nested `gather`s, so the loads of
one query level arrive over several ticks (`Order.products` one tick, each
`items.product` a tick or two later), and one-tick batching would make two or
three calls where one will do. A request's loaders share one `Batcher`, which
dispatches every waiting loader together once `QUIET_TICKS` loop iterations
have passed with no new key enqueued anywhere. The wait is a few microseconds
of loop iterations, never a timer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiodataloader import dispatch_queue


class Batcher:
    QUIET_TICKS = 3

    def __init__(self) -> None:
        self._waiting: list[Any] = []
        self._enqueued = 0
        self._seen = 0
        self._quiet = 0
        self._scheduled = False

    def enqueued(self, loader: Any, *, first: bool, count: int = 1) -> None:
        """Called for every new key (or `count` new keys at once); `first` when the
        loader's queue was empty."""
        self._enqueued += count
        if first:
            self._waiting.append(loader)
        if not self._scheduled:
            self._scheduled = True
            self._quiet = 0
            self._seen = self._enqueued
            asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        if self._enqueued != self._seen:
            self._seen = self._enqueued
            self._quiet = 0
        else:
            self._quiet += 1
        if self._quiet < self.QUIET_TICKS:
            asyncio.get_running_loop().call_soon(self._tick)
            return
        self._scheduled = False
        waiting, self._waiting = self._waiting, []
        for loader in waiting:
            dispatch_queue(loader)
