"""Every limit is refused with its own code before any backend call."""

from __future__ import annotations

import pytest
from conftest import Recorder, gateway, gql

pytestmark = pytest.mark.anyio

SETTINGS = {"limits": {"max_depth": 4, "max_aliases": 2, "max_tokens": 60, "max_ids": 3},
            "server": {"max_body_bytes": 2048}}


async def refused(query: str, variables: dict[str, object] | None = None) -> str:
    recorder = Recorder()
    async with gateway(SETTINGS, transport=recorder) as client:
        body = await gql(client, query, variables)
    assert recorder.requests == []
    assert "data" not in body  # a request error: nothing was executed
    [error] = body["errors"]
    code: str = error["extensions"]["code"]
    return code


async def test_depth() -> None:
    deep = '{ order(id: "42") { user { orders { user { name } } } } }'
    assert await refused(deep) == "QUERY_TOO_DEEP"


async def test_depth_counts_through_fragments() -> None:
    query = ('{ order(id: "42") { ...O } } fragment O on Order { user { ...U } } '
             'fragment U on User { orders { user { id } } }')
    assert await refused(query) == "QUERY_TOO_DEEP"


async def test_aliases() -> None:
    assert await refused('{ a: order(id: "1") { id } b: order(id: "2") { id } '
                         'c: order(id: "3") { id } }') == "TOO_MANY_ALIASES"


async def test_tokens() -> None:
    query = "{ " + " ".join(f'order(id: "{n}") {{ id }}' for n in range(12)) + " }"
    assert await refused(query) == "TOO_MANY_TOKENS"


async def test_ids_literal_and_variable() -> None:
    assert await refused('{ orders(ids: ["1", "2", "3", "4"]) { id } }') == "TOO_MANY_IDS"
    assert await refused("query($ids: [ID!]!) { products(ids: $ids) { id } }",
                         {"ids": ["1", "2", "3", "4"]}) == "TOO_MANY_IDS"


@pytest.mark.parametrize("limit", [0, 101, -5])
async def test_limit_range(limit: int) -> None:
    assert await refused(f'{{ user(id: "7") {{ orders(limit: {limit}) {{ id }} }} }}') \
        == "BAD_USER_INPUT"
    assert await refused('query($n: Int!) { user(id: "7") { orders(limit: $n) { id } } }',
                         {"n": limit}) == "BAD_USER_INPUT"


async def test_within_limits_is_served() -> None:
    async with gateway(SETTINGS) as client:
        body = await gql(client, '{ orders(ids: ["42", "123"]) { user { orders(limit: 100) '
                                 '{ id } } } }')
    assert "errors" not in body


async def test_introspection_is_not_counted_as_depth() -> None:
    async with gateway({"limits": {"max_depth": 3}}) as client:
        body = await gql(client, "{ __schema { types { fields { type { ofType { ofType { "
                                 "name } } } } } } }")
    assert "errors" not in body


async def test_body_size_is_413() -> None:
    recorder = Recorder()
    async with gateway(SETTINGS, transport=recorder) as client:
        padding = " " * 3000
        response = await client.post("/graphql", json={"query": "{ order(id: \"42\") { id } }"
                                                       + padding})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert recorder.requests == []


async def test_a_repeated_document_is_checked_against_each_requests_variables() -> None:
    """The document's analysis is kept between requests; its variables are not."""
    query = "query($ids: [ID!]!) { products(ids: $ids) { name } }"
    async with gateway(SETTINGS) as client:
        first = await gql(client, query, {"ids": ["1", "2"]})
        second = await gql(client, query, {"ids": ["1", "2", "3", "4"]})
        third = await gql(client, query, {"ids": ["3"]})
    assert [p["name"] for p in first["data"]["products"]] == ["Widget", "Gadget"]
    assert second["errors"][0]["extensions"]["code"] == "TOO_MANY_IDS"
    assert third["data"]["products"][0]["name"]


async def test_aliases_of_typename_count() -> None:
    query = "{ " + " ".join(f"a{n}: __typename" for n in range(5)) + " }"
    assert await refused(query) == "TOO_MANY_ALIASES"  # the limit here is 2


@pytest.mark.parametrize("limit", [1000.0, 101.0, 0.0, -1.0])
async def test_limits_read_the_coerced_values_a_float_for_an_int_is_no_way_round(
        limit: float) -> None:
    query = 'query($l: Int!) { user(id: "7") { orders(limit: $l) { id } } }'
    assert await refused(query, {"l": limit}) == "BAD_USER_INPUT"


async def test_cost_reads_coerced_values_too() -> None:
    recorder = Recorder()
    query = 'query($l: Int!) { user(id: "7") { orders(limit: $l) { id } } }'
    async with gateway({"limits": {"max_cost": 20}}, transport=recorder) as client:
        body = await gql(client, query, {"l": 50.0})
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert recorder.requests == []


async def test_cost_follows_the_size_variables_of_each_request_and_no_other() -> None:
    sized = 'query($id: ID!, $n: Int!) { user(id: $id) { orders(limit: $n) { id } } }'
    unsized = 'query($id: ID!) { order(id: $id) { items { product { name } } } }'
    costs = []
    async with gateway() as client:
        for query, variables in ((sized, {"id": "7", "n": 2}), (sized, {"id": "7", "n": 5}),
                                 (sized, {"id": "8", "n": 2}), (unsized, {"id": "42"}),
                                 (unsized, {"id": "123"})):
            response = await client.post("/graphql", json={
                "query": query, "variables": variables, "extensions": {"cost": True}})
            body = response.json()
            assert "errors" not in body
            costs.append(body["extensions"]["cost"]["estimated"])
    # 1 user + n orders; 1 order + 10 items x (1 + 1 product), whatever the id
    assert costs == [3, 6, 3, 21, 21]


async def test_several_operations_without_a_name_is_a_request_error() -> None:
    two = 'query A { order(id: "42") { id } } query B { user(id: "7") { name } }'
    assert await refused(two) == "BAD_REQUEST"
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        chosen = await client.post("/graphql", json={"query": two, "operationName": "B"})
        unknown = await client.post("/graphql", json={"query": two, "operationName": "C"})
    assert chosen.json() == {"data": {"user": {"name": "Aziz"}}}
    assert unknown.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert recorder.counts() == {"users": 1}
