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

from ..config import BulkheadSettings
from ..errors import BackendUnavailable


class Bulkhead:
    def __init__(self, service: str, settings: BulkheadSettings) -> None:
        self.service = service
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._waiting = 0
        self.in_flight = 0

    def _full(self, why: str) -> BackendUnavailable:
        return BackendUnavailable(self.service, f"is at its concurrency limit ({why})",
                                  reason="bulkhead_full")

    async def enter(self, wait_s: float) -> None:
        """Take a slot (waiting at most `wait_s` for one); `leave()` gives it back.
        Two calls rather than a context manager: this runs once per backend call,
        and an async context manager made per call cost more than the rest of it."""
        if self._slots.locked():
            if self._waiting >= self.settings.max_waiting:
                raise self._full(f"{self.settings.max_waiting} calls already waiting")
            self._waiting += 1
            try:
                async with asyncio.timeout(max(0.0, wait_s)):
                    await self._slots.acquire()
            except TimeoutError:
                raise self._full("no slot came free before the deadline") from None
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        self._slots.release()
