"""Lookahead: a resolver loads what its objects' selected fields need in the same hop.

Checked by which backend calls overlap (a call that starts while another is still
in flight shares its hop), against the demo services delayed by a real sleep.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import strawberry
from conftest import Recorder, gateway, gql

from tessera.compose import Graph, Rest, link, source
from tessera.compose.lookahead import links_of
from tessera.shop.graph import Order, OrderItem, Product

pytestmark = pytest.mark.anyio

IDS = '["1", "2", "3"]'


class Slow(Recorder):
    """The demo services, each call held `delay` seconds; notes which calls overlapped."""

    def __init__(self, delay: float = 0.15) -> None:
        super().__init__()
        self.delay = delay
        self.in_flight: set[str] = set()
        self.overlapped: dict[str, set[str]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        service = request.url.host.removesuffix(".demo")
        self.overlapped.setdefault(service, set()).update(self.in_flight)
        for other in self.in_flight:
            self.overlapped[other].add(service)
        self.in_flight.add(service)
        try:
            await asyncio.sleep(self.delay)
            return await super().handle_async_request(request)
        finally:
            self.in_flight.discard(service)


async def test_product_stock_is_fetched_in_the_same_hop_as_the_products() -> None:
    slow = Slow()
    async with gateway(transport=slow) as client:
        body = await gql(client, f"{{ products(ids: {IDS}) {{ name stock inStock }} }}")
    assert "errors" not in body
    assert [p["stock"] for p in body["data"]["products"]] == [42, 7, 0]
    assert slow.counts() == {"products": 1, "inventory": 1}
    assert "products" in slow.overlapped["inventory"]


async def test_fragments_are_looked_through() -> None:
    slow = Slow()
    query = ("query { products(ids: " + IDS + ") { ...P } } fragment P on Product "
             "{ name ... on Product { inStock } }")
    async with gateway(transport=slow) as client:
        body = await gql(client, query)
    assert [p["inStock"] for p in body["data"]["products"]] == [True, True, False]
    assert "products" in slow.overlapped["inventory"]


async def test_an_orders_links_share_one_hop_after_the_order() -> None:
    slow = Slow()
    query = ('{ order(id: "42") { user { name } products { name } '
             "items { stock product { price } } } }")
    async with gateway(transport=slow) as client:
        body = await gql(client, query)
    assert "errors" not in body
    assert slow.counts() == {"orders": 1, "users": 1, "products": 1, "inventory": 1}
    assert slow.overlapped["orders"] == set()
    for service in ("users", "products", "inventory"):
        assert slow.overlapped[service] >= {"users", "products", "inventory"} - {service}


async def test_a_users_orders_start_with_the_user_when_their_arguments_are_known() -> None:
    """`User.orders(limit:)` is keyed by the id the user is asked by: with its
    arguments read from the document and the variables (one load per distinct
    set), it starts in the user's hop, and the items' products follow in the next."""
    slow = Slow()
    query = ('query($limit: Int!) { user(id: "7") { name orders(limit: $limit) '
             "{ id items { product { name } } } recent: orders(limit: 2) { id } } }")
    async with gateway(transport=slow) as client:
        response = await client.post("/graphql", json={"query": query,
                                                        "variables": {"limit": 5}})
    body = response.json()
    assert "errors" not in body
    assert body["data"]["user"]["name"] == "Aziz"
    assert len(body["data"]["user"]["orders"]) == 5
    assert len(body["data"]["user"]["recent"]) == 2
    assert slow.counts() == {"users": 1, "orders": 2, "products": 1}
    assert "users" in slow.overlapped["orders"]
    assert slow.overlapped["products"] == set()


async def test_an_early_load_that_fails_is_the_fields_error_only() -> None:
    async with gateway({"backends": {"orders": {"url": "http://127.0.0.1:9"}}}) as client:
        body = await gql(client, '{ user(id: "7") { name orders(limit: 3) { id } } }')
    assert body["data"]["user"] == {"name": "Aziz", "orders": None}
    [error] = body["errors"]
    assert error["path"] == ["user", "orders"]
    assert error["extensions"]["code"] == "BACKEND_UNAVAILABLE"


async def test_a_failed_prefetched_load_is_an_error_at_each_field() -> None:
    async with gateway({"backends": {"inventory": {"url": "http://127.0.0.1:9"}}}) as client:
        body = await gql(client, '{ products(ids: ["1", "2"]) { name stock } }')
    assert [p["name"] for p in body["data"]["products"]] == ["Widget", "Gadget"]
    assert [p["stock"] for p in body["data"]["products"]] == [None, None]
    assert sorted(e["path"] for e in body["errors"]) == [["products", 0, "stock"],
                                                         ["products", 1, "stock"]]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BACKEND_UNAVAILABLE"}


async def test_naive_loaders_do_not_prefetch() -> None:
    recorder = Recorder()
    async with gateway(transport=recorder, batching=False) as client:
        body = await gql(client, f"{{ products(ids: {IDS}) {{ stock }} }}")
    assert [p["stock"] for p in body["data"]["products"]] == [42, 7, 0]
    assert recorder.counts() == {"products": 3, "inventory": 3}  # once per field, no more


@pytest.mark.parametrize("kind", [Product, OrderItem, Order])
def test_links_name_every_resolved_field(kind: type) -> None:
    """Every resolved field of these types is a declared link the lookahead knows."""
    definition = strawberry.types.base.get_object_definition(kind, strict=True)
    resolved = {f.graphql_name or strawberry.schema.config.StrawberryConfig().name_converter
                .get_graphql_name(f) for f in definition.fields if f.base_resolver is not None}
    assert resolved == set(links_of(kind))


async def test_an_object_read_in_place_is_built_once_per_request_and_load() -> None:
    """Two items of the same product read it from the settled load as one object
    (built from the record once per request, not once per parent); another
    request builds its own; a failed or stale load is left to the resolver."""
    from types import SimpleNamespace

    from tessera.backends import CallScope
    from tessera.compose.fields import NOTHING
    from tessera.loaders import _Loader
    from tessera.loaders.batching import Batcher
    from tessera.resilience import Stale

    link = links_of(OrderItem)["product"]
    read = link.settled_reader()
    assert read is not None

    def request(value: object) -> SimpleNamespace:
        loader = _Loader(link.binding, None, CallScope(), Batcher())
        loader.prime(link.binding.key_of("1", link.constants), value)
        return SimpleNamespace(loaders={link.binding: loader}, memo={})

    record = {"id": "1", "name": "Green Tea", "price": 4.5, "description": None}
    items = [OrderItem(product_id=strawberry.ID("1"), quantity=n, unit_price=4.5)
             for n in (1, 2)]
    one, other = request(record), request(record)
    first = read(items[0], one)
    assert isinstance(first, Product) and first.name == "Green Tea"
    assert read(items[1], one) is first
    again = read(items[0], other)
    assert again is not first and again == first
    assert read(items[0], request(RuntimeError("refused"))) is NOTHING
    assert read(items[0], request(Stale(record, "products", 3.0))) is NOTHING


# --- the prefetch started from the records, before they are built -------------------

EVENTS: list[str] = []
PEOPLE = Rest("people", many="/people", param="id", batch="repeat", name="people")
ARTICLES = Rest("articles", one="/articles", batch="none", answer="list", name="articles")


@strawberry.type
class Person:
    id: strawberry.ID
    name: str


@strawberry.type
class Article:
    id: strawberry.ID
    title: str
    author_id: strawberry.Private[strawberry.ID | None] = source("authorId", private=True)
    author: Person | None = link(PEOPLE, key="author_id")

    def __post_init__(self) -> None:
        EVENTS.append(f"built {self.id}")


@strawberry.type
class ArticleQuery:
    articles: list[Article] | None = link(ARTICLES)


def articles_service(articles: list[dict[str, object]], people_status: int = 200
                     ) -> Recorder:
    def handler(request: httpx.Request) -> httpx.Response:
        EVENTS.append(f"call {request.url.path}")
        if request.url.path == "/articles":
            return httpx.Response(200, json=articles)
        if people_status != 200:
            return httpx.Response(people_status)
        return httpx.Response(200, json=[{"id": i, "name": f"P{i}"}
                                         for i in request.url.params.get_list("id")])
    return Recorder(httpx.MockTransport(handler))


ARTICLE_SETTINGS = {"backends": {"people": {"url": "http://people.test", "retries": 0},
                                 "articles": {"url": "http://articles.test"}}}


async def test_a_lists_links_are_requested_before_its_objects_are_built() -> None:
    """The authors' call leaves as soon as the articles' records are in, keyed as the
    built objects would hold them (a numeric id as a string, a missing one skipped);
    the articles are built while it is out."""
    EVENTS.clear()
    recorder = articles_service([{"id": 1, "title": "a", "authorId": 7},
                                 {"id": 2, "title": "b", "authorId": "8"},
                                 {"id": 3, "title": "c"}])
    async with gateway(ARTICLE_SETTINGS, recorder, graph=Graph(query=ArticleQuery)) as client:
        body = await gql(client, "{ articles { id author { name } } }")
    assert body == {"data": {"articles": [{"id": "1", "author": {"name": "P7"}},
                                          {"id": "2", "author": {"name": "P8"}},
                                          {"id": "3", "author": None}]}}
    assert EVENTS == ["call /articles", "call /people", "built 1", "built 2", "built 3"]
    assert [r.url.query.decode() for r in recorder.requests][1:] == ["id=7&id=8"]


async def test_a_key_that_would_not_build_leaves_the_objects_to_be_built_first() -> None:
    EVENTS.clear()
    recorder = articles_service([{"id": 1, "title": "a", "authorId": {"no": 1}}])
    async with gateway(ARTICLE_SETTINGS, recorder, graph=Graph(query=ArticleQuery)) as client:
        body = await gql(client, "{ articles { id author { name } } }")
    assert body["data"] == {"articles": None}
    assert body["errors"][0]["extensions"] == {"code": "BACKEND_BAD_RESPONSE",
                                               "service": "articles"}
    assert EVENTS == ["call /articles"]  # no call for an author nobody can ask for


async def test_records_that_fail_to_build_leave_their_links_loads_unread_quietly(
        caplog: pytest.LogCaptureFixture) -> None:
    """The authors' call is out before the articles turn out not to build (a title
    that is not a string); it fails too, and nobody reads it: the answer is the
    articles' error, and asyncio reports no exception never retrieved."""
    import gc

    EVENTS.clear()
    recorder = articles_service([{"id": 1, "title": 5, "authorId": 7}], people_status=503)
    with caplog.at_level("ERROR", logger="asyncio"):
        async with gateway(ARTICLE_SETTINGS, recorder,
                           graph=Graph(query=ArticleQuery)) as client:
            body = await gql(client, "{ articles { id author { name } } }")
            await asyncio.sleep(0)
        gc.collect()
    assert body["data"] == {"articles": None}
    assert body["errors"][0]["extensions"]["service"] == "articles"
    assert EVENTS == ["call /articles", "call /people"]
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
