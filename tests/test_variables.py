"""Variables taken as they are (tessera.schema.variables) and batch URLs built in one
pass (tessera.backends.urls): each compared with the way it stands in for, on
generated input, and the short ways shown to be taken."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

import pytest
from conftest import Recorder, gateway, gql
from graphql import build_schema, parse
from graphql.execution import executor as graphql_executor
from graphql.execution.values import get_variable_values
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.backends.urls import MAX_LIST_CHARS, encode, key_list, list_chunks
from tessera.schema.variables import prepared, quick_variables

SCHEMA = build_schema("""
    enum Color { RED GREEN }
    input Point { x: Int! }
    type Query { f(a: ID, b: ID!, c: [ID!]!, d: [ID], e: String, f: Int!, g: [Int!],
                   h: Float, i: [Float!]!, j: Boolean!, k: Color, l: Point, m: [[Int]],
                   n: [String!]): Int }
""")
TYPES = {"a": "ID", "b": "ID!", "c": "[ID!]!", "d": "[ID]", "e": "String", "f": "Int!",
         "g": "[Int!]", "h": "Float", "i": "[Float!]!", "j": "Boolean!", "k": "Color",
         "l": "Point", "m": "[[Int]]", "n": "[String!]"}
DOCUMENT = parse("query(" + ", ".join(f"${n}: {t}" for n, t in TYPES.items()) + ") { f("
                 + ", ".join(f"{n}: ${n}" for n in TYPES) + ") }")
OPERATION = DOCUMENT.definitions[0]

SCALARS = (st.none() | st.booleans() | st.text(max_size=3)
           | st.integers(min_value=-2 ** 33, max_value=2 ** 33)
           | st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(["x", "y"]), inner, max_size=2),
                      max_leaves=8)
FIT = {"ID": st.text(max_size=3), "String": st.text(max_size=3), "Boolean": st.booleans(),
       "Int": st.integers(min_value=-2 ** 31, max_value=2 ** 31 - 1),
       "Float": st.floats(allow_nan=False, allow_infinity=False)}


def typed(value: Any) -> Any:
    """A value with the type of every part spelled out (1, 1.0 and True differ)."""
    if isinstance(value, list):
        return ["list", [typed(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", sorted((k, typed(v)) for k, v in value.items())]
    if isinstance(value, float) and math.isnan(value):
        return ["float", "nan"]
    return [type(value).__name__, value]


def graphql_cores(inputs: dict[str, Any]) -> Any:
    return get_variable_values(SCHEMA, OPERATION.variable_definitions, inputs)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(sorted(TYPES)), VALUES))
def test_variables_taken_as_they_are_are_what_graphql_core_makes_of_them(
        inputs: dict[str, Any]) -> None:
    ready = prepared(SCHEMA, DOCUMENT, None)
    assert ready is not None and ready.operation is OPERATION
    quick = quick_variables(ready.variables, inputs)
    if quick is None:
        return  # graphql-core's own way, errors and all
    theirs = graphql_cores(inputs)
    assert not isinstance(theirs, list), theirs
    assert typed(quick.coerced) == typed(theirs.coerced)
    assert quick.sources == theirs.sources
    for name, value in quick.coerced.items():
        if isinstance(value, list):
            assert value is not inputs[name]  # a list copied, as graphql-core copies it


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.fixed_dictionaries({
    "b": FIT["ID"], "c": st.lists(FIT["ID"], max_size=120), "f": FIT["Int"],
    "i": st.lists(FIT["Float"], max_size=5), "j": FIT["Boolean"]}, optional={
    "a": st.none() | FIT["ID"], "d": st.none() | st.lists(st.none() | FIT["ID"]),
    "e": FIT["String"], "g": st.lists(FIT["Int"]), "h": FIT["Float"],
    "n": st.lists(FIT["String"])}))
def test_the_usual_shapes_are_taken_as_they_are(inputs: dict[str, Any]) -> None:
    ready = prepared(SCHEMA, DOCUMENT, None)
    assert ready is not None
    quick = quick_variables(ready.variables, inputs)
    assert quick is not None
    assert typed(quick.coerced) == typed(graphql_cores(inputs).coerced)  # type: ignore[union-attr]


@pytest.mark.parametrize(("inputs", "why"), [
    ({"b": 1, "c": [], "f": 1, "i": [], "j": True}, "an int for an ID is made a string"),
    ({"b": "1", "c": "1", "f": 1, "i": [], "j": True}, "one value for a list"),
    ({"b": "1", "c": [], "f": 2.0, "i": [], "j": True}, "a float for an Int"),
    ({"b": "1", "c": [], "f": 2 ** 31, "i": [], "j": True}, "an Int beyond 32 bits"),
    ({"b": "1", "c": [], "f": 1, "i": [1], "j": True}, "an int for a Float"),
    ({"b": "1", "c": [None], "f": 1, "i": [], "j": True}, "null for an ID!"),
    ({"c": [], "f": 1, "i": [], "j": True}, "a non-null variable left out"),
    ({"b": "1", "c": [], "f": 1, "i": [], "j": True, "k": "RED"}, "an enum"),
    ({"b": "1", "c": [], "f": 1, "i": [], "j": True, "l": {"x": 1}}, "an input object"),
    ({"b": "1", "c": [], "f": 1, "i": [], "j": True, "m": [[1]]}, "a list of lists"),
])
def test_values_to_convert_or_judge_go_graphql_cores_way(inputs: dict[str, Any],
                                                         why: str) -> None:
    ready = prepared(SCHEMA, DOCUMENT, None)
    assert ready is not None
    assert quick_variables(ready.variables, inputs) is None, why


def test_only_documents_build_would_accept_are_prepared() -> None:
    two = parse("query A { f(b: \"1\", c: [], f: 1, i: [], j: true) } query B { f(b: \"2\", "
                "c: [], f: 1, i: [], j: true) }")
    assert prepared(SCHEMA, two, None) is None  # which one: graphql-core's error
    assert prepared(SCHEMA, two, "C") is None
    chosen = prepared(SCHEMA, two, "B")
    assert chosen is not None and chosen.operation is two.definitions[1]
    defaulted = parse("query($f: Int! = 3) { f(b: \"1\", c: [], f: $f, i: [], j: true) }")
    ready = prepared(SCHEMA, defaulted, None)
    assert ready is not None and quick_variables(ready.variables, {}) is None  # the default



def coercions(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[dict[str, Any]]:
    """The variables each call of graphql-core's get_variable_values in `module` got."""
    seen: list[dict[str, Any]] = []
    original = module.get_variable_values

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "get_variable_values", counting)
    return seen


@pytest.mark.anyio
async def test_the_gateway_takes_a_list_of_ids_as_it_is_and_converts_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    coerced = coercions(monkeypatch, graphql_executor)
    query = "query($ids: [ID!]!) { products(ids: $ids) { id name } }"
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        await gql(client, query, {"ids": ["3"]})  # the document's first run: Strawberry's way
        coerced.clear()
        as_strings = await gql(client, query, {"ids": ["1", "2"]})
        assert coerced == []  # taken as they are
        as_numbers = await gql(client, query, {"ids": [1, 2]})
        assert coerced == [{"ids": [1, 2]}]  # graphql-core makes them strings
        one = await gql(client, query, {"ids": "1"})
        null = await gql(client, query, {"ids": ["1", None]})
    assert as_strings == as_numbers
    assert [p["id"] for p in as_strings["data"]["products"]] == ["1", "2"]
    assert [p["id"] for p in one["data"]["products"]] == ["1"]
    assert null["errors"][0]["message"] == (
        "Variable '$ids' has invalid value at [1]: Expected value of non-null type "
        "'ID!' not to be None.")
    assert recorder.counts() == {"products": 4}


KEYS = st.lists(st.text(max_size=4) | st.from_regex(r"[A-Za-z0-9]{1,6}", fullmatch=True),
                max_size=30)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(KEYS)
def test_a_batch_url_is_each_key_encoded_and_joined(keys: list[str]) -> None:
    assert key_list("/p", "ids", keys) == "/p?ids=" + ",".join(encode(k) for k in keys)
    assert key_list("/p?a=1", "id", keys, repeat=True) == \
        "/p?a=1&" + "&".join(f"id={encode(k)}" for k in keys)


def chunked(keys: list[str], size: int) -> list[list[str]]:
    """list_chunks's rule, key by key (the reference for its one-pass way)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for key in keys:
        width = len(quote(key, safe=",")) + 1
        if current and (len(current) >= size or chars + width > MAX_LIST_CHARS):
            chunks.append(current)
            current, chars = [], 0
        current.append(key)
        chars += width
    return [*chunks, current] if current else chunks


@settings(max_examples=300, deadline=None, derandomize=True)
@given(KEYS, st.integers(min_value=1, max_value=40))
def test_batch_chunks_are_the_same_as_key_by_key(keys: list[str], size: int) -> None:
    assert list_chunks(keys, size) == chunked(keys, size)
    long = [k * 900 for k in keys if k.isalnum() and k.isascii()]
    assert list_chunks(long, size) == chunked(long, size)  # split by length too


@pytest.mark.anyio
async def test_the_limits_take_a_ranged_int_as_it_is_and_convert_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tessera.schema import limits

    coerced = coercions(monkeypatch, limits)
    query = "query($id: ID!, $n: Int!) { user(id: $id) { orders(limit: $n) { id } } }"
    async with gateway() as client:
        as_int = await gql(client, query, {"id": "7", "n": 2})
        assert coerced == []  # the range check read it as it is
        as_float = await gql(client, query, {"id": "7", "n": 2.0})
        assert coerced == [{"id": "7", "n": 2.0}]  # graphql-core makes it 2
        too_many = await gql(client, query, {"id": "7", "n": 1000})
    assert as_int == as_float and len(as_int["data"]["user"]["orders"]) == 2
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
