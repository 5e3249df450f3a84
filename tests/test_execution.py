"""The executor's short way (tessera/schema/execution.py) never answers differently
from graphql-core's own execution.

Every query runs twice on the same app, once with Tessera's execution class and
lean link resolvers (`lean_links`), once with Strawberry's plain class and its own
resolver wrappers, and the answers (data and errors, with their
paths) must be equal: for queries generated from the shop's and the blog's
schemas by hypothesis-graphql over their demo services, for the benchmark's
queries, and for values the short way must hand back to graphql-core (a wrong
type, null in a non-null field, an exception as a value, a failing attribute).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from conftest import FakeClock, Recorder, gateway, gql, live_server
from faults import FaultServer
from graphql import GraphQLObjectType
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import from_schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from tessera.app import create_app
from tessera.compose import Graph
from tessera.config import Settings, parse_settings
from tessera.schema import build_schema
from tessera.schema.execution import Execution

REFERENCE = StrawberryGraphQLCoreExecutionContext
BLOG = Path(__file__).resolve().parent.parent / "examples" / "blog" / "graph.py"
GENERATED = settings(max_examples=120, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


def _served(config: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    app = create_app(parse_settings({"server": {"request_timeout_ms": 5000}, **config}))
    with live_server(app) as base:
        yield app, f"{base}/graphql"


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[Any, str]]:
    yield from _served({})


@pytest.fixture(scope="module")
def blog() -> Iterator[tuple[Any, str]]:
    yield from _served({"graph": {"module": str(BLOG)}})


def _answer(url: str, query: str, variables: dict[str, Any] | None) -> dict[str, Any]:
    response = httpx.post(url, json={"query": query, "variables": variables or {}},
                          timeout=30)
    body: dict[str, Any] = response.json()
    return {"status": response.status_code, "data": body.get("data"),
            "errors": body.get("errors")}


def same_both_ways(served: tuple[Any, str], query: str,
                   variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answer with Tessera's execution, checked equal to graphql-core's own."""
    app, url = served
    schema = app.state.schema
    fast = schema.execution_context_class
    assert issubclass(fast, Execution)
    ours = _answer(url, query, variables)
    lean = [(field, field.resolve) for kind in schema._schema.type_map.values()
            if isinstance(kind, GraphQLObjectType) for field in kind.fields.values()
            if hasattr(field.resolve, "strawberry")]  # lean_links: Strawberry's wrapper back
    assert lean
    schema.execution_context_class = REFERENCE
    for field, resolve in lean:
        field.resolve = resolve.strawberry
    try:
        theirs = _answer(url, query, variables)
    finally:
        schema.execution_context_class = fast
        for field, resolve in lean:
            field.resolve = resolve
    assert ours == theirs, query
    return ours


@GENERATED
@given(query=from_schema(build_schema().as_str()))
def test_generated_shop_queries_answer_as_graphql_core_does(
        shop: tuple[Any, str], query: str) -> None:
    same_both_ways(shop, query)


@GENERATED
@given(query=from_schema(build_schema(parse_settings(
    {"graph": {"module": str(BLOG)}})).as_str()))
def test_generated_blog_queries_answer_as_graphql_core_does(
        blog: tuple[Any, str], query: str) -> None:
    same_both_ways(blog, query)


BENCHMARK = [
    ("query($id: ID!) { order(id: $id) { id status total user { id name email } items "
     "{ quantity unitPrice stock inStock product { id name price } } } }", {"id": "42"}),
    ("query($id: ID!, $limit: Int!) { user(id: $id) { name orders(limit: $limit) "
     "{ id total items { quantity product { name price } } } } }", {"id": "7", "limit": 20}),
    ("query($ids: [ID!]!) { products(ids: $ids) { name price stock } }",
     {"ids": [str(n) for n in range(1, 120)] + ["nope", "1"]}),
    ("{ p: products(ids: [\"1\", \"2\"]) { n: name name ...F s: stock } }"
     " fragment F on Product { price stock }", None),
]


@pytest.mark.parametrize(("query", "variables"), BENCHMARK)
def test_the_benchmark_queries_answer_as_graphql_core_does(
        shop: tuple[Any, str], query: str, variables: dict[str, Any] | None) -> None:
    answer = same_both_ways(shop, query, variables)
    assert answer["data"] and not answer["errors"]


def test_blog_n_plus_one_query_answers_as_graphql_core_does(blog: tuple[Any, str]) -> None:
    answer = same_both_ways(blog, "{ posts { id title user { id name email } } }")
    assert len(answer["data"]["posts"]) == 100


def test_a_lists_linked_field_is_read_for_the_whole_list_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The blog's N+1 query: each post's author is read in one column for the 100
    posts (the 10 authors' objects found once each), not post by post; the answer
    is graphql-core's."""
    from tessera.compose import fields

    calls: list[tuple[int, int | None]] = []
    made = fields._column

    def counting(*args: Any) -> Any:
        column = made(*args)

        def counted(parents: list[Any], context: Any) -> Any:
            out = column(parents, context)
            calls.append((len(parents), None if out is None else len({id(v) for v in out})))
            return out
        return counted

    monkeypatch.setattr(fields, "_column", counting)
    for served in _served({"graph": {"module": str(BLOG)}}):
        answer = same_both_ways(served, "{ posts { id title user { id name email } } }")
    assert len(answer["data"]["posts"]) == 100
    assert calls == [(100, 10)]


def test_a_column_reads_each_distinct_key_once_and_gives_way_on_odd_keys() -> None:
    """A column finds each distinct key's value once; where a key is not a string or
    null (`1` and `True` are one dict key but two loader keys), a parent has no key,
    or a read fails, it answers None and each parent is read on its own."""
    from operator import itemgetter

    from tessera.compose.fields import _column

    seen: list[str] = []
    column = _column(itemgetter("k"), lambda context: (lambda key: seen.append(key) or key * 2),
                     lambda: "none")
    assert column([{"k": "a"}, {"k": "b"}, {"k": "a"}, {"k": None}], None) == \
        ["aa", "bb", "aa", "none"]
    assert seen == ["a", "b"]
    assert column([{"k": 1}, {"k": True}], None) is None
    assert column([{"k": "a"}, {}], None) is None
    failing = _column(itemgetter("k"), lambda context: (lambda key: 1 / 0), lambda: None)
    assert failing([{"k": "a"}], None) is None
    nulls = _column(itemgetter("k"), lambda context: str, lambda: None)
    assert nulls([{"k": None}], None) == [None]


class Boom:
    @property
    def label(self) -> str:
        raise RuntimeError("attribute failed")


@strawberry.type
class Item:
    name: str | None
    count: int
    ratio: float | None
    flag: bool


@strawberry.type
class Odd:
    label: str | None


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return [
            Item(name="fine", count=1, ratio=0.5, flag=True),
            Item(name=None, count=2, ratio=None, flag=False),
            Item(name="wrong int", count="x", ratio=1.0, flag=True),  # type: ignore[arg-type]
            Item(name="null in non-null", count=None, ratio=1.0, flag=True),  # type: ignore[arg-type]
            Item(name="float for int", count=2.5, ratio=1.0, flag=True),  # type: ignore[arg-type]
            Item(name=ValueError("a value that is an error"), count=3,  # type: ignore[arg-type]
                 ratio=float("nan"), flag=True),
            Item(name="inf", count=10 ** 20, ratio=float("inf"), flag="yes"),  # type: ignore[arg-type]
        ]

    @strawberry.field
    def odd(self) -> list[Odd | None]:
        return [Boom(), Odd(label="ok")]  # type: ignore[list-item]


async def _alike(schema: Any, query: str) -> tuple[Any, Any]:
    """`query` executed both ways (Tessera's, then graphql-core's): the same data and
    the same errors at the same paths. Both results."""
    fast = schema.execution_context_class
    ours = await schema.execute(query)
    schema.execution_context_class = REFERENCE
    try:
        theirs = await schema.execute(query)
    finally:
        schema.execution_context_class = fast
    assert ours.data == theirs.data
    assert [(e.message, e.path) for e in ours.errors or []] == \
        [(e.message, e.path) for e in theirs.errors or []]
    return ours, theirs


def _executed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The object types whose fields go through execute_fields, from now on."""
    seen: list[str] = []
    original = Execution.execute_fields

    def counting(self: Any, parent_type: Any, *args: Any) -> Any:
        seen.append(parent_type.name)
        return original(self, parent_type, *args)

    monkeypatch.setattr(Execution, "execute_fields", counting)
    return seen


async def _judged_alike(root: type, query: str, kind: str, field: str) -> None:
    """`query` over a graph of `root`, executed both ways: the same data and the same
    errors at the same paths (at least five of them), `kind.field` read in place."""
    schema = build_schema(Settings(), Graph(query=root))
    fast = schema.execution_context_class
    assert issubclass(fast, Execution) and field in fast.readers[kind]
    ours, _ = await _alike(schema, query)
    assert ours.data is not None and len(ours.errors or []) >= 5


@pytest.mark.anyio
async def test_values_graphql_core_must_judge_get_its_errors_at_the_same_paths() -> None:
    await _judged_alike(Query, "{ items { name count ratio flag } odd { label } }",
                        "Item", "count")


@strawberry.type
class Listed:
    @strawberry.field
    def items(self) -> list[Item | None]:
        fine = Item(name="fine", count=1, ratio=0.5, flag=True)
        return [fine, None, AttributeError("an error as an item, with a name"), fine]

    @strawberry.field
    def strict(self) -> list[Item] | None:
        fine = Item(name="fine", count=1, ratio=0.5, flag=True)
        return [fine, fine, None]  # type: ignore[list-item]


@pytest.mark.anyio
async def test_a_list_an_item_of_which_cannot_be_read_gets_its_errors_at_their_paths() -> None:
    """A list is completed by its plan only when every item reads; otherwise (an
    exception as an item, even one with an attribute of the field's name; null in
    a list of non-null items) graphql-core completes the whole list."""
    schema = build_schema(Settings(), Graph(query=Listed))
    ours = await schema.execute("{ items { name __typename } strict { name } }")
    schema.execution_context_class = REFERENCE
    theirs = await schema.execute("{ items { name __typename } strict { name } }")
    assert ours.data == theirs.data
    assert [(e.message, e.path) for e in ours.errors or []] == \
        [(e.message, e.path) for e in theirs.errors or []]
    assert ours.data == {"items": [{"name": "fine", "__typename": "Item"}, None, None,
                                   {"name": "fine", "__typename": "Item"}], "strict": None}
    assert [e.path for e in ours.errors or []] == [["items", 2], ["strict", 2]]


@strawberry.type
class Bounds:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item(name="max", count=2 ** 31 - 1, ratio=-0.0, flag=False),
                Item(name="min", count=-2 ** 31, ratio=3, flag=True),  # an int for a float
                Item(name="integral", count=2.0, ratio=1e308, flag=True),  # type: ignore[arg-type]
                Item(name="bools", count=True, ratio=False, flag=True)]


@pytest.mark.anyio
async def test_a_plan_answers_scalars_at_their_bounds_as_graphql_core_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled plan lets an Int through as it is only within 32 bits and a Float
    only when finite; every other value it coerces as graphql-core does (a float
    that is a whole number to an int, an int to a float, a bool to 1 or 0), and the
    list is still the plan's (no Item executed graphql-core's way)."""
    executed = _executed(monkeypatch)
    ours, theirs = await _alike(build_schema(Settings(), Graph(query=Bounds)),
                                "{ items { name count ratio flag } }")
    assert not ours.errors
    assert executed == ["Bounds"]  # the root only
    assert ours.data is not None and theirs.data is not None
    counts = [(type(i["count"]), i["count"]) for i in ours.data["items"]]
    assert counts == [(int, 2 ** 31 - 1), (int, -2 ** 31), (int, 2), (int, 1)]
    assert counts == [(type(i["count"]), i["count"]) for i in theirs.data["items"]]
    assert [type(i["ratio"]) for i in ours.data["items"]] == \
        [type(i["ratio"]) for i in theirs.data["items"]] == [float, float, float, int]


OUT_OF_BOUNDS = [(2 ** 31, 0.5), (-2 ** 31 - 1, 0.5), (1, float("inf")),
                 (1, float("-inf")), (1, float("nan"))]


@pytest.mark.anyio
@pytest.mark.parametrize(("count", "ratio"), OUT_OF_BOUNDS)
async def test_a_plan_hands_a_number_beyond_its_scalar_to_graphql_core(
        count: int, ratio: float) -> None:
    """The one value of a list that a 32-bit Int or a finite Float cannot hold sends
    the list graphql-core's way, which reports it at its path."""
    @strawberry.type
    class One:
        @strawberry.field
        def items(self) -> list[Item | None]:
            fine = Item(name="fine", count=1, ratio=0.5, flag=True)
            return [fine, Item(name="beyond", count=count, ratio=ratio, flag=True), fine]

    ours, _ = await _alike(build_schema(Settings(), Graph(query=One)),
                           "{ items { name count ratio } }")
    assert [e.path for e in ours.errors or []] == \
        [["items", 1, "count" if count != 1 else "ratio"]]


class Lookalike:
    """Answers every attribute, `__await__` too: graphql-core takes it as awaitable."""

    def __getattr__(self, name: str) -> Any:
        return lambda *_: iter(())


@strawberry.type
class Lookalikes:
    @strawberry.field
    def items(self) -> list[Item | None]:
        fine = Item(name="fine", count=1, ratio=0.5, flag=True)
        return [fine, Lookalike(), fine]  # type: ignore[list-item]


@pytest.mark.anyio
async def test_a_value_whose_type_answers_any_attribute_is_judged_each_time() -> None:
    """Whether a value is awaitable is remembered by its type only where the type
    alone decides it: a type with its own `__getattr__` is asked again each time,
    and graphql-core's answer stands (an error at the item's path)."""
    from tessera.schema.plans import ORDINARY

    schema = build_schema(Settings(), Graph(query=Lookalikes))
    for _ in range(2):
        ours, _ = await _alike(schema, "{ items { name } }")
        assert [e.path for e in ours.errors or []] == [["items", 1]]
    assert Lookalike not in ORDINARY and Item in ORDINARY


class _Raising:
    @property
    def one(self) -> Item:
        raise RuntimeError("attribute failed")


@strawberry.type
class Holder:
    one: Item | None
    must: Item
    many: list[Item | None] | None
    strict: list[Item]


@strawberry.type
class Holders:
    @strawberry.field
    def holders(self) -> list[Holder | None]:
        fine = Item(name="fine", count=1, ratio=0.5, flag=True)
        return [
            Holder(one=fine, must=fine, many=[fine, None], strict=[fine]),
            Holder(one=None, must=None, many=None, strict=[fine]),  # type: ignore[arg-type]
            Holder(one=ValueError("an error as a value"), must=fine,  # type: ignore[arg-type]
                   many="not a list", strict=[None]),  # type: ignore[arg-type]
            Holder(one={"name": "a dict"}, must=fine, many=[1, fine],  # type: ignore[arg-type]
                   strict=fine),  # type: ignore[arg-type]
            _Raising(),  # type: ignore[list-item]
        ]


@pytest.mark.anyio
async def test_records_own_objects_and_lists_get_the_same_errors_both_ways() -> None:
    """Object and list fields a record holds itself (no resolver) are read in place;
    every value graphql-core must judge is judged the same."""
    await _judged_alike(Holders, "{ holders { one { name count } must { name } "
                        "many { name flag } strict { count } } }", "Holder", "many")


@pytest.mark.anyio
async def test_a_stale_prefetched_scalar_is_still_reported_at_its_path() -> None:
    """A linked scalar read in place (stock, loaded with its products) that is a stale
    answer goes through its resolver, which reports it."""
    clock = FakeClock()
    query = '{ products(ids: ["1", "2"]) { name stock } }'
    async with FaultServer("json", b'{"1": 42, "2": 7}') as inventory, \
            gateway({"backends": {"inventory": {"url": inventory.url, "retries": 0,
                                                "stale_if_error_s": 60}}},
                    clock=clock) as client:
        fresh = await gql(client, query)
        inventory.mode = "503"
        clock.advance(5)
        stale = await gql(client, query)
    assert [p["stock"] for p in fresh["data"]["products"]] == [42, 7]
    assert stale["data"] == fresh["data"] and "errors" not in stale
    assert sorted(s["path"] for s in stale["extensions"]["tessera"]["stale"]) == \
        [["products", 0, "stock"], ["products", 1, "stock"]]


@pytest.mark.anyio
async def test_a_linked_number_beyond_its_scalar_is_reported_at_its_path() -> None:
    """A linked Int read in place (stock) that a 32-bit Int cannot hold goes
    graphql-core's way: null with its error at its path, as graphql-core has it."""
    query = '{ products(ids: ["1", "2"]) { name stock } }'
    async with FaultServer("json", b'{"1": 1099511627776, "2": 7}') as inventory, \
            gateway({"backends": {"inventory": {"url": inventory.url, "retries": 0}}}) \
            as client:
        ours = await _gql_both_ways(client, query)
    assert [p["stock"] for p in ours["data"]["products"]] == [None, 7]
    assert [e["path"] for e in ours["errors"]] == [["products", 0, "stock"]]


@pytest.mark.anyio
async def test_linked_scalars_of_other_types_in_a_list_are_judged_one_by_one() -> None:
    """A list's linked Int (stock) is read for the whole list at once when every load
    settled with an int or null; one value of another type (a string, a bool, a
    float) sends each product's stock through its own check, which refuses that
    one at its path and keeps the rest, as graphql-core's way does."""
    query = '{ products(ids: ["1", "2", "3", "4", "5"]) { name stock } }'
    answers = [  # (inventory's body, the stock answered, the items refused)
        (b'{"1": "lots", "2": 7, "3": true, "4": null, "5": 2.5}',
         [None, 7, None, None, None], [0, 2, 4]),
        # a bool alone, which GraphQL's Int would take as 1
        (b'{"1": 7, "2": true, "3": 7, "4": 0, "5": 1}', [7, None, 7, 0, 1], [1])]
    for body, stock, refused in answers:
        async with FaultServer("json", body) as inventory, \
                gateway({"backends": {"inventory": {"url": inventory.url, "retries": 0}}}) \
                as client:
            ours = await _gql_both_ways(client, query)
        assert [p["stock"] for p in ours["data"]["products"]] == stock
        assert [(e["path"], e["extensions"]["code"], e["message"]) for e in ours["errors"]] \
            == [(["products", index, "stock"], "BACKEND_BAD_RESPONSE",
                 "The inventory service sent a value that is not an Int.") for index in refused]


async def _gql_both_ways(client: Any, query: str) -> dict[str, Any]:
    """The gateway's answer, equal to graphql-core's own execution's."""
    schema = client.app.state.schema
    fast = schema.execution_context_class
    ours = await gql(client, query)
    schema.execution_context_class = REFERENCE
    try:
        theirs = await gql(client, query)
    finally:
        schema.execution_context_class = fast
    assert ours == theirs
    return ours


class BadProducts(httpx.AsyncBaseTransport):
    """The demo services, except that products answers one good record and ones
    the Product type refuses (no name, a price that is a string)."""

    def __init__(self) -> None:
        self.demo = Recorder()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "products.demo":
            return await self.demo.handle_async_request(request)
        return httpx.Response(200, json=[
            {"id": "A1", "name": "Green Tea", "price": 15.0},
            {"id": "B2", "price": "cheap"}])


@pytest.mark.anyio
@pytest.mark.parametrize("query", [
    '{ order(id: "42") { items { quantity product { id name price } } products { name } } }',
    '{ order(id: "42") { items { product { name stock } } } }',  # its own prefetch below
    '{ orders(ids: ["42", "42", "1"]) { id items { product { name } } } }',
    '{ products(ids: ["A1", "B2", "A1"]) { id name price } }',  # one refused of a list
])
async def test_refused_linked_records_get_the_same_errors_both_ways(query: str) -> None:
    async with gateway(transport=BadProducts()) as client:
        ours = await _gql_both_ways(client, query)
    assert any(e["extensions"]["code"] == "BACKEND_BAD_RESPONSE" for e in ours["errors"])
    if query.startswith("{ products"):  # the refused record alone is null
        assert ours["data"]["products"] == [
            {"id": "A1", "name": "Green Tea", "price": 15.0}, None,
            {"id": "A1", "name": "Green Tea", "price": 15.0}]
        assert [e["path"] for e in ours["errors"]] == [["products", 1]]


DIRECTED = [
    ("query($with: Boolean!) { order(id: \"42\") { id user @include(if: $with) { name } "
     "items { quantity product { name price @skip(if: $with) } } } }", "with"),
    ("query($without: Boolean!) { products(ids: [\"1\", \"2\"]) { ...P } }"
     " fragment P on Product { name stock @skip(if: $without) price }", "without"),
    ("query($on: Boolean!) { order(id: \"42\") { id ... @include(if: $on) "
     "{ status items { stock } } } }", "on"),
]


@pytest.mark.parametrize(("query", "flag"), DIRECTED)
def test_directives_read_each_requests_variables(
        shop: tuple[Any, str], query: str, flag: str) -> None:
    """A document with @skip/@include collects its fields per request: the same
    document with the flag flipped answers differently, each way as graphql-core does."""
    first = same_both_ways(shop, query, {flag: True})
    second = same_both_ways(shop, query, {flag: False})
    assert first["data"] and not first["errors"] and second["data"] and not second["errors"]
    assert first["data"] != second["data"]
    again = same_both_ways(shop, query, {flag: True})
    assert again == first


def test_a_documents_fields_are_collected_once_then_kept(
        shop: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without directives, which fields each object executes is collected at the
    document's first run and kept: later runs (other variables too) collect nothing
    and answer as graphql-core does."""
    import tessera.schema.execution as execution

    collected: list[str] = []
    original = execution.collect_subfields

    def counting(*args: Any) -> Any:
        collected.append(args[4].name)  # the return type's name
        return original(*args)

    monkeypatch.setattr(execution, "collect_subfields", counting)
    query = ("query($id: ID!) { order(id: $id) { id user { name } items { quantity "
             "product { ...P } } } } fragment P on Product { name price stock }")
    first = same_both_ways(shop, query, {"id": "42"})
    assert sorted(set(collected)) == ["Order", "OrderItem", "Product", "User"]
    collected.clear()
    again = same_both_ways(shop, query, {"id": "42"})
    other = same_both_ways(shop, query, {"id": "1"})
    assert again == first and other["data"] != first["data"] and not other["errors"]
    assert collected == []


PLANNED = [  # (query, variables, served, the object types whose fields are executed)
    (BENCHMARK[0][0], BENCHMARK[0][1], "shop", ["Query"]),
    (BENCHMARK[1][0], BENCHMARK[1][1], "shop", ["Query", "User"]),
    (BENCHMARK[2][0], {"ids": [str(n) for n in range(1, 101)]}, "shop", ["Query"]),
    ("{ posts { id title user { id name email } } }", None, "blog", ["Query"]),
    ("{ o: order(id: \"42\") { t: __typename items { __typename p: product { __typename "
     "name } q: quantity } } }", None, "shop", ["Query"]),
]


@pytest.mark.parametrize(("query", "variables", "served", "executed"), PLANNED)
def test_objects_and_lists_of_fields_read_in_place_are_completed_by_a_plan(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, query: str,
        variables: dict[str, Any] | None, served: str, executed: list[str]) -> None:
    """An object, or the items of a list, whose selected fields are all read in
    place (leaves, settled links, a record's own objects and lists, __typename) is
    answered from a plan made per selection: none of their fields goes through
    execute_fields (a user with `orders(limit:)`, a field with arguments, does),
    and the answer is graphql-core's."""
    seen = _executed(monkeypatch)
    answer = same_both_ways(request.getfixturevalue(served), query, variables)
    assert answer["data"] and not answer["errors"]
    assert sorted(set(seen)) == executed


def test_a_plan_over_its_size_goes_graphql_cores_way(
        shop: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan reading more fields than plans.MAX_FIELDS is not generated: its objects'
    fields are executed graphql-core's way, and the answer is the same."""
    from tessera.schema import plans

    query = 'query { products(ids: ["1", "2", "3"]) { id name price stock } }'
    planned = same_both_ways(shop, query)
    monkeypatch.setattr(plans, "MAX_FIELDS", 3)
    seen = _executed(monkeypatch)
    big = same_both_ways(shop, query.replace("query", "query Big"))  # a new document
    assert big["data"] == planned["data"] and not big["errors"]
    assert seen.count("Product") == 3


def test_what_makes_collection_depend_on_the_request() -> None:
    from graphql import parse

    from tessera.schema.execution import fixed_selections

    def fixed(text: str) -> bool:
        document = parse(text)
        operation = document.definitions[0]
        fragments = {d.name.value: d for d in document.definitions[1:]}  # type: ignore[attr-defined]
        return fixed_selections(operation, fragments)

    assert fixed("{ a { b ...F ... on T { c } } } fragment F on T { d }")
    assert not fixed("query($v: Boolean!) { a @include(if: $v) { b } }")
    assert not fixed("{ a { ...F } } fragment F on T { d @skip(if: true) }")
    assert not fixed("{ a { ... @defer { b } } }")
    assert not fixed("query @cached { a }")
