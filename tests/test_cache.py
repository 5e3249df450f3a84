"""The entity cache (resilience/cache.py) and the cache hints to clients: calls
counted at a backend that says what it wants about caching; time from a FakeClock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeClock, Recorder, gateway, gql, live_server

from tessera.app import create_app
from tessera.config import parse_settings

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.anyio

PRODUCTS = {str(n): {"id": str(n), "name": f"P{n}", "price": 1.0, "description": None}
            for n in range(1, 10)}


def products_backend(cache_control: str | None = None) -> Recorder:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"cache-control": cache_control} if cache_control else {}
        if request.url.path == "/products":
            ids = request.url.params["ids"].split(",")
            return httpx.Response(200, json=[PRODUCTS[i] for i in ids if i in PRODUCTS],
                                  headers=headers)
        if request.url.path.startswith("/products/"):
            found = PRODUCTS.get(request.url.path.rsplit("/", 1)[1])
            return httpx.Response(200 if found else 404, json=found or {}, headers=headers)
        return httpx.Response(404)
    return Recorder(httpx.MockTransport(handler))


def cached(**cache: Any) -> dict[str, Any]:
    return {"backends": {"products": {"cache": cache}}}


QUERY = "query($ids: [ID!]!) { products(ids: $ids) { name } }"


async def test_off_by_default() -> None:
    recorder = products_backend()
    async with gateway(transport=recorder) as client:
        for _ in range(2):
            await gql(client, QUERY, {"ids": ["1", "2"]})
    assert len(recorder.calls("products")) == 2


async def test_kept_per_key_so_only_the_missing_keys_are_asked_for() -> None:
    recorder = products_backend()
    async with gateway(cached(ttl_s=60), recorder) as client:
        first = await gql(client, QUERY, {"ids": ["1", "2", "3"]})
        again = await gql(client, QUERY, {"ids": ["1", "2", "3"]})
        more = await gql(client, QUERY, {"ids": ["2", "3", "4", "5"]})
    assert first == again
    assert [p["name"] for p in more["data"]["products"]] == ["P2", "P3", "P4", "P5"]
    assert recorder.calls("products") == ["/products?ids=1,2,3", "/products?ids=4,5"]


async def test_answers_are_per_caller_unless_shared_or_public() -> None:
    for settings, cache_control, calls in [
            (cached(ttl_s=60), None, 2),  # each Authorization its own
            (cached(ttl_s=60, shared=True), None, 1),  # declared caller-independent
            (cached(ttl_s=60), "public, max-age=60", 1),  # the backend says public
            (cached(ttl_s=60, shared=True), "private", 2)]:  # private wins over shared
        recorder = products_backend(cache_control)
        async with gateway(settings, recorder) as client:
            for who in ("Bearer a", "Bearer b", "Bearer a"):
                await gql(client, QUERY, {"ids": ["1", "2"]}, headers={"authorization": who})
        assert len(recorder.calls("products")) == calls, (settings, cache_control)


async def test_the_backends_cache_control_is_honoured() -> None:
    clock = FakeClock()
    for cache_control, after_2s in [("no-store", 3), ("no-cache", 3), ("max-age=1", 2),
                                    (None, 1)]:
        recorder = products_backend(cache_control)
        async with gateway(cached(ttl_s=60), recorder, clock=clock) as client:
            await gql(client, QUERY, {"ids": ["1"]})
            await gql(client, QUERY, {"ids": ["1"]})
            clock.advance(2)
            await gql(client, QUERY, {"ids": ["1"]})
        assert len(recorder.calls("products")) == after_2s, cache_control


async def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    recorder = products_backend()
    async with gateway(cached(ttl_s=30), recorder, clock=clock) as client:
        await gql(client, QUERY, {"ids": ["1"]})
        clock.advance(29.9)
        await gql(client, QUERY, {"ids": ["1"]})
        clock.advance(0.2)
        await gql(client, QUERY, {"ids": ["1"]})
    assert len(recorder.calls("products")) == 2


async def test_bounded_in_entries() -> None:
    recorder = products_backend()
    async with gateway(cached(ttl_s=60, max_entries=2), recorder) as client:
        await gql(client, QUERY, {"ids": ["1", "2", "3"]})  # 1 is forgotten
        await gql(client, QUERY, {"ids": ["2", "3"]})
        await gql(client, QUERY, {"ids": ["1"]})
    assert recorder.calls("products") == ["/products?ids=1,2,3", "/products/1"]


async def test_cache_hints_on_get_and_persisted_queries() -> None:
    query = '{ products(ids: ["1", "2"]) { name } }'
    async with gateway(cached(ttl_s=60), products_backend("max-age=20")) as client:
        get = await client.get("/graphql", params={"query": query})
        private = await client.get("/graphql", params={"query": query},
                                   headers={"authorization": "Bearer a"})
        post = await client.post("/graphql", json={"query": query})
        partial = await client.get("/graphql", params={
            "query": '{ products(ids: ["1"]) { name stock } }'})
    assert get.headers["cache-control"] == "public, max-age=20"
    assert private.headers["cache-control"] == "private, max-age=20"
    assert "cache-control" not in post.headers  # a POST is not for a CDN
    # stock comes from inventory, which keeps nothing: the answer may not be kept
    assert partial.headers["cache-control"] == "no-store"


async def test_errors_are_no_store() -> None:
    settings = {"backends": {"products": {"cache": {"ttl_s": 60}},
                             "inventory": {"url": "http://127.0.0.1:9", "retries": 0}}}
    async with gateway(settings) as client:
        answer = await client.get("/graphql", params={
            "query": '{ products(ids: ["1"]) { name stock } }'})
    assert answer.json()["errors"] and answer.headers["cache-control"] == "no-store"


async def test_an_anonymous_answer_is_not_served_to_a_signed_in_caller() -> None:
    recorder = products_backend()
    async with gateway(cached(ttl_s=60), recorder) as client:
        await gql(client, QUERY, {"ids": ["1"]})
        await gql(client, QUERY, {"ids": ["1"]}, headers={"authorization": "Bearer a"})
        await gql(client, QUERY, {"ids": ["1"]})
    assert len(recorder.calls("products")) == 2


# --- purging ------------------------------------------------------------------------

TOKEN = "s3cret-admin-token-0123456789"


async def test_the_admin_endpoint_is_off_without_a_token() -> None:
    async with gateway() as client:
        answer = await client.post("/admin/cache/purge")
    assert answer.status_code == 404 and answer.json()["code"] == "NOT_FOUND"


async def test_purge_by_backend_and_key_with_the_admin_token(
        caplog: pytest.LogCaptureFixture) -> None:
    recorder = products_backend()
    settings = {**cached(ttl_s=60), "admin": {"token": TOKEN}}
    async with gateway(settings, recorder) as client:
        await gql(client, QUERY, {"ids": ["1", "2"]})
        wrong = await client.post("/admin/cache/purge", headers={"authorization": "Bearer x"})
        one = await client.post("/admin/cache/purge", params={"backend": "products",
                                                                "key": "2"},
                                headers={"authorization": f"Bearer {TOKEN}"})
        await gql(client, QUERY, {"ids": ["1", "2"]})
        every = await client.post("/admin/cache/purge",
                                  headers={"authorization": f"Bearer {TOKEN}"})
        await gql(client, QUERY, {"ids": ["1", "2"]})
        unknown = await client.post("/admin/cache/purge", params={"backend": "nope"},
                                    headers={"authorization": f"Bearer {TOKEN}"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "UNAUTHORIZED"
    assert one.json() == {"purged": 1, "backend": "products", "key": "2"}
    assert every.json()["purged"] == 2
    assert unknown.status_code == 404
    assert recorder.calls("products") == ["/products?ids=1,2", "/products/2",
                                          "/products?ids=1,2"]
    assert TOKEN not in caplog.text


def test_the_purge_command_against_a_running_gateway(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURGE_TOKEN", TOKEN)
    settings = parse_settings({**cached(ttl_s=60), "admin": {"token_env": "PURGE_TOKEN"}})
    config = tmp_path / "tessera.toml"
    config.write_text('[admin]\ntoken_env = "PURGE_TOKEN"\n')
    with live_server(create_app(settings, products_backend())) as url:
        httpx.post(f"{url}/graphql", json={"query": QUERY, "variables": {"ids": ["1"]}})
        done = subprocess.run([sys.executable, "-m", "tessera", "cache", "purge", "--config",
                               str(config), "--url", url, "--backend", "products"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "purged 1 cached answer(s)"


# --- one store for fresh and stale answers ------------------------------------------

def failing_after_first(cache_control: str | None = None) -> Recorder:
    state = {"calls": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        state["calls"] += 1
        if state["calls"] > 1:
            return httpx.Response(503, json={"error": "down"})
        ids = request.url.params.get("ids", request.url.path.rsplit("/", 1)[-1]).split(",")
        found = [PRODUCTS[i] for i in ids if i in PRODUCTS]
        body: Any = found if request.url.path == "/products" else found[0]
        return httpx.Response(200, json=body)
    return Recorder(httpx.MockTransport(handler))


async def test_a_stale_answer_comes_from_the_cache_store_after_its_ttl() -> None:
    clock = FakeClock()
    settings = {"backends": {"products": {"cache": {"ttl_s": 1}, "stale_if_error_s": 60,
                                          "retries": 0}}}
    async with gateway(settings, failing_after_first(), clock=clock) as client:
        fresh = await gql(client, QUERY, {"ids": ["1", "2"]})
        clock.advance(2)  # no longer fresh: the backend is asked, and fails
        stale = await gql(client, QUERY, {"ids": ["1", "2"]})
    assert stale["data"] == fresh["data"]
    assert {s["age_s"] for s in stale["extensions"]["tessera"]["stale"]} == {2.0}


async def test_a_stale_answer_is_never_served_to_another_caller() -> None:
    settings = {"backends": {"products": {"stale_if_error_s": 60, "retries": 0}}}
    async with gateway(settings, failing_after_first()) as client:
        await gql(client, QUERY, {"ids": ["1"]}, headers={"authorization": "Bearer a"})
        other = await gql(client, QUERY, {"ids": ["1"]}, headers={"authorization": "Bearer b"})
        same = await gql(client, QUERY, {"ids": ["1"]}, headers={"authorization": "Bearer a"})
    assert other["data"] == {"products": [None]}
    assert other["errors"][0]["extensions"]["code"] == "BACKEND_UNAVAILABLE"
    assert same["data"] == {"products": [{"name": "P1"}]}
