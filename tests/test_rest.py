"""The REST edge (tessera/web/rest.py): wrong-shaped answers, the request deadline,
and one JSON error shape for every path and method nothing serves."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import Recorder, gateway
from faults import FaultServer

pytestmark = pytest.mark.anyio


def orders_answer(body: object) -> Recorder:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "orders.demo":
            return httpx.Response(200, json=body)
        return httpx.Response(200, json=[])
    return Recorder(httpx.MockTransport(handler))


@pytest.mark.parametrize("body", [["unexpected", "shape"], "a string", 42,
                                  {"id": "42", "user_id": "7", "items": "not a list"}])
async def test_a_wrong_shaped_answer_is_a_bad_response_of_that_backend(body: object) -> None:
    recorder = orders_answer(body)
    async with gateway(transport=recorder) as client:
        partial = await client.get("/api/orders/42/details")
        fast = await client.get("/api/orders/42/details?failure_strategy=fail_fast")
    assert partial.status_code == 200
    assert partial.json() == {"order": None, "user": None, "products": None}
    assert partial.headers["x-tessera-partial"].split(",")[0] == "orders"
    assert fast.status_code == 502
    assert fast.json() == {"error": "Service unavailable: orders", "service": "orders",
                           "code": "BACKEND_BAD_RESPONSE"}
    assert recorder.counts() == {"orders": 2}  # nothing read from a wrong shape


async def test_a_route_is_bounded_by_the_request_deadline() -> None:
    """The route's own timeout and the backend's are a minute; the server's request
    deadline (300 ms) is what ends it."""
    async with FaultServer("hang") as users:
        settings = {"server": {"request_timeout_ms": 300},
                    "backends": {"users": {"url": users.url, "timeout_ms": 60_000,
                                           "retries": 0}},
                    "aggregations": {"/api/users/*": {
                        "backend_requests": [{"service": "users",
                                              "path_template": "/users/{id}"}],
                        "response_template": {"user": "$.users"},
                        "timeout_ms": 60_000}}}
        async with gateway(settings) as client:
            async with asyncio.timeout(20):
                response = await client.get("/api/users/7")
    assert response.status_code == 200
    assert response.json() == {"user": None}
    assert response.headers["x-tessera-partial"] == "users"


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/nowhere", 404, "NOT_FOUND"),
    ("GET", "/api/orders/42", 404, "NOT_FOUND"),
    ("POST", "/api/orders/42/details", 405, "METHOD_NOT_ALLOWED"),
    ("DELETE", "/api/dashboard/7", 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/healthz", 405, "METHOD_NOT_ALLOWED"),
    ("PUT", "/readyz", 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/api/orders/42/details?failure_strategy=maybe", 400, "BAD_REQUEST"),
    ("GET", "/api/orders/nope/details", 404, "NOT_FOUND"),
])
async def test_every_error_has_one_json_shape(method: str, path: str, status: int,
                                              code: str) -> None:
    async with gateway() as client:
        response = await client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "code"} and body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
