"""Partial failure with backends that really fail on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from conftest import gateway, gql
from faults import FaultServer, free_port

pytestmark = pytest.mark.anyio

QUERY = '{ order(id: "42") { id status user { name } items { product { name } } } }'


def users_at(url: str, **policy: Any) -> dict[str, Any]:
    return {"backends": {"users": {"url": url, **policy}}}


def assert_no_leak(text: str, url: str) -> None:
    port = url.rsplit(":", 1)[1]
    for secret in ("127.0.0.1", f":{port}", "http://", "Traceback", "localhost", ".demo"):
        assert secret not in text


def assert_user_failed(body: dict[str, Any], code: str, status: int | None = None) -> None:
    order = body["data"]["order"]
    assert order["status"] == "SHIPPED"
    assert order["user"] is None
    assert [i["product"]["name"] for i in order["items"]] == ["Green Tea", "Teapot"]
    [error] = body["errors"]
    assert error["path"] == ["order", "user"]
    expected = {"code": code, "service": "users"}
    if status is not None:
        expected["status"] = status
    assert error["extensions"] == expected


async def test_connection_refused_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with gateway(users_at(url)) as client:
        response = await client.post("/graphql", json={"query": QUERY})
    assert response.status_code == 200
    assert_user_failed(response.json(), "BACKEND_UNAVAILABLE")
    assert_no_leak(response.text, url)


async def test_503_is_unavailable_with_status_and_retried_once() -> None:
    async with FaultServer("503") as server, gateway(users_at(server.url)) as client:
        response = await client.post("/graphql", json={"query": QUERY})
        assert server.calls == 2  # retries = 1 by default
    assert_user_failed(response.json(), "BACKEND_UNAVAILABLE", 503)
    assert_no_leak(response.text, server.url)


async def test_reset_connection_is_unavailable() -> None:
    async with FaultServer("reset") as server, gateway(users_at(server.url)) as client:
        response = await client.post("/graphql", json={"query": QUERY})
    assert_user_failed(response.json(), "BACKEND_UNAVAILABLE")
    assert_no_leak(response.text, server.url)


async def test_hanging_backend_times_out_at_its_timeout_and_is_retried_once() -> None:
    async with FaultServer("hang") as server, \
            gateway(users_at(server.url, timeout_ms=300)) as client:
        started = time.monotonic()
        async with asyncio.timeout(30):  # a hang fails here, clearly
            response = await client.post("/graphql", json={"query": QUERY})
        elapsed = time.monotonic() - started
        assert server.calls == 2  # retries = 1 by default, timeouts included
    assert_user_failed(response.json(), "BACKEND_TIMEOUT")
    assert elapsed >= 0.55  # two 300 ms attempts (minus the jittered backoff's zero)
    assert_no_leak(response.text, server.url)


async def test_body_that_is_not_json_is_a_bad_response() -> None:
    async with FaultServer("notjson") as server, gateway(users_at(server.url)) as client:
        response = await client.post("/graphql", json={"query": QUERY})
    assert_user_failed(response.json(), "BACKEND_BAD_RESPONSE")
    assert_no_leak(response.text, server.url)


@pytest.mark.parametrize("mode", ["huge", "stream"])
async def test_body_over_the_size_cap_is_refused(mode: str) -> None:
    async with FaultServer(mode) as server, \
            gateway(users_at(server.url, max_response_bytes=1000)) as client:
        response = await client.post("/graphql", json={"query": QUERY})
    assert_user_failed(response.json(), "BACKEND_BAD_RESPONSE")
    assert "1000 bytes" in response.json()["errors"][0]["message"]


async def test_wrong_shape_is_a_bad_response() -> None:
    async with FaultServer("json", b'{"id": "7"}') as server, \
            gateway(users_at(server.url)) as client:  # no name: not a user
        body = await gql(client, QUERY)
    assert_user_failed(body, "BACKEND_BAD_RESPONSE")


async def test_unexpected_4xx_is_a_bad_response_with_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "who are you"})

    async with gateway(transport=httpx.MockTransport(handler)) as client:
        body = await gql(client, '{ orders(ids: ["1", "2"]) { id } }')
    assert body["data"] == {"orders": [None, None]}
    assert [e["path"] for e in body["errors"]] == [["orders", 0], ["orders", 1]]
    assert body["errors"][0]["extensions"] == {"code": "BACKEND_BAD_RESPONSE",
                                               "service": "orders", "status": 401}


async def test_one_error_per_failed_field_and_the_rest_intact() -> None:
    async with FaultServer("503") as server, gateway(users_at(server.url)) as client:
        body = await gql(client, '{ orders(ids: ["42", "123"]) { id user { name } } '
                                 'product(id: "1") { name } }')
    assert body["data"]["product"] == {"name": "Widget"}
    assert [o["id"] for o in body["data"]["orders"]] == ["42", "123"]
    assert sorted(tuple(e["path"]) for e in body["errors"]) == [
        ("orders", 0, "user"), ("orders", 1, "user")]


async def test_unexpected_exception_is_masked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("boom at http://10.1.2.3:9000/secret")

    async with gateway(transport=httpx.MockTransport(handler)) as client:
        response = await client.post("/graphql", json={"query": '{ order(id: "42") { id } }'})
    body = response.json()
    assert body["data"] == {"order": None}
    assert body["errors"][0]["message"] == "Unexpected error."
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "10.1.2.3" not in response.text and "boom" not in response.text


async def test_gateway_keeps_serving_after_failures() -> None:
    async with FaultServer("reset") as server, gateway(users_at(server.url)) as client:
        for _ in range(3):
            await gql(client, QUERY)
        body = await gql(client, '{ product(id: "1") { name stock } }')
    assert body == {"data": {"product": {"name": "Widget", "stock": 42}}}


async def test_request_deadline_cuts_a_slower_backend_timeout() -> None:
    """The backend's own timeout is a minute: only the 300 ms deadline can end this
    (a hang would fail at the 30 s guard)."""
    settings = {"server": {"request_timeout_ms": 300},
                "backends": {"users": {"timeout_ms": 60_000}}}
    async with FaultServer("hang") as server:
        settings["backends"]["users"]["url"] = server.url  # type: ignore[index]
        async with gateway(settings) as client:
            async with asyncio.timeout(30):
                body = await gql(client, QUERY)
    assert_user_failed(body, "BACKEND_TIMEOUT")
