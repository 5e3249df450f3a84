"""A bulkhead per backend: at most `max_concurrent` calls in flight.

    bulkhead = Bulkhead("users", settings.bulkhead)
    await bulkhead.enter(wait_s=scope.remaining())
    try:
        ...one call...
    finally:
        bulkhead.leave()

A call beyond the cap waits for a slot, but never longer than `wait_s` (what
is left of the client request's deadline) and never behind more than
`max_waiting` others; past either, it fails at once with BACKEND_UNAVAILABLE
(reason "bulkhead_full"). So one slow backend holds at most its own slots and
its own short queue, never every task, connection or byte of the process.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..config import BulkheadSettings
from ..errors import BackendUnavailable


class Bulkhead:
    def __init__(self, service: str, settings: BulkheadSettings) -> None:
        self.service = service
        self.settings = settings
        self._max = settings.max_concurrent
        self._queue: deque[asyncio.Future[None]] = deque()  # calls waiting, oldest first
        self.in_flight = 0

    def _full(self, why: str) -> BackendUnavailable:
        return BackendUnavailable(self.service, f"is at its concurrency limit ({why})",
                                  reason="bulkhead_full")

    def try_enter(self) -> bool:
        """Take a free slot now, if there is one and nobody is waiting for one (the
        usual case: no coroutine, no future)."""
        if self.in_flight < self._max and not self._queue:
            self.in_flight += 1
            return True
        return False

    async def enter(self, wait_s: float) -> None:
        """Take a slot, waiting at most `wait_s` for one; `leave()` gives it back.
        Two calls rather than a context manager: this runs once per backend call."""
        if self.try_enter():
            return
        if len(self._queue) >= self.settings.max_waiting:
            raise self._full(f"{self.settings.max_waiting} calls already waiting")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            async with asyncio.timeout(max(0.0, wait_s)):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                self.leave()  # handed a slot just as it gave up: pass it on
            elif turn in self._queue:
                self._queue.remove(turn)
            if isinstance(exc, TimeoutError):
                raise self._full("no slot came free before the deadline") from None
            raise

    def leave(self) -> None:
        """Give a slot back: to the oldest waiting call, else free."""
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes on; in_flight is unchanged
                return
        self.in_flight -= 1
