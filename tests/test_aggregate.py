"""REST aggregation routes (SPEC section 3) against the demo services and real
failing servers; ordering and overlap proven from the calls' timestamps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from conftest import Recorder, gateway
from faults import FaultServer

from tessera.aggregate.plan import build_plan
from tessera.compose.graph import routes_for
from tessera.config import Aggregation, parse_settings
from tessera.demo import build_demo_app
from tessera.errors import ConfigError
from tessera.shop.graph import graph as shop

SHOP_ROUTES = routes_for(parse_settings({}), shop)

pytestmark = pytest.mark.anyio


async def test_order_details_route() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        response = await client.get("/api/orders/123/details")
    assert response.status_code == 200
    body = response.json()
    assert body["order"]["id"] == "123" and body["order"]["user_id"] == "456"
    assert body["user"]["name"] == "Alice"
    assert [p["id"] for p in body["products"]] == ["1", "2", "3"]
    assert body["products"][0]["name"] == "Widget"
    assert "x-tessera-partial" not in response.headers
    assert recorder.calls() == ["/orders/123", "/users/456", "/products?ids=1,2,3"]


async def test_dashboard_and_operation_routes() -> None:
    async with gateway() as client:
        dash = (await client.get("/api/dashboard/7")).json()
        page = (await client.get("/api/orders/42/page")).json()
    assert dash["user"]["name"] == "Aziz" and len(dash["orders"]) == 10
    assert {"id": "r2", "product_id": "A1", "user_id": "7", "rating": 4,
            "body": "Fresh and fragrant."} in dash["reviews"]
    order = page["data"]["order"]
    assert order["user"]["name"] == "Aziz" and order["items"][0]["stock"] == 120
    assert "errors" not in page


async def test_root_404_is_404() -> None:
    async with gateway() as client:
        response = await client.get("/api/orders/does-not-exist/details")
    assert response.status_code == 404
    assert response.json() == {"error": "not found", "code": "NOT_FOUND"}


def with_users(url: str, **route: Any) -> dict[str, Any]:
    details = {
        "backend_requests": [
            {"service": "orders", "path_template": "/orders/{order_id}"},
            {"service": "users", "path_template": "/users/{user_id}", "source": "orders.user_id"},
            {"service": "products", "path_template": "/products",
             "source": "orders.items.*.product_id"}],
        "response_template": {"order": "$.orders", "user": "$.users",
                              "products": "$.products"}, **route}
    return {"backends": {"users": {"url": url}},
            "aggregations": {"/api/orders/*/details": details}}


@pytest.mark.parametrize(("strategy", "status"), [("partial", 200), ("ignore", 200),
                                                  ("fail_fast", 502)])
async def test_strategies_with_a_503_backend(strategy: str, status: int) -> None:
    async with FaultServer("503") as server, gateway(with_users(server.url)) as client:
        response = await client.get(f"/api/orders/123/details?failure_strategy={strategy}")
    assert response.status_code == status
    assert response.headers["x-tessera-partial"] == "users"
    body = response.json()
    if strategy == "partial":
        assert body["user"] is None and body["products"][0]["name"] == "Widget"
    elif strategy == "ignore":
        assert "user" not in body and body["order"]["id"] == "123"
    else:
        assert body == {"error": "Service unavailable: users", "service": "users",
                        "code": "BACKEND_UNAVAILABLE"}
    assert server.url.split(":")[-1] not in response.text


async def test_fail_fast_answers_at_the_first_failure_and_cancels_the_rest() -> None:
    route = {"backend_requests": [
        {"service": "users", "path_template": "/users/{id}"},
        {"service": "orders", "path_template": "/orders/{id}"}],
        "response_template": {"u": "$.users", "o": "$.orders"},
        "failure_strategy": "fail_fast", "timeout_ms": 5000}
    async with FaultServer("hang") as slow, FaultServer("503") as down:
        settings = {"backends": {"orders": {"url": slow.url, "timeout_ms": 4000},
                                 "users": {"url": down.url, "retries": 0}},
                    "aggregations": {"/api/x/*": route}}
        async with gateway(settings) as client:
            started = time.monotonic()
            response = await client.get("/api/x/7")
            elapsed = time.monotonic() - started
    assert response.status_code == 502 and response.json()["service"] == "users"
    assert elapsed < 2.0, elapsed  # did not wait for the hanging orders call


async def test_route_timeout_is_504_under_fail_fast_and_null_under_partial() -> None:
    async with FaultServer("hang") as server:
        settings = with_users(server.url, timeout_ms=300)
        settings["backends"]["users"]["timeout_ms"] = 5000
        async with gateway(settings) as client:
            started = time.monotonic()
            partial = await client.get("/api/orders/123/details")
            elapsed = time.monotonic() - started
            fast = await client.get("/api/orders/123/details?failure_strategy=fail_fast")
    assert elapsed < 2.0, elapsed
    assert partial.status_code == 200 and partial.json()["user"] is None
    assert partial.headers["x-tessera-partial"] == "users"
    assert fast.status_code == 504 and fast.json()["code"] == "BACKEND_TIMEOUT"


async def test_a_failed_source_fails_its_dependents() -> None:
    async with FaultServer("notjson") as server:
        settings = with_users("http://127.0.0.1:9")
        settings["backends"] = {"orders": {"url": server.url}}
        async with gateway(settings) as client:
            response = await client.get("/api/orders/123/details")
    assert response.status_code == 200
    assert response.json() == {"order": None, "user": None, "products": None}
    assert response.headers["x-tessera-partial"] == "orders,users,products"


async def test_fallback_value_is_used_and_reported() -> None:
    async with FaultServer("503") as server:
        settings = with_users(server.url)
        requests = settings["aggregations"]["/api/orders/*/details"]["backend_requests"]
        requests[1]["fallback"] = {"name": "unknown user"}
        async with gateway(settings) as client:
            response = await client.get("/api/orders/123/details?failure_strategy=fail_fast")
    assert response.status_code == 200
    assert response.json()["user"] == {"name": "unknown user"}
    assert response.headers["x-tessera-partial"] == "users;fallback"


async def test_list_source_is_deduplicated_and_batched() -> None:
    recorder = Recorder()
    route = {"backend_requests": [
        {"service": "orders", "path_template": "/orders?user_id={uid}&limit=20"},
        {"service": "products", "path_template": "/products",
         "source": "orders.*.items.*.product_id"}],
        "response_template": {"names": "$.products.*.name", "meta": {"n": "$.orders.*.id"}}}
    settings = {"defaults": {"max_batch_size": 10}, "aggregations": {"/u/*": route}}
    async with gateway(settings, transport=recorder) as client:
        body = (await client.get("/u/7")).json()
    assert len(body["meta"]["n"]) == 20
    product_calls = recorder.calls("products")
    ids = [i for call in product_calls for i in call.split("=")[1].split(",")]
    assert len(ids) == len(set(ids)) == len(body["names"])
    assert all(len(call.split("=")[1].split(",")) <= 10 for call in product_calls)
    assert len(product_calls) == -(-len(ids) // 10)


async def test_null_source_skips_the_request_without_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "9", "user_id": None, "items": []})

    recorder = Recorder(httpx.MockTransport(handler))
    async with gateway(transport=recorder) as client:
        response = await client.get("/api/orders/9/details")
    assert response.json() == {"order": {"id": "9", "user_id": None, "items": []},
                               "user": None, "products": []}
    assert "x-tessera-partial" not in response.headers
    assert recorder.calls() == ["/orders/9"]


async def test_requests_start_after_their_source_and_overlap_otherwise() -> None:
    """Timestamps of the backend calls, with 100 ms of latency on every service."""
    starts: dict[str, float] = {}

    class Stamping(httpx.AsyncBaseTransport):
        inner = httpx.ASGITransport(app=build_demo_app(latency_ms=100))

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            starts[request.url.host.removesuffix(".demo")] = time.monotonic()
            return await self.inner.handle_async_request(request)

    async with gateway(transport=Stamping()) as client:
        t0 = time.monotonic()
        await client.get("/api/orders/123/details")
        details = time.monotonic() - t0
        starts_details = dict(starts)
        starts.clear()
        t0 = time.monotonic()
        await client.get("/api/dashboard/7")
        dashboard = time.monotonic() - t0
    # users and products read from orders: both start after it answered, together
    assert starts_details["users"] - starts_details["orders"] >= 0.09
    assert abs(starts_details["users"] - starts_details["products"]) < 0.05
    # the dashboard's three requests are independent: they start together
    assert max(starts.values()) - min(starts.values()) < 0.05
    assert details < 0.35 and dashboard < 0.25  # 2 hops and 1 hop of 100 ms, not 3


@pytest.mark.parametrize(("route", "key", "words"), [
    ({"backend_requests": [{"service": "payments", "path_template": "/p"}]},
     "backends.payments", "route /api/r/* calls backend 'payments', which has no url"),
    ({"backend_requests": [{"service": "users", "path_template": "/u/{id}",
                            "source": "nobody.id"}]}, "source", "not a request"),
    ({"backend_requests": [
        {"service": "users", "path_template": "/u/{a}", "source": "orders.x"},
        {"service": "orders", "path_template": "/o/{b}", "source": "users.y"}]},
     "backend_requests", "cycle"),
    ({"backend_requests": [{"service": "users", "path_template": "/u/{a}/{b}"}]},
     "path_template", "no wildcard or source"),
    ({"backend_requests": [{"service": "users", "path_template": "/u/{a}"}],
      "response_template": {"x": "$.nobody"}}, "response_template.x", "names no request"),
    ({"operation": "{ nope }"}, "operation", "Cannot query field"),
])
def test_bad_routes_stop_start_up(route: dict[str, Any], key: str, words: str) -> None:
    from tessera.gateway import Gateway

    with pytest.raises(ConfigError) as caught:
        Gateway.build(parse_settings({"aggregations": {"/api/r/*": route}}))
    assert key in caught.value.key and words in str(caught.value)
    assert "/api/r/*" in str(caught.value)


def test_plans_are_pure_data() -> None:
    plan = build_plan("/api/orders/*/details", Aggregation.model_validate(
        SHOP_ROUTES["/api/orders/*/details"].model_dump(
            exclude_unset=True)))
    assert plan.root == "orders" and plan.wildcard_names == ("order_id",)
    assert plan.steps["products"].source is not None
    assert plan.steps["products"].source.is_list
    assert plan.dependents("orders") == ["users", "products"]


async def test_unknown_route_and_bad_strategy() -> None:
    async with gateway() as client:
        assert (await client.get("/api/nothing")).status_code == 404
        bad = await client.get("/api/orders/42/details?failure_strategy=maybe")
    assert bad.status_code == 400 and "failure_strategy" in bad.json()["error"]
    await asyncio.sleep(0)
