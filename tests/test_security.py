"""The production profile, persisted queries, the cost limit and the rate limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Recorder, gateway, gql
from graphql import parse

from tessera.config import RateLimitSettings, load_settings, parse_settings
from tessera.errors import ConfigError
from tessera.schema import build_schema
from tessera.schema.cost import CostModel
from tessera.shop.graph import graph as shop
from tessera.web.persisted import PersistedQueries, sha256
from tessera.web.ratelimit import RateLimiter

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
ORDER = '{ order(id: "42") { status } }'
INTROSPECTION = "{ __schema { queryType { name } } }"
TYPO = '{ order(id: "42") { stauts } }'


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


# --- profiles -----------------------------------------------------------------

async def test_production_profile_turns_off_introspection_graphiql_and_suggestions() -> None:
    async with gateway({"server": {"profile": "production"}}) as client:
        introspection = await gql(client, INTROSPECTION)
        typo = await gql(client, TYPO)
        page = await client.get("/graphql", headers={"accept": "text/html"})
        served = await gql(client, ORDER)
    assert "data" not in introspection
    assert "introspection" in introspection["errors"][0]["message"].lower()
    assert "Did you mean" not in typo["errors"][0]["message"]
    assert "stauts" in typo["errors"][0]["message"]
    assert page.status_code == 404
    assert served == {"data": {"order": {"status": "SHIPPED"}}}


async def test_development_profile_keeps_them() -> None:
    async with gateway() as client:
        introspection = await gql(client, INTROSPECTION)
        typo = await gql(client, TYPO)
        page = await client.get("/graphql", headers={"accept": "text/html"})
    assert introspection["data"]["__schema"]["queryType"]["name"] == "Query"
    assert "Did you mean 'status'?" in typo["errors"][0]["message"]
    assert page.status_code == 200 and "graphiql" in page.text.lower()


def test_a_key_set_in_the_file_wins_over_the_profile() -> None:
    server = parse_settings({"server": {"profile": "production", "graphiql": True}}).server
    assert (server.graphiql, server.introspection, server.suggestions) == (True, False, False)


def test_the_shipped_production_example_loads_and_locks_down() -> None:
    settings = load_settings(ROOT / "examples" / "production.toml")
    server = settings.server
    assert server.profile == "production"
    assert not (server.graphiql or server.introspection or server.suggestions)
    assert settings.rate_limit.enabled


# --- automatic persisted queries ---------------------------------------------

async def test_apq_round_trip_miss_register_hit() -> None:
    """What Apollo Client's persisted-query link does, step by step."""
    digest = sha256(ORDER)
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        miss = (await client.post("/graphql", json={"extensions": apq(digest)})).json()
        register = (await client.post("/graphql", json={"query": ORDER,
                                                        "extensions": apq(digest)})).json()
        hit = (await client.post("/graphql", json={"extensions": apq(digest)})).json()
        by_get = (await client.get("/graphql", params={
            "extensions": json.dumps(apq(digest))})).json()
    assert miss == {"errors": [{"message": "PersistedQueryNotFound",
                                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]}
    assert register == hit == by_get == {"data": {"order": {"status": "SHIPPED"}}}
    assert recorder.counts() == {"orders": 3}


async def test_apq_refuses_a_query_that_does_not_match_its_hash() -> None:
    async with gateway() as client:
        body = (await client.post("/graphql", json={
            "query": ORDER, "extensions": apq(sha256("{ other }"))})).json()
        bad = (await client.post("/graphql", json={
            "extensions": {"persistedQuery": {"version": 2, "sha256Hash": "x"}}})).json()
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    assert "sha256Hash" in bad["errors"][0]["message"]


def test_the_apq_store_is_bounded_in_entries_and_bytes() -> None:
    store = PersistedQueries(parse_settings({"persisted_queries": {
        "cache_size": 2, "cache_bytes": 2048}}).persisted_queries)
    queries = [f"{{ q{n} }}" for n in range(3)]
    for query in queries:
        store.remember(store.resolve(query, apq(sha256(query))))
    assert store.resolve(None, apq(sha256(queries[2]))).query == queries[2]
    with pytest.raises(Exception, match="PersistedQueryNotFound"):
        store.resolve(None, apq(sha256(queries[0])))
    big = "{ a }" + " " * 1500  # two of these do not fit in 2048 bytes
    other = "{ b }" + " " * 1500
    for query in (big, other):
        store.remember(store.resolve(query, apq(sha256(query))))
    assert store.resolve(None, apq(sha256(other))).query == other
    with pytest.raises(Exception, match="PersistedQueryNotFound"):
        store.resolve(None, apq(sha256(big)))


@pytest.mark.parametrize("document", [
    "# only a comment\n" * 100,  # does not parse (no definitions)
    "{ nosuchfield }",  # does not validate
    "{ " + " ".join(f"a{n}: __typename" for n in range(40)) + " }",  # over max_aliases
])
async def test_apq_keeps_only_documents_that_ran(document: str) -> None:
    digest = sha256(document)
    async with gateway() as client:
        first = await client.post("/graphql", json={"query": document,
                                                    "extensions": apq(digest)})
        again = (await client.post("/graphql", json={"extensions": apq(digest)})).json()
    assert "data" not in first.json()
    assert again["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


# --- allow-list from a manifest ----------------------------------------------

def _manifest(tmp_path: Path, *bodies: str) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"format": "apollo-persisted-query-manifest", "version": 1,
                                "operations": [{"id": sha256(b), "name": f"Op{i}",
                                                "type": "query", "body": b}
                                               for i, b in enumerate(bodies)]}))
    return path


async def test_allow_list_runs_only_the_manifests_operations(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, ORDER)
    settings = {"persisted_queries": {"manifest": str(manifest)}}
    recorder = Recorder()
    async with gateway(settings, transport=recorder) as client:
        by_hash = (await client.post("/graphql", json={"extensions": apq(sha256(ORDER))})).json()
        listed_text = await gql(client, ORDER)
        other = await client.post("/graphql", json={"query": '{ user(id: "7") { name } }'})
        unknown_hash = (await client.post("/graphql",
                                          json={"extensions": apq(sha256("{ x }"))})).json()
    assert by_hash == listed_text == {"data": {"order": {"status": "SHIPPED"}}}
    assert other.status_code == 403
    assert other.json()["errors"][0]["extensions"]["code"] == "OPERATION_NOT_IN_ALLOWLIST"
    assert unknown_hash["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert recorder.counts() == {"orders": 2}


def test_a_manifest_entry_whose_id_is_not_its_hash_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"operations": [{"id": "0" * 64, "body": ORDER}]}))
    with pytest.raises(ConfigError, match="persisted_queries.manifest: .*not the sha256"):
        PersistedQueries.from_settings(parse_settings(
            {"persisted_queries": {"manifest": str(path)}}).persisted_queries)
    with pytest.raises(ConfigError, match="file not found"):
        PersistedQueries.from_settings(parse_settings(
            {"persisted_queries": {"manifest": str(tmp_path / "none.json")}}).persisted_queries)


# --- cost ----------------------------------------------------------------------

async def test_cost_over_the_limit_is_refused_before_any_backend_call() -> None:
    recorder = Recorder()
    query = '{ user(id: "7") { orders(limit: 20) { items { product { name } } } } }'
    async with gateway({"limits": {"max_cost": 400}}, transport=recorder) as client:
        body = await gql(client, query)
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 421,
                                               "max_cost": 400}
    assert recorder.requests == []


async def test_the_estimate_is_in_extensions_when_asked_for() -> None:
    query = "query($ids: [ID!]!) { products(ids: $ids) { name stock } }"
    async with gateway() as client:
        asked = (await client.post("/graphql", json={
            "query": query, "variables": {"ids": ["1", "2", "3"]},
            "extensions": {"cost": True}})).json()
        again = (await client.post("/graphql", json={
            "query": query, "variables": {"ids": ["1"]}, "extensions": {"cost": True}})).json()
        not_asked = await gql(client, query, {"ids": ["1"]})
    assert asked["extensions"]["cost"] == {"estimated": 6, "max": 5000}
    assert again["extensions"]["cost"] == {"estimated": 2, "max": 5000}
    assert "extensions" not in not_asked


def test_cost_model_counts_fragments_once_and_scales_them() -> None:
    model = CostModel.of(build_schema(), shop, assumed_list_size=10)
    # 12 fragments each spreading the next twice: 2**12 product selections.
    spreads = [f"fragment F{i} on Product {{ ...F{i + 1} ...F{i + 1} }}" for i in range(12)]
    document = parse('{ product(id: "1") { ...F0 } } ' + " ".join(spreads)
                     + " fragment F12 on Product { stock }")
    operation = document.definitions[0]
    # Each spread is counted (an upper bound: execution merges them into one field).
    assert model.estimate(document, operation, {}) == 1 + 2 ** 12
    walked = parse('{ products(ids: ["1", "2"]) { reviews { author { name } } } }')
    assert model.estimate(walked, walked.definitions[0], {}) == 2 * (1 + 10 * (1 + 1))


# --- rate limit ------------------------------------------------------------------

def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimitSettings(enabled=True, requests_per_second=2, burst=3),
                          clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # another client, another bucket
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a", tokens=5) == pytest.approx(1.5)  # capped at the burst


async def test_over_the_rate_is_429_with_retry_after_per_client_key() -> None:
    settings = {"rate_limit": {"enabled": True, "requests_per_second": 0.5, "burst": 2,
                               "api_keys": ["team-a"]}}
    recorder = Recorder()
    async with gateway(settings, transport=recorder) as client:
        statuses = [(await client.post("/graphql", json={"query": ORDER})).status_code
                    for _ in range(2)]
        limited = await client.post("/graphql", json={"query": ORDER})
        keyed = await client.post("/graphql", json={"query": ORDER},
                                  headers={"x-api-key": "team-a"})
        route = await client.get("/api/orders/42/details")
    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert keyed.status_code == 200  # a configured key: its own bucket
    assert route.status_code == 429 and route.json()["code"] == "RATE_LIMITED"
    assert recorder.counts() == {"orders": 3}
