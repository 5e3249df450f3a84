"""A bulkhead per backend: at most `max_concurrent` calls in flight.

    bulkhead = Bulkhead("users", settings.bulkhead)
    async with bulkhead.slot(wait_s=scope.remaining()):
        ...one call...

A call beyond the cap waits for a slot, but never longer than `wait_s` (what
is left of the client request's deadline) and never behind more than
`max_waiting` others; past either, it fails at once with BACKEND_UNAVAILABLE
(reason "bulkhead_full"). So one slow backend holds at most its own slots and
its own short queue, never every task, connection or byte of the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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

    @asynccontextmanager
    async def slot(self, wait_s: float) -> AsyncIterator[None]:
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
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()
