"""Fault injection: a transport that delays or fails calls before the network.

    transport = FaultTransport(real_transport, FaultSettings(latency_ms=200, error_rate=0.1))

Off by default; a backend's `fault = {latency_ms, error_rate, status}` turns
it on, for demos and drills (`tessera serve --config examples/chaos.toml`).
It sits under the client, so an injected fault meets the same timeouts,
retries, breaker and bulkhead as a real one.
"""

from __future__ import annotations

import asyncio
import random

import httpx

from ..config import FaultSettings


class FaultTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, fault: FaultSettings,
                 rng: random.Random | None = None) -> None:
        self.inner = inner
        self.fault = fault
        self._rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.fault.latency_ms:
            await asyncio.sleep(self.fault.latency_ms / 1000)
        if self.fault.error_rate and self._rng.random() < self.fault.error_rate:
            return httpx.Response(self.fault.status, json={"error": "injected fault"},
                                  request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
