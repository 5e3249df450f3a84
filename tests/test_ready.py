"""A query text seen before runs straight through graphql-core (tessera/schema,
`_Tessera.execute`), and answers exactly as Strawberry's own path does.

Each case is sent to two fresh gateways: to one cold (Strawberry's path: parse,
validate, the extension hooks), to the other after a request with the same text
has made that text ready. Status, body and Cache-Control must be equal, and the
warm gateway must have skipped Strawberry's machinery where the ready path
applies (counted by its per-request extension instances), and taken it where it
must not (a limit broken, an operation that cannot be chosen).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import Recorder, gateway

Q1 = ("query($id: ID!) { order(id: $id) { id status total user { id name email } items "
      "{ quantity unitPrice stock inStock product { id name price } } } }")
Q2 = ("query($id: ID!, $limit: Int!) { user(id: $id) { name orders(limit: $limit) "
      "{ id total items { quantity product { name price } } } } }")
Q3 = "query($ids: [ID!]!) { products(ids: $ids) { name price stock } }"
TWO = ('query A { order(id: "1") { id user { name } } } '
       'query B { product(id: "2") { name price } }')


@dataclass
class Case:
    query: str
    variables: dict[str, Any] | None = None
    operation: str | None = None
    extensions: dict[str, Any] | None = None
    method: str = "POST"
    warm: dict[str, Any] = field(default_factory=dict)  # the warming request's changes
    ready: bool = True  # the ready path answers it (else Strawberry's, from the start)
    settings: dict[str, Any] = field(default_factory=dict)
    failing: str | None = None  # a service answering 503


CASES = {
    "data": Case(Q1, {"id": "42"}, warm={"variables": {"id": "1"}}),
    "cost asked for": Case(Q1, {"id": "42"}, extensions={"cost": True}),
    "variables cost": Case(Q3, {"ids": ["1", "2", "3"]}, extensions={"cost": True},
                           warm={"variables": {"ids": ["9"]}}),
    "a range broken": Case(Q2, {"id": "7", "limit": 1000}, ready=False,
                           warm={"variables": {"id": "7", "limit": 5}}),
    "too many ids": Case(Q3, {"ids": [str(n) for n in range(600)]}, ready=False,
                         warm={"variables": {"ids": ["1"]}}),
    "too costly": Case(Q2, {"id": "7", "limit": 100}, ready=False,
                       settings={"limits": {"max_cost": 50}},
                       warm={"variables": {"id": "7", "limit": 1}}),
    "bad variables": Case(Q1, {"id": {"not": "an id"}}, warm={"variables": {"id": "1"}}),
    "a variable missing": Case(Q1, {}, warm={"variables": {"id": "1"}}),
    "float for an Int": Case(Q2, {"id": "7", "limit": 5.5},
                             warm={"variables": {"id": "7", "limit": 5}}),
    "operation chosen": Case(TWO, operation="B", warm={"operation": "A"}),
    "operation not chosen": Case(TWO, ready=False, warm={"operation": "A"}),
    "operation unknown": Case(TWO, operation="C", ready=False, warm={"operation": "A"}),
    "GET": Case(Q1, {"id": "42"}, method="GET", warm={"method": "POST"}),
    "a backend failing": Case(Q1, {"id": "42"}, failing="users"),
    "completeness report": Case(Q1, {"id": "42"}, failing="inventory",
                                settings={"server": {"completeness_report": True}}),
    "a null root": Case('{ order(id: "..") { id } }'),
    "introspection off": Case("{ __schema { types { name } } }", ready=False,
                              settings={"server": {"introspection": False}}),
}


class Failing(httpx.AsyncBaseTransport):
    """The demo services, with one of them answering 503 to everything."""

    def __init__(self, service: str | None) -> None:
        self.service = service
        self.demo = Recorder()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == f"{self.service}.demo":
            return httpx.Response(503, json={"error": "down"})
        return await self.demo.handle_async_request(request)


async def _send(client: httpx.AsyncClient, case: Case, **changes: Any) -> dict[str, Any]:
    query = changes.get("query", case.query)
    variables = changes.get("variables", case.variables)
    operation = changes.get("operation", case.operation)
    extensions = changes.get("extensions", case.extensions)
    if changes.get("method", case.method) == "GET":
        params = {"query": query}
        if variables is not None:
            params["variables"] = json.dumps(variables)
        if operation:
            params["operationName"] = operation
        response = await client.get("/graphql", params=params,
                                    headers={"accept": "application/json"})
    else:
        body: dict[str, Any] = {"query": query, "variables": variables}
        if operation:
            body["operationName"] = operation
        if extensions:
            body["extensions"] = extensions
        response = await client.post("/graphql", json=body)
    return {"status": response.status_code, "body": response.json(),
            "cache-control": response.headers.get("cache-control")}


def _counting(client: httpx.AsyncClient) -> list[int]:
    """How many times Strawberry's path has made a request's extensions."""
    schema = client.app.state.schema  # type: ignore[attr-defined]
    made = [0]
    original = schema.get_extensions

    def get_extensions(*args: Any, **kwargs: Any) -> Any:
        made[0] += 1
        return original(*args, **kwargs)

    schema.get_extensions = get_extensions
    return made


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(CASES))
async def test_a_ready_document_answers_as_strawberrys_path_does(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    """Same answer, and the same error lines logged (`process_errors`)."""
    case = CASES[name]
    caplog.set_level(logging.INFO, logger="tessera.graphql")
    async with gateway(case.settings, Failing(case.failing)) as cold:
        caplog.clear()
        expected = await _send(cold, case)
        expected["logged"] = _errors_logged(caplog)
    async with gateway(case.settings, Failing(case.failing)) as warm:
        made = _counting(warm)
        await _send(warm, case, **case.warm)
        before = made[0]
        caplog.clear()
        got = await _send(warm, case)
        got["logged"] = _errors_logged(caplog)
        assert got == expected
        assert made[0] - before == (0 if case.ready else 1)
    if case.failing:
        assert expected["logged"]


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tessera.graphql"]


@pytest.mark.anyio
async def test_a_ready_document_is_checked_against_limits_each_time() -> None:
    async with gateway() as client:
        ok = await _send(client, CASES["a range broken"], variables={"id": "7", "limit": 5})
        assert ok["status"] == 200 and ok["body"]["data"]["user"]["orders"]
        for _ in range(2):
            refused = await _send(client, CASES["a range broken"])
            assert refused["body"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert "data" not in refused["body"]
