"""Request coalescing (backends/client.py): concurrent GETs of the same path for the
same caller share one backend call; counted at a real, slow backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import gateway, gql
from faults import FaultServer

pytestmark = pytest.mark.anyio

AZIZ = b'{"id": "7", "name": "Aziz", "email": null, "address": null}'
QUERY = '{ user(id: "7") { name } }'


def settings(url: str, **policy: Any) -> dict[str, Any]:
    return {"backends": {"users": {"url": url, "retries": 0, **policy}}}


async def test_concurrent_requests_for_the_same_key_share_one_call() -> None:
    async with FaultServer("slow", AZIZ, delay=0.3) as server, \
            gateway(settings(server.url)) as client:
        bodies = await asyncio.gather(*(gql(client, QUERY) for _ in range(8)))
    assert bodies == [{"data": {"user": {"name": "Aziz"}}}] * 8
    assert server.calls == 1


async def test_different_callers_are_not_coalesced() -> None:
    async with FaultServer("slow", AZIZ, delay=0.3) as server, \
            gateway(settings(server.url)) as client:
        bodies = await asyncio.gather(*(gql(client, QUERY,
                                            headers={"authorization": f"Bearer {n % 2}"})
                                        for n in range(8)))
    assert all(b == {"data": {"user": {"name": "Aziz"}}} for b in bodies)
    assert server.calls == 2  # one per caller identity


async def test_coalescing_can_be_turned_off() -> None:
    async with FaultServer("slow", AZIZ, delay=0.3) as server, \
            gateway(settings(server.url, coalesce=False)) as client:
        await asyncio.gather(*(gql(client, QUERY) for _ in range(4)))
    assert server.calls == 4


async def test_a_shared_failure_reaches_every_waiter_with_the_service() -> None:
    async with FaultServer("503") as server, gateway(settings(server.url)) as client:
        bodies = await asyncio.gather(*(gql(client, QUERY) for _ in range(5)))
    assert server.calls <= 5  # those that overlapped shared one call
    for body in bodies:
        assert body["data"] == {"user": None}
        assert body["errors"][0]["extensions"] == {"code": "BACKEND_UNAVAILABLE",
                                                   "service": "users", "status": 503}
