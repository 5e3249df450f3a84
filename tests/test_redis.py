"""What replicas share, against a real redis-server (Debian's, installed by `make test`
where root and apt allow; skipped with the reason elsewhere): APQ, rate limits and
the entity cache across two gateways, and Redis stopped mid-run."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Recorder, gateway, gql
from faults import free_port

pytestmark = pytest.mark.anyio

ORDER = '{ order(id: "42") { status } }'
PRODUCTS = '{ products(ids: ["1", "2"]) { name } }'


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make test installs Debian's where it "
                    "runs as root with apt-get)")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def with_redis(server: RedisServer, **more: Any) -> dict[str, Any]:
    return {"redis": {"url": server.url, "timeout_ms": 500, "retry_after_s": 60}, **more}


def apq(query: str) -> dict[str, Any]:
    import hashlib

    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_an_apq_hash_registered_on_one_replica_runs_on_the_other(
        redis_server: RedisServer) -> None:
    settings = with_redis(redis_server)
    async with gateway(settings) as a, gateway(settings) as b:
        miss = (await b.post("/graphql", json={"extensions": apq(ORDER)})).json()
        register = await a.post("/graphql", json={"query": ORDER, "extensions": apq(ORDER)})
        hit = (await b.get("/graphql", params={"extensions": json.dumps(apq(ORDER))})).json()
    assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert register.json() == hit == {"data": {"order": {"status": "SHIPPED"}}}


async def test_the_rate_limit_is_one_bucket_across_replicas(redis_server: RedisServer) -> None:
    settings = with_redis(redis_server, rate_limit={"enabled": True, "burst": 3,
                                                    "requests_per_second": 0.001})
    async with gateway(settings) as a, gateway(settings) as b:
        statuses = [(await (a if n % 2 else b).post("/graphql", json={"query": ORDER}))
                    .status_code for n in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]


async def test_the_entity_cache_second_level_is_shared(redis_server: RedisServer) -> None:
    settings = with_redis(redis_server, backends={"products": {"cache": {"ttl_s": 60}}})
    first, second = Recorder(), Recorder()
    async with gateway(settings, first) as a, gateway(settings, second) as b:
        one = await gql(a, PRODUCTS)
        two = await gql(b, PRODUCTS)
    assert one == two
    assert first.counts() == {"products": 1}
    assert second.counts() == {}  # answered from Redis


async def test_redis_stopped_mid_run_never_fails_a_request(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tessera.redis")
    settings = with_redis(redis_server, backends={"products": {"cache": {"ttl_s": 60}}},
                          rate_limit={"enabled": True, "burst": 100})
    async with gateway(settings) as client:
        assert (await client.post("/graphql", json={"query": ORDER,
                                                     "extensions": apq(ORDER)})).status_code == 200
        redis_server.stop()
        answers = [await client.post("/graphql", json={"query": q, "extensions": apq(q)})
                   for q in (ORDER, PRODUCTS, PRODUCTS, '{ product(id: "3") { name } }')]
        by_hash = await client.post("/graphql", json={"extensions": apq(ORDER)})
        ready = await client.get("/readyz")
        metrics_text = (await client.get("/metrics")).text
    assert [a.status_code for a in answers] == [200] * 4
    assert all("errors" not in a.json() for a in answers)
    assert by_hash.json() == {"data": {"order": {"status": "SHIPPED"}}}  # kept locally too
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["redis"] == {"state": "down"}
    assert "tessera_redis_up 0.0" in metrics_text
    downs = [r for r in caplog.records if "redis is down" in r.getMessage()]
    assert len(downs) == 1  # once per change of state, not per request


async def test_without_redis_configured_nothing_changes() -> None:
    async with gateway() as client:
        ready = (await client.get("/readyz")).json()
    assert ready["redis"] == {"state": "off"}


async def test_purge_reaches_the_second_level(redis_server: RedisServer) -> None:
    token = "s3cret-admin-token-0123456789"
    settings = with_redis(redis_server, backends={"products": {"cache": {"ttl_s": 60}}},
                          admin={"token": token})
    recorder = Recorder()
    async with gateway(settings, recorder) as a, gateway(settings, Recorder()) as b:
        await gql(a, PRODUCTS)
        purged = await b.post("/admin/cache/purge", params={"backend": "products"},
                              headers={"authorization": f"Bearer {token}"})
    async with gateway(settings, recorder) as c:
        await gql(c, PRODUCTS)
    assert purged.json()["purged"] == 2  # both products, from Redis (b kept none itself)
    assert recorder.counts() == {"products": 2}
