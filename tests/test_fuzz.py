"""The schema fuzzed: generated queries and malformed bodies against a real server.

hypothesis-graphql writes valid-looking queries from the schema (any field,
any argument value, any depth); each goes over real HTTP to `tessera serve`'s
app with the embedded demo backends. Whatever the query, the answer is never a
5xx, never an unmasked error, and never leaks a URL, host or traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import live_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema

from tessera.app import create_app
from tessera.config import parse_settings
from tessera.schema import build_schema

LEAKS = ("Traceback", "http://", "https://", ".demo", "127.0.0.1", 'File "', "localhost")
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    # A tight deadline: a generated query may ask for thousands of rows.
    app = create_app(parse_settings({"server": {"request_timeout_ms": 3000}}))
    with live_server(app) as base:
        yield f"{base}/graphql"


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text[:500])
    body: Any = response.json()
    for result in body if isinstance(body, list) else [body]:
        for error in result.get("errors", []):
            assert error.get("extensions", {}).get("code") != "INTERNAL_SERVER_ERROR", error
            assert error["message"] != "Unexpected error."


@FUZZ
@given(query=from_schema(build_schema().as_str()))
def test_generated_queries(server: str, query: str) -> None:
    check(httpx.post(server, json={"query": query}, timeout=30))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10)


@FUZZ
@given(body=st.fixed_dictionaries({}, optional={
    "query": st.text() | json_values, "variables": json_values,
    "operationName": st.text() | json_values, "extensions": json_values}) | json_values)
def test_malformed_requests(server: str, body: Any) -> None:
    check(httpx.post(server, json=body, timeout=30))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_garbage_bodies(server: str, raw: bytes) -> None:
    response = httpx.post(server, content=raw, headers={"content-type": "application/json"},
                          timeout=30)
    check(response)
