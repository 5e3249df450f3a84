"""/graphql as the GraphQL-over-HTTP spec has it: media types, status codes, GET,
CSRF, CORS, batches and bad bodies, against the real app and demo backends."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Recorder, gateway

from tessera.web.graphql import GRAPHQL_RESPONSE, JSON, negotiate

pytestmark = pytest.mark.anyio

ORDER = '{ order(id: "42") { status user { name } } }'
GR = {"accept": GRAPHQL_RESPONSE}


async def post(settings: dict[str, Any] | None, body: Any, headers: dict[str, str] | None = None,
               recorder: Recorder | None = None) -> Any:
    async with gateway(settings, transport=recorder) as client:
        return await client.post("/graphql", json=body, headers=headers)


@pytest.mark.parametrize(("accept", "media"), [
    (None, JSON), ("*/*", JSON), ("application/json", JSON),
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
    (f"application/json, {GRAPHQL_RESPONSE};q=0.5", JSON),
    (f"{GRAPHQL_RESPONSE};q=0, */*", JSON),
    ("text/html", None), ("application/xml, text/plain", None),
])
def test_negotiation(accept: str | None, media: str | None) -> None:
    assert negotiate(accept) == media


async def test_graphql_response_json_request_errors_are_4xx_without_data() -> None:
    cases = ["{ order(id: ", "{ nope }",
             "query($id: ID!) { order(id: $id) { id } }"]  # syntax, validation, variables
    for query in cases:
        response = await post(None, {"query": query}, GR)
        assert response.status_code == 400, query
        assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
        body = response.json()
        assert "data" not in body and body["errors"][0]["message"]


async def test_application_json_request_errors_are_200_without_data() -> None:
    response = await post(None, {"query": "{ nope }"}, {"accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(JSON)
    assert "data" not in response.json()


async def test_partial_data_is_200_under_both_media_types() -> None:
    settings = {"backends": {"users": {"url": "http://127.0.0.1:9"}}}
    for accept in (GRAPHQL_RESPONSE, JSON):
        response = await post(settings, {"query": ORDER}, {"accept": accept})
        assert response.status_code == 200
        body = response.json()
        assert body["data"]["order"] == {"status": "SHIPPED", "user": None}
        assert body["errors"][0]["extensions"]["code"] == "BACKEND_UNAVAILABLE"


async def test_unacceptable_accept_is_406() -> None:
    response = await post(None, {"query": ORDER}, {"accept": "application/xml"})
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_get_serves_queries() -> None:
    async with gateway() as client:
        response = await client.get("/graphql", params={
            "query": "query($id: ID!) { order(id: $id) { status } }",
            "variables": '{"id": "42"}'})
    assert response.status_code == 200
    assert response.json() == {"data": {"order": {"status": "SHIPPED"}}}


async def test_get_refuses_anything_but_a_query_and_other_methods_are_405() -> None:
    async with gateway() as client:
        mutation = await client.get("/graphql", params={"query": "mutation { x }"})
        put = await client.put("/graphql", json={"query": ORDER})
    assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"
    assert put.status_code == 405 and put.headers["allow"] == "GET, POST"
    assert put.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", None])
async def test_post_a_browser_could_send_without_preflight_is_refused(ctype: str | None) -> None:
    recorder = Recorder()
    headers = {"content-type": ctype} if ctype else {}
    async with gateway(transport=recorder) as client:
        response = await client.post("/graphql", content=b'{"query": "{ order(id: \\"42\\") '
                                     b'{ id } }"}', headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_REFUSED"
    assert recorder.requests == []


async def test_a_preflight_header_passes_csrf_but_the_body_must_still_be_json() -> None:
    async with gateway() as client:
        response = await client.post("/graphql", content=b"{}", headers={
            "content-type": "text/plain", "apollo-require-preflight": "true"})
    assert response.status_code == 415


async def test_csrf_require_preflight_extends_the_rule_to_get() -> None:
    settings = {"server": {"csrf_require_preflight": True}}
    async with gateway(settings) as client:
        refused = await client.get("/graphql", params={"query": ORDER})
        allowed = await client.get("/graphql", params={"query": ORDER},
                                   headers={"apollo-require-preflight": "1"})
        posted = await client.post("/graphql", json={"query": ORDER})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "CSRF_REFUSED"
    assert allowed.status_code == 200 and posted.status_code == 200


async def test_cors_is_off_by_default_and_follows_the_config() -> None:
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    async with gateway() as client:
        off = await client.post("/graphql", json={"query": ORDER},
                                headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in off.headers
    settings = {"server": {"cors": {"allow_origins": ["https://app.example"]}}}
    async with gateway(settings) as client:
        ok = await client.options("/graphql", headers=preflight)
        other = await client.options("/graphql", headers={**preflight,
                                                          "origin": "https://evil.example"})
        actual = await client.post("/graphql", json={"query": ORDER},
                                   headers={"origin": "https://app.example"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
    assert actual.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in actual.headers["access-control-expose-headers"]


async def test_a_batch_runs_every_operation_on_shared_loaders() -> None:
    recorder = Recorder()
    body = [{"query": '{ order(id: "42") { user { name } } }'},
            {"query": '{ user(id: "7") { name } }'}, {"query": "{ nope }"}]
    response = await post(None, body, recorder=recorder)
    assert response.status_code == 200
    first, second, third = response.json()
    assert first["data"]["order"]["user"]["name"] == second["data"]["user"]["name"] == "Aziz"
    assert "data" not in third and third["errors"]
    assert recorder.counts() == {"orders": 1, "users": 1}  # user 7 fetched once


async def test_a_batch_over_the_cap_is_refused_before_anything_runs() -> None:
    recorder = Recorder()
    body = [{"query": ORDER}] * 3
    response = await post({"limits": {"max_batch_operations": 2}}, body, recorder=recorder)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
    assert recorder.requests == []


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not valid JSON"), (b"[]", "at least one"), (b"42", "JSON object"),
    (b'{"query": 7}', "'query' must be a string"),
    (b'{"query": "{ order(id: \\"1\\") { id } }", "variables": [1]}', "'variables'"),
    (b'{"query": "{ __typename }", "operationName": 5}', "'operationName'"),
    (b'{"variables": {}}', "no 'query'"),
])
async def test_bad_bodies_are_400_with_a_message_that_names_the_problem(
        content: bytes, message: str) -> None:
    async with gateway() as client:
        response = await client.post("/graphql", content=content,
                                     headers={"content-type": "application/json"})
    assert response.status_code in (200, 400)  # 200 only for a body that parsed (legacy JSON)
    assert message in response.json()["errors"][0]["message"]
    assert "Traceback" not in response.text


async def test_get_with_bad_variables_json_is_400() -> None:
    async with gateway() as client:
        response = await client.get("/graphql", params={"query": ORDER, "variables": "{"})
    assert response.status_code == 400
    assert "'variables' parameter" in response.json()["errors"][0]["message"]
