"""Batching, de-duplication, batch splitting, encoding and header forwarding,
proven by counting and reading the calls the backends received."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from conftest import Recorder, gateway, gql
from faults import FaultServer

from tessera import loaders
from tessera.backends import CallScope
from tessera.loaders import _Loader
from tessera.loaders.batching import Batcher

pytestmark = pytest.mark.anyio


async def test_twenty_orders_cost_one_call_per_backend() -> None:
    recorder = Recorder()
    ids = [str(n) for n in range(5000, 5020)]
    query = """query($ids: [ID!]!) { orders(ids: $ids) {
        id user { name } items { product { name } stock inStock } products { price } } }"""
    async with gateway(transport=recorder) as client:
        body = await gql(client, query, {"ids": ids})
    assert "errors" not in body
    orders = body["data"]["orders"]
    assert [o["id"] for o in orders] == ids
    assert len({o["user"]["name"] for o in orders}) > 1  # really many users
    assert recorder.counts() == {"orders": 1, "users": 1, "products": 1, "inventory": 1}


async def test_loads_reached_over_several_iterations_make_one_call_per_hop() -> None:
    # the items' products are awaited some directly, some through asyncio.wait, so
    # their stock loads arrive an iteration apart: dispatching at the first quiet
    # tick of the loop made two inventory calls here
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        body = await gql(client, '{ user(id: "7") { orders(limit: 5) { items { '
                                 'product { name stock reviews { rating } } } } } }')
    assert "errors" not in body
    assert len(body["data"]["user"]["orders"]) == 5
    assert recorder.counts() == {"users": 1, "orders": 1, "products": 1, "inventory": 1,
                                 "reviews": 1}


async def test_a_request_dispatches_when_its_own_work_goes_quiet() -> None:
    batcher, other = Batcher(), Batcher()
    batches: list[list[Any]] = []

    class Upper:  # a binding whose backend upper-cases keys
        label = "test:upper"

        async def fetch(self, client: Any, keys: list[Any], scope: Any) -> list[Any]:
            batches.append(keys)
            return [key.upper() for key in keys]

    loader = _Loader(Upper(), None, CallScope(), batcher)  # type: ignore[arg-type]
    first = loader.load("a")
    for _ in range(5):  # the request still executing objects: its loads wait
        batcher.worked()
        await asyncio.sleep(0)  # one loop iteration
        assert loader.queued
    second = loader.load("b")
    for _ in range(3):  # another request's work does not hold this one back
        other.worked()
        await asyncio.sleep(0)
    assert not loader.queued
    assert await first == "A" and await second == "B"
    assert batches == [["a", "b"]]


async def test_a_batch_is_fetched_in_the_loop_pass_that_dispatches_it() -> None:
    # a task made for the batch started a pass later, behind every callback the
    # other requests had queued meanwhile (~0.2 ms a hop at 4 connections)
    started: list[int] = []
    passes = 0

    class Echo:
        label = "test:echo"

        async def fetch(self, client: Any, keys: list[Any], scope: Any) -> list[Any]:
            started.append(passes)
            await asyncio.sleep(0)
            return keys

    loader = _Loader(Echo(), None, CallScope(), Batcher())  # type: ignore[arg-type]
    future = loader.load("a")
    while not started and passes < 5:
        passes += 1
        await asyncio.sleep(0)  # one loop pass; the batcher's tick runs before it ends
    assert started == [1]  # fetching began in the first pass: the dispatching one
    assert await future == "a"


async def test_a_wait_on_a_load_resumes_in_the_pass_after_its_batch_settles_it() -> None:
    # the wait's done-callback took a pass of its own before waking it

    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()
    resumed: list[int] = []
    passes = 0

    class Gated:
        label = "test:gated"

        async def fetch(self, client: Any, keys: list[Any], scope: Any) -> list[Any]:
            await gate
            return keys

    loader = _Loader(Gated(), None, CallScope(), Batcher())  # type: ignore[arg-type]
    future = loader.load("a")
    waits = loader.want(["a"])
    assert len(waits) == 1

    async def wait() -> None:
        await loaders.wait_all(waits)
        assert loader.values(["a"]) == ["a"]
        resumed.append(passes)

    waiting = asyncio.create_task(wait())
    for _ in range(3):  # dispatched; the fetch waits at the gate
        await asyncio.sleep(0)
    gate.set_result(None)
    while not resumed and passes < 6:
        passes += 1
        await asyncio.sleep(0)
    assert resumed == [2]  # pass 1: the batch settles the load; pass 2: the wait
    assert future.done() and future.result() == "a"  # load()'s future, set in pass 1
    await waiting
    assert not loaders._WAITING


async def test_a_none_key_is_refused_and_the_keys_before_it_still_load() -> None:
    """want(["a", None]) raises (as aiodataloader's load(None) does), and "a",
    already cached, is still fetched: a later load of it must not wait forever."""
    batches: list[list[Any]] = []

    class Upper:
        label = "test:upper"

        async def fetch(self, client: Any, keys: list[Any], scope: Any) -> list[Any]:
            batches.append(keys)
            return [key.upper() for key in keys]

    loader = _Loader(Upper(), None, CallScope(), Batcher())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="None"):
        loader.want(["a", None])
    assert await asyncio.wait_for(loader.load("a"), 1) == "A"
    assert batches == [["a"]]


async def test_equal_keys_are_fetched_once() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        body = await gql(client, '{ a: order(id: "42") { id } b: order(id: "42") { id } '
                                 'orders(ids: ["42", "123", "42"]) { id } }')
    assert body["data"]["orders"] == [{"id": "42"}, {"id": "123"}, {"id": "42"}]
    assert recorder.calls("orders") == ["/orders?ids=42,123"]


async def test_batches_split_at_max_batch_size_and_lone_key_uses_path() -> None:
    recorder = Recorder()
    ids = [str(n) for n in range(10, 22)]
    settings = {"defaults": {"max_batch_size": 5}}
    async with gateway(settings, transport=recorder) as client:
        body = await gql(client, 'query($ids: [ID!]!) { products(ids: $ids) { id } '
                                 'one: order(id: "42") { id } }', {"ids": ids})
    assert [p["id"] for p in body["data"]["products"]] == ids
    assert sorted(len(c.split("=")[1].split(",")) for c in recorder.calls("products")) == [2, 5, 5]
    assert recorder.calls("orders") == ["/orders/42"]


async def test_id_with_comma_is_fetched_alone() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        body = await gql(client, '{ products(ids: ["1", "a,b", "2"]) { id } }')
    assert body["data"]["products"] == [{"id": "1"}, None, {"id": "2"}]
    assert sorted(recorder.calls("products")) == ["/products/a%2Cb", "/products?ids=1,2"]


async def test_client_ids_are_one_encoded_path_segment() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        await gql(client, '{ a: order(id: "../users/7") { id } }')
        await gql(client, '{ b: order(id: "..") { id } }')
        await gql(client, '{ c: order(id: "?x=1#y") { id } }')
    # ".." cannot be a path segment (URL layers resolve it even encoded): it is
    # asked for in the list form, where nothing normalises it
    assert recorder.calls("orders") == ["/orders/..%2Fusers%2F7", "/orders?ids=..",
                                        "/orders/%3Fx%3D1%23y"]
    assert recorder.calls("users") == []


async def test_numeric_ids_from_a_backend_are_strings() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/users/7":
            return httpx.Response(200, json={"id": 7, "name": "Seven"})
        return httpx.Response(200, json=[{"id": 7, "name": "Seven"}, {"id": 8, "name": "Eight"}])

    async with gateway(transport=httpx.MockTransport(handler)) as client:
        body = await gql(client, '{ user(id: "7") { id name } users(ids: ["8", "7"]) { id } }')
    assert body["data"] == {"user": {"id": "7", "name": "Seven"},
                            "users": [{"id": "8"}, {"id": "7"}]}


async def test_forwards_three_headers_and_one_request_id() -> None:
    recorder = Recorder()
    headers = {"Authorization": "Bearer t0ken", "Accept-Language": "uz", "Cookie": "s=1",
               "X-Request-Id": "req-123", "X-Other": "no"}
    async with gateway(transport=recorder) as client:
        response = await client.post("/graphql", headers=headers, json={
            "query": '{ order(id: "42") { user { name } items { stock } } }'})
    assert response.headers["x-request-id"] == "req-123"
    assert len(recorder.requests) == 3
    for request in recorder.requests:
        assert request.headers["authorization"] == "Bearer t0ken"
        assert request.headers["accept-language"] == "uz"
        assert request.headers["x-request-id"] == "req-123"
        assert "cookie" not in request.headers and "x-other" not in request.headers


async def test_a_repeated_header_forwards_its_first_value_and_a_bad_id_is_replaced() -> None:
    recorder = Recorder()
    headers = [("Authorization", "Bearer first"), ("authorization", "Bearer second"),
               ("X-Request-Id", "has spaces in it")]
    async with gateway(transport=recorder) as client:
        response = await client.post("/graphql", headers=headers,
                                     json={"query": '{ order(id: "42") { id } }'})
    sent = recorder.requests[0].headers
    assert sent.get_list("authorization") == ["Bearer first"]
    made = response.headers["x-request-id"]
    assert sent["x-request-id"] == made != "has spaces in it" and len(made) == 32


async def test_request_id_is_made_once_per_client_request() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        first = await client.post("/graphql", json={"query": '{ order(id: "42") { user { id } } }'})
        second = await client.post("/graphql", json={"query": '{ order(id: "42") { id } }'})
    ids = [r.headers["x-request-id"] for r in recorder.requests]
    assert ids[0] == ids[1] == first.headers["x-request-id"]
    assert ids[2] == second.headers["x-request-id"] != ids[0]
    assert "authorization" not in recorder.requests[0].headers
    assert json.loads(first.text)["data"]["order"]["user"]["id"] == "7"


class SetsCookies(Recorder):
    """The demo services, each answer carrying a Set-Cookie."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        response.headers["set-cookie"] = "session=alice; Path=/"
        return response


async def test_a_backends_cookie_is_never_sent_back() -> None:
    """Backend clients are shared by every client request: a kept cookie would be
    sent on behalf of the next user."""
    recorder = SetsCookies()
    async with gateway(transport=recorder) as client:
        for _ in range(2):
            await gql(client, '{ order(id: "42") { user { name } } }')
    assert len(recorder.requests) == 4
    assert all("cookie" not in r.headers for r in recorder.requests)


async def test_a_real_backends_cookie_is_never_sent_back() -> None:
    """The same over the network, through the aiohttp pool a real backend gets."""
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Set-Cookie: session=alice; Path=/\r\nContent-Length: 27\r\n"
              b"Connection: close\r\n\r\n" b'{"id": "7", "name": "Aziz"}')
    async with FaultServer("raw", answer) as users, \
            gateway({"backends": {"users": {"url": users.url.replace("127.0.0.1",
                                                                     "localhost")}}}) as client:
        for _ in range(2):
            body = await gql(client, '{ user(id: "7") { name } }')
            assert body["data"]["user"]["name"] == "Aziz"
    assert len(users.heads) == 2
    assert all(b"cookie" not in head.lower() for head in users.heads)


async def test_a_request_that_stops_waiting_leaves_a_shared_load_alone() -> None:
    """wait_all() waits for batches other fields (and other waiters) share: cancelling
    one waiter must not cancel the batch, and a key that failed is a value, not a
    raise."""

    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()

    class Gated:
        label = "test:gated"

        async def fetch(self, client: Any, keys: list[Any], scope: Any) -> list[Any]:
            await gate
            return [ValueError("backend said no") if key == "bad" else key for key in keys]

    loader = _Loader(Gated(), None, CallScope(), Batcher())  # type: ignore[arg-type]
    waits = loader.want(["kept", "bad", "kept"])
    assert len(waits) == 1  # one batch for both keys
    first = asyncio.create_task(loaders.wait_all(waits))
    second = asyncio.create_task(loaders.wait_all(waits))
    for _ in range(3):
        await asyncio.sleep(0)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert first.cancelled() and not waits[0].done()
    gate.set_result(None)
    await second
    kept, error = loader.values(["kept", "bad"])
    assert kept == "kept" and isinstance(error, ValueError)
    assert loader.want(["kept", "bad"]) == []  # settled: nothing to wait for, no call
    assert not loaders._WAITING  # nothing kept for the waits that ended


async def test_a_wait_on_several_batches_ends_with_the_last_and_leaves_them_alone() -> None:
    """wait_all() on batches of two loaders: one wait for both (not woken by the
    first to settle), and a wait given up leaves the batches to settle for others."""

    loop = asyncio.get_running_loop()
    gates: dict[str, asyncio.Future[None]] = {n: loop.create_future() for n in "ab"}

    class Gated:
        def __init__(self, name: str) -> None:
            self.label = f"test:{name}"
            self.name = name

        async def fetch(self, client: Any, keys: list[Any], scope: Any) -> list[Any]:
            await gates[self.name]
            return [f"{self.name}{key}" for key in keys]

    batcher = Batcher()
    first = _Loader(Gated("a"), None, CallScope(), batcher)  # type: ignore[arg-type]
    second = _Loader(Gated("b"), None, CallScope(), batcher)  # type: ignore[arg-type]
    waits = first.want(["1"]) + second.want(["1", "2"])
    assert len(waits) == 2
    both = asyncio.create_task(loaders.wait_all(waits))
    given_up = asyncio.create_task(loaders.wait_all(waits))
    for _ in range(3):
        await asyncio.sleep(0)
    gates["a"].set_result(None)
    for _ in range(3):
        await asyncio.sleep(0)
    assert waits[0].done() and not both.done()  # the first batch alone does not end it
    given_up.cancel()
    await asyncio.gather(given_up, return_exceptions=True)
    assert not waits[1].done()
    gates["b"].set_result(None)
    await asyncio.wait_for(both, 1)
    assert first.values(["1"]) == ["a1"] and second.values(["2", "1"]) == ["b2", "b1"]
    assert not loaders._WAITING


async def test_a_batch_that_fails_as_a_whole_fails_each_key_and_keeps_none() -> None:
    """A fetch that raises (or answers the wrong number of values): every key of the
    batch reads the failure, load() futures included, and asked for again a key
    is loaded again."""
    calls: list[list[Any]] = []

    class Flaky:
        label = "test:flaky"

        async def fetch(self, client: Any, keys: list[Any], scope: Any) -> list[Any]:
            calls.append(keys)
            if len(calls) == 1:
                raise RuntimeError("the backend said no")
            if len(calls) == 2:
                return keys[:1]  # one value short
            return [key.upper() for key in keys]

    loader = _Loader(Flaky(), None, CallScope(), Batcher())  # type: ignore[arg-type]
    future = loader.load("a")
    await loaders.wait_all(loader.want(["a", "b"]))
    assert future.done() and isinstance(future.exception(), RuntimeError)
    assert [type(v) for v in loader.values(["a", "b"])] == [RuntimeError, RuntimeError]
    assert loader.settled("a", "not kept") == "not kept"
    await loaders.wait_all(loader.want(["b", "a"]))
    assert [type(v) for v in loader.values(["a", "b"])] == [TypeError, TypeError]
    await loaders.wait_all(loader.want(["a", "b"]))
    assert loader.values(["a", "b"]) == ["A", "B"]
    assert await loader.load("a") == "A"
    assert calls == [["a", "b"], ["b", "a"], ["a", "b"]]
