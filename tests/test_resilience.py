"""Resilience against backends that really fail on 127.0.0.1: the breaker, the
retry budget, the bulkhead, the request deadline, stale-if-error, the
completeness report and injected faults. Calls are counted at the server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conftest import FakeClock, gateway, gql
from faults import FaultServer, free_port

from tessera.backends import BackendClient, CallScope
from tessera.config import RetryBudgetSettings, parse_settings
from tessera.resilience import RetryBudget

pytestmark = pytest.mark.anyio

QUERY = '{ order(id: "42") { id status user { name } items { product { name } } } }'
AZIZ = b'{"id": "7", "name": "Aziz", "email": null, "address": null}'


def users(url: str, **policy: Any) -> dict[str, Any]:
    return {"users": {"url": url, **policy}}


def user_error(body: dict[str, Any]) -> dict[str, Any]:
    """The one error of a query whose user failed, after checking the rest is intact."""
    order = body["data"]["order"]
    assert order["status"] == "SHIPPED"
    assert [i["product"]["name"] for i in order["items"]] == ["Green Tea", "Teapot"]
    assert order["user"] is None
    [error] = body["errors"]
    assert error["path"] == ["order", "user"]
    return dict(error["extensions"])


async def circuit(client: Any, service: str = "users") -> str:
    state: str = (await client.get("/readyz")).json()["backends"][service]["circuit"]
    return state


async def test_open_circuit_sends_nothing_until_the_open_period_ends_then_probes(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tessera.breaker")
    breaker = {"window": 4, "minimum_calls": 4, "open_ms": 400, "half_open_probes": 2}
    clock = FakeClock()
    async with FaultServer("503") as server, \
            gateway({"backends": users(server.url, retries=0, circuit_breaker=breaker,
                                       coalesce=False)},  # distinct calls, for the probes
                    clock=clock) as c:
        for _ in range(4):
            assert user_error(await gql(c, QUERY))["status"] == 503
        assert server.calls == 4
        assert await circuit(c) == "open"
        for _ in range(10):
            ext = user_error(await gql(c, QUERY))
            assert ext == {"code": "BACKEND_UNAVAILABLE", "service": "users",
                           "reason": "circuit_open"}
        assert server.calls == 4  # no call reached the dead backend while open
        clock.advance(0.399)
        assert await circuit(c) == "open"  # not one millisecond early
        clock.advance(0.002)
        assert await circuit(c) == "half_open"
        await asyncio.gather(*(gql(c, QUERY) for _ in range(6)))
        assert server.calls == 6  # only the two probes; they failed, so open again
        assert await circuit(c) == "open"
        server.mode, server.body = "json", AZIZ
        clock.advance(0.401)
        for _ in range(2):
            body = await gql(c, QUERY)
        assert body["data"]["order"]["user"] == {"name": "Aziz"}
        assert "errors" not in body
        assert await circuit(c) == "closed"  # two good probes close it
        assert server.calls == 8
    changes = [r.getMessage() for r in caplog.records if r.name == "tessera.breaker"]
    assert changes == ["circuit for backend users: closed -> open",
                       "circuit for backend users: open -> half_open",
                       "circuit for backend users: half_open -> open",
                       "circuit for backend users: open -> half_open",
                       "circuit for backend users: half_open -> closed"]


async def test_retries_stay_within_the_budget() -> None:
    policy = {"retries": 3, "retry_backoff_ms": 1, "circuit_breaker": {"enabled": False},
              "retry_budget": {"ratio": 0.2, "min_per_second": 0}}
    async with FaultServer("503") as server, gateway({"backends": users(server.url,
                                                                        **policy)}) as c:
        for _ in range(50):
            assert user_error(await gql(c, QUERY))["status"] == 503
    # Unbudgeted, 3 retries would be 200 calls; the budget allows 20 % of 50 more.
    assert 55 <= server.calls <= 60, server.calls


def test_budget_floor_and_window() -> None:
    now = [100.0]
    budget = RetryBudget(RetryBudgetSettings(ratio=0.5, min_per_second=0.2, window_s=5),
                         clock=lambda: now[0])
    assert budget.try_withdraw()  # the floor: 0.2 per second over 5 s = 1 retry
    assert not budget.try_withdraw()
    for _ in range(4):
        budget.deposit()
    assert budget.try_withdraw() and budget.try_withdraw()  # + 50 % of 4 calls
    assert not budget.try_withdraw()
    now[0] += 5  # the window has moved past every call and retry
    assert budget.try_withdraw()
    assert not budget.try_withdraw()


async def test_flapping_backend_never_breaks_the_gateway() -> None:
    async with FaultServer("flap", AZIZ) as server, \
            gateway({"backends": users(server.url, retries=0)}) as c:
        seen = set()
        for _ in range(30):
            body = await gql(c, QUERY)
            if body["data"]["order"]["user"] is not None:
                seen.add("ok")
                continue
            ext = user_error(body)
            seen.add(ext.get("reason") or str(ext["status"]))
        products = await gql(c, '{ product(id: "1") { name } }')
    assert seen == {"ok", "503", "circuit_open"}  # half the calls fail: the circuit opens
    assert server.calls < 30
    assert products == {"data": {"product": {"name": "Widget"}}}


async def test_bulkhead_caps_concurrent_calls_and_refuses_the_excess() -> None:
    policy = {"bulkhead": {"max_concurrent": 2, "max_waiting": 1}, "timeout_ms": 3000,
              "coalesce": False}  # six distinct calls, as six different callers would make
    async with FaultServer("slow", AZIZ, delay=0.3) as server, \
            gateway({"backends": users(server.url, **policy)}) as c:
        many = asyncio.gather(*(gql(c, QUERY) for _ in range(6)))
        await asyncio.sleep(0.1)
        other = await gql(c, '{ product(id: "1") { name } }')
        assert not many.done()  # other backends are not held up by the slow one
        bodies = await many
    assert other == {"data": {"product": {"name": "Widget"}}}
    assert server.peak == 2
    served = [b for b in bodies if b["data"]["order"]["user"] is not None]
    refused = [user_error(b) for b in bodies if b["data"]["order"]["user"] is None]
    assert len(served) == 3  # two slots and one waiting
    assert refused == [{"code": "BACKEND_UNAVAILABLE", "service": "users",
                        "reason": "bulkhead_full"}] * 3


async def test_bulkhead_wait_ends_at_the_request_deadline() -> None:
    policy = parse_settings({"defaults": {"bulkhead": {"max_concurrent": 1}, "coalesce": False,
                                          "timeout_ms": 3000}}).policy("users")
    async with FaultServer("slow", AZIZ, delay=0.6) as server:
        client = BackendClient("users", server.url, policy)
        try:
            # A call with no deadline holds the only slot for 0.6 s.
            holder = asyncio.create_task(client.get_json("/users/7", scope=CallScope()))
            await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            started = loop.time()
            waiters = [client.get_json("/users/7", scope=CallScope(deadline=started + 0.4))
                       for _ in range(2)]
            outcomes = await asyncio.gather(*waiters, return_exceptions=True)
            elapsed = loop.time() - started
            held = await holder
        finally:
            await client.aclose()
    assert [(type(e).__name__, e.extensions) for e in outcomes] == [
        ("BackendUnavailable", {"code": "BACKEND_UNAVAILABLE", "service": "users",
                                "reason": "bulkhead_full"})] * 2
    assert elapsed >= 0.39  # they waited for a slot until their deadline, no longer
    assert held["name"] == "Aziz"
    assert server.calls == 1


async def test_cancelled_calls_give_their_bulkhead_slots_back() -> None:
    # a client that goes away cancels its calls: the one holding the only slot and
    # the one waiting for it must leave nothing taken behind
    policy = parse_settings({"defaults": {"bulkhead": {"max_concurrent": 1, "max_waiting": 1},
                                          "coalesce": False, "timeout_ms": 3000}}
                            ).policy("users")
    async with FaultServer("slow", AZIZ, delay=0.3) as server:
        client = BackendClient("users", server.url, policy)
        try:
            holder = asyncio.create_task(client.get_json("/users/7", scope=CallScope()))
            await asyncio.sleep(0.05)
            waiter = asyncio.create_task(client.get_json("/users/7", scope=CallScope()))
            await asyncio.sleep(0.05)
            assert client.bulkhead.in_flight == 1
            for task in (waiter, holder):
                task.cancel()
            outcomes = await asyncio.gather(holder, waiter, return_exceptions=True)
            assert [type(o).__name__ for o in outcomes] == ["CancelledError"] * 2
            assert client.bulkhead.in_flight == 0
            after = await asyncio.gather(*(client.get_json("/users/7", scope=CallScope())
                                           for _ in range(2)))
        finally:
            await client.aclose()
    assert [user["name"] for user in after] == ["Aziz", "Aziz"]  # one in the slot, one waiting


async def test_deadline_returns_what_is_ready_at_the_deadline() -> None:
    """The backend's own timeout is a minute and it never answers: only the 300 ms
    request deadline can end this (a hang would hit the 30 s guard)."""
    settings = {"server": {"request_timeout_ms": 300},
                "backends": users("", timeout_ms=60_000, retries=3)}
    async with FaultServer("hang") as server:
        settings["backends"]["users"]["url"] = server.url
        async with gateway(settings) as c:
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with asyncio.timeout(30):
                response = await c.post("/graphql", json={"query": QUERY})
            elapsed = loop.time() - started
            assert server.calls == 1  # no retry can fit in what is left
    assert response.status_code == 200
    assert user_error(response.json())["code"] == "BACKEND_TIMEOUT"
    assert elapsed >= 0.29  # not before the deadline


async def test_stale_if_error_serves_the_last_good_answer_and_says_so() -> None:
    clock = FakeClock()
    async with FaultServer("json", AZIZ) as server, \
            gateway({"backends": users(server.url, retries=0, stale_if_error_s=60)},
                    clock=clock) as c:
        fresh = await gql(c, QUERY)
        assert "extensions" not in fresh
        assert (await c.get("/api/orders/42/details")).json()["user"]["name"] == "Aziz"
        server.mode = "503"
        clock.advance(12.5)
        body = await gql(c, QUERY)
        route = await c.get("/api/orders/42/details")
    assert body["data"] == fresh["data"]
    assert "errors" not in body
    [stale] = body["extensions"]["tessera"]["stale"]
    assert stale["path"] == ["order", "user"] and stale["service"] == "users"
    assert stale["age_s"] == 12.5
    assert route.status_code == 200
    assert route.json()["user"]["name"] == "Aziz"
    assert route.headers["x-tessera-partial"] == "users;stale"


async def test_stale_if_error_is_off_by_default_expires_and_skips_4xx() -> None:
    async with FaultServer("json", AZIZ) as server:
        async with gateway({"backends": users(server.url, retries=0)}) as c:
            await gql(c, QUERY)
            server.mode = "503"
            assert user_error(await gql(c, QUERY))["status"] == 503  # off by default
        clock = FakeClock()
        async with gateway({"backends": users(server.url, retries=0,
                                              stale_if_error_s=0.2)}, clock=clock) as c:
            server.mode = "json"
            await gql(c, QUERY)
            server.mode = "503"
            clock.advance(0.3)
            assert user_error(await gql(c, QUERY))["status"] == 503  # kept 0.2 s only


async def test_completeness_report_names_each_backend_outcome() -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    async with gateway({"server": {"completeness_report": True},
                        "backends": users(refused)}) as c:
        body = await gql(c, QUERY)
    user_error(body)
    assert body["extensions"] == {"tessera": {"backends": {
        "orders": "ok", "users": "unavailable", "products": "ok"}}}


async def test_no_report_unless_asked() -> None:
    async with gateway() as c:
        body = await gql(c, QUERY)
    assert "extensions" not in body and "errors" not in body


async def test_injected_faults_meet_the_same_policy_as_real_ones() -> None:
    config = {"server": {"completeness_report": True}, "backends": {
        "users": {"fault": {"error_rate": 1.0, "status": 503}, "retries": 0},
        "inventory": {"fault": {"latency_ms": 300}, "timeout_ms": 100, "retries": 0}}}
    async with gateway(config) as c:
        body = await gql(c, '{ order(id: "42") { user { name } items { stock } } }')
    assert body["data"]["order"]["user"] is None
    assert body["extensions"]["tessera"]["backends"] == {
        "orders": "ok", "users": "unavailable", "inventory": "timeout"}
    codes = sorted((e["extensions"]["code"], e["extensions"].get("status"))
                   for e in body["errors"])
    assert codes == [("BACKEND_TIMEOUT", None), ("BACKEND_TIMEOUT", None),
                     ("BACKEND_UNAVAILABLE", 503)]


async def test_chaos_example_degrades_and_never_breaks() -> None:
    from pathlib import Path

    from tessera.config import load_settings

    chaos = load_settings(Path(__file__).resolve().parent.parent / "examples" / "chaos.toml")
    query = '{ order(id: "42") { user { name } items { stock product { reviews { id } } } } }'
    outcomes: set[str] = set()
    async with gateway(chaos) as c:
        for _ in range(12):
            response = await c.post("/graphql", json={"query": query})
            assert response.status_code == 200
            body = response.json()
            assert body["data"]["order"] is not None  # orders is healthy
            for error in body.get("errors", []):
                assert error["extensions"]["code"].startswith("BACKEND_")
            report = body["extensions"]["tessera"]["backends"]
            assert report["orders"] == "ok"
            assert report["reviews"] in {"timeout", "circuit_open"}  # it opens after 10
            outcomes.add(report["inventory"])
    assert "ok" in outcomes or "unavailable" in outcomes
