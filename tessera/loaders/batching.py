"""When to dispatch: once the request's own work has gone quiet, not after one tick.

aiodataloader dispatches a loader's queue one loop tick after its first load.
graphql-core reaches sibling fields through nested `gather`s, so the loads of
one query level arrive over several ticks (`Order.products` one tick, each
`items.product` a tick or two later, the items of an order awaited through
`asyncio.wait` one tick after those awaited directly), and one-tick batching
makes two or three calls where one will do. A request's loaders share one
`Batcher`, which dispatches every waiting loader together after a whole loop
iteration (`QUIET_TICKS`) in which that request neither enqueued a key nor
executed a selection set (`worked()`, called by the executor for each object
whose fields it executes: an object being executed may still be on its way to
a load).

Counting the request's own work, not loop iterations alone, is what keeps the
wait short under load: there every iteration also runs the other requests'
callbacks, so each iteration waited for is time (the rule before this one,
three iterations without a new key, made Q1's median at 32 connections and
20 ms backends 58 ms against 53). Over 605 generated queries of the shop and
the blog it makes exactly the calls the three-iteration rule made; one
iteration less (`QUIET_TICKS = 0`, the tick in the same iteration as the work)
splits nested batches. The wait is never a timer.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Batcher:
    QUIET_TICKS = 1

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._waiting: list[Any] = []
        self._events = 0  # keys enqueued + selection sets executed, ever
        self._seen = 0
        self._quiet = 0
        self._scheduled = False

    def worked(self) -> None:
        """The request's executor is executing an object's fields (they may load
        more): not quiet yet."""
        self._events += 1

    def enqueued(self, loader: Any, *, first: bool, count: int = 1) -> None:
        """Called for every new key (or `count` new keys at once); `first` when the
        loader's queue was empty."""
        self._events += count
        if first:
            self._waiting.append(loader)
        if not self._scheduled:
            self._scheduled = True
            self._quiet = 0
            self._seen = self._events
            self.loop.call_soon(self._tick)

    def _tick(self) -> None:
        if self._events != self._seen:
            self._seen = self._events
            self._quiet = 0
        else:
            self._quiet += 1
        if self._quiet < self.QUIET_TICKS:
            self.loop.call_soon(self._tick)
            return
        self._scheduled = False
        waiting, self._waiting = self._waiting, []
        for loader in waiting:
            loader.dispatch()
