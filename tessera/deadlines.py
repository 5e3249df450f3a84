"""Many deadlines on one event-loop timer.

    deadlines = Deadlines(expire=lambda connection: connection.close(), slack=0.005)
    deadlines.set(connection, loop.time() + 10)   # (re)sets its deadline
    deadlines.clear(connection)                    # it finished in time
    deadlines.close()                              # stops the timer

A timer per deadline (asyncio.timeout, loop.call_later) makes and cancels a
uvloop timer each time: ~2.3 us, more than the rest of a backend call's
bookkeeping. Here setting and clearing a deadline is a dict write; one timer,
due `slack` after the earliest deadline set, calls `expire(item)` for each item
whose deadline has passed, then re-arms itself for the earliest one left. A
deadline is kept to within `slack` (late, never early). How the backend pool
keeps its calls' timeouts and the server its slow-client deadlines.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Deadlines(Generic[T]):
    def __init__(self, expire: Callable[[T], None], *, slack: float) -> None:
        self._expire = expire
        self._slack = slack
        self._due: dict[T, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the timer fires
        self._loop: asyncio.AbstractEventLoop | None = None

    def set(self, item: T, deadline: float) -> None:
        """`item` expires at `deadline` (event-loop time) unless cleared before."""
        self._due[item] = deadline
        if deadline + self._slack < self._at:
            self._arm(deadline)

    def clear(self, item: T) -> None:
        self._due.pop(item, None)

    def __len__(self) -> int:
        return len(self._due)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._at = deadline + self._slack
        self._timer = self._loop.call_at(self._at, self._sweep)

    def _sweep(self) -> None:
        assert self._loop is not None
        self._timer, self._at = None, math.inf
        now = self._loop.time()
        late = [item for item, deadline in self._due.items() if deadline <= now]
        try:
            for item in late:
                del self._due[item]
                self._expire(item)
        finally:  # even if an expire raised: the other deadlines still keep
            if self._due:
                self._arm(max(min(self._due.values()), now))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._at = None, math.inf
        self._due.clear()
