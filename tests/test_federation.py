"""Tessera as a Federation 2 subgraph: `_service`, `_entities` batched through the
loaders, partial failure; and, where Node is here, a real composition
(@theguild/federation-composition) and a real gateway (@apollo/gateway) over
Tessera and a second subgraph that extends User."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Recorder, gateway, gql, live_server, process_answering

from tessera.app import create_app
from tessera.config import parse_settings

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "federation"
FEDERATED = {"graph": {"federation": True}}
ENTITIES = ("query($r: [_Any!]!) { _entities(representations: $r) { "
            "... on User { id name } ... on Product { name stock } } }")
pytestmark = pytest.mark.anyio


async def test_service_sdl_has_keys_and_the_default_schema_has_none() -> None:
    async with gateway(FEDERATED) as client:
        sdl = (await gql(client, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
    for kind in ("Order", "User", "Product"):
        assert f'type {kind} @key(fields: "id"' in sdl
    assert "@link(url: \"https://specs.apollo.dev/federation/v2.5\"" in sdl
    assert "@key" not in (ROOT / "schema.graphql").read_text()


async def test_entities_cost_one_call_per_type_and_keep_their_order() -> None:
    recorder = Recorder()
    representations = [{"__typename": "User", "id": i} for i in ("7", "456", "99999", "7")]
    representations += [{"__typename": "Product", "id": i} for i in ("1", "A1")]
    async with gateway(FEDERATED, recorder) as client:
        body = await gql(client, ENTITIES, {"r": representations})
    assert "errors" not in body
    assert body["data"]["_entities"] == [
        {"id": "7", "name": "Aziz"}, {"id": "456", "name": "Alice"}, None,
        {"id": "7", "name": "Aziz"}, {"name": "Widget", "stock": 42},
        {"name": "Green Tea", "stock": 120}]
    assert recorder.counts() == {"users": 1, "products": 1, "inventory": 1}


async def test_a_failed_backend_nulls_its_entities_with_the_service_named() -> None:
    settings = {**FEDERATED, "backends": {"users": {"url": "http://127.0.0.1:9",
                                                    "retries": 0}}}
    representations = [{"__typename": "User", "id": "7"}, {"__typename": "Product", "id": "1"}]
    async with gateway(settings) as client:
        body = await gql(client, ENTITIES, {"r": representations})
    assert body["data"]["_entities"] == [None, {"name": "Widget", "stock": 42}]
    [error] = body["errors"]
    assert error["path"] == ["_entities", 0]
    assert error["extensions"]["code"] == "BACKEND_UNAVAILABLE"
    assert error["extensions"]["service"] == "users"


async def test_representations_count_against_max_ids() -> None:
    recorder = Recorder()
    settings = {**FEDERATED, "limits": {"max_ids": 3}}
    async with gateway(settings, recorder) as client:
        body = await gql(client, ENTITIES, {"r": [{"__typename": "User", "id": str(n)}
                                                 for n in range(4)]})
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_IDS"
    assert recorder.requests == []


def test_export_schema_federation(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tessera", "export-schema", "--federation"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert 'type User @key(fields: "id"' in done.stdout


# --- a real composition and a real gateway ----------------------------------------------

def _node_tools() -> Path:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("Node and npm are not installed: the federation gateway test needs "
                    "them (@theguild/federation-composition, @apollo/gateway)")
    if not (HERE / "node_modules" / "@apollo" / "gateway").exists():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(f"npm ci failed (no npm registry?): {done.stderr[-300:]}")
    return HERE


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _node(script: str, *args: str, ready: str) -> Any:
    return process_answering(["node", script, *args], [ready], cwd=HERE, what=script)


def _compose(subgraphs: dict[str, tuple[str, str]], out: Path) -> dict[str, Any]:
    spec = {name: {"url": url, "sdl": sdl} for name, (url, sdl) in subgraphs.items()}
    (out / "subgraphs.json").write_text(json.dumps(spec))
    done = subprocess.run(["node", "compose.mjs", str(out / "subgraphs.json"),
                           str(out / "supergraph.graphql")], cwd=HERE, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"supergraph": (out / "supergraph.graphql").read_text()}


def test_a_real_gateway_queries_across_tessera_and_a_loyalty_subgraph(
        tmp_path: Path) -> None:
    _node_tools()
    from loyalty import app as loyalty_app  # a second subgraph, in Strawberry

    recorder_settings = {**FEDERATED, "server": {"log_level": "warning"}}
    calls: list[str] = []

    class Counting(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = Recorder()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request.url.host.removesuffix(".demo"))
            return await self.inner.handle_async_request(request)

    def tessera_app(down: bool) -> Any:
        settings = dict(recorder_settings)
        if down:
            settings["backends"] = {"users": {"url": "http://127.0.0.1:9", "retries": 0}}
        return create_app(parse_settings(settings), None if down else Counting())

    query = '{ order(id: "42") { status user { name points } } }'
    with live_server(tessera_app(False)) as tessera, live_server(loyalty_app()) as loyalty:
        sdl = httpx.post(f"{tessera}/graphql", json={"query": "{ _service { sdl } }"},
                         timeout=10).json()["data"]["_service"]["sdl"]
        other = httpx.post(f"{loyalty}/graphql", json={"query": "{ _service { sdl } }"},
                           timeout=10).json()["data"]["_service"]["sdl"]
        composed = _compose({"tessera": (f"{tessera}/graphql", sdl),
                             "loyalty": (f"{loyalty}/graphql", other)}, tmp_path)
        assert "join__Graph" in composed["supergraph"]
        port = _port()
        with _node("gateway.mjs", str(tmp_path / "supergraph.graphql"), str(port),
                   ready=f"http://127.0.0.1:{port}/"):
            calls.clear()
            answer = httpx.post(f"http://127.0.0.1:{port}/graphql", timeout=20,
                                json={"query": query}).json()
            counted = {name: calls.count(name) for name in set(calls)}
    assert answer == {"data": {"order": {"status": "SHIPPED",
                                         "user": {"name": "Aziz", "points": 70}}}}
    assert counted == {"orders": 1, "users": 1}  # one call each: Tessera owns order and name

    # with users down, through the gateway: the order, and an error naming users
    with live_server(tessera_app(True)) as tessera, live_server(loyalty_app()) as loyalty:
        composed = _compose({"tessera": (f"{tessera}/graphql", sdl),
                             "loyalty": (f"{loyalty}/graphql", other)}, tmp_path)
        port = _port()
        with _node("gateway.mjs", str(tmp_path / "supergraph.graphql"), str(port),
                   ready=f"http://127.0.0.1:{port}/"):
            partial = httpx.post(f"http://127.0.0.1:{port}/graphql", timeout=20,
                                 json={"query": query}).json()
    assert partial["data"]["order"]["status"] == "SHIPPED"
    assert partial["data"]["order"]["user"] is None
    errors = [e for e in partial["errors"] if e.get("path", [])[:2] == ["order", "user"]]
    assert errors and errors[0]["extensions"]["service"] == "users"
    assert errors[0]["extensions"]["code"] == "BACKEND_UNAVAILABLE"


async def test_production_hides_introspection_but_not_service() -> None:
    settings = {**FEDERATED, "server": {"profile": "production"}}
    async with gateway(settings) as client:
        service = await gql(client, "{ _service { sdl } }")
        introspection = await gql(client, "{ __schema { types { name } } }")
    assert "@key" in service["data"]["_service"]["sdl"]
    assert "data" not in introspection or introspection["data"] is None


async def test_any_graph_federates_the_blog_has_post_and_user() -> None:
    settings = {"graph": {"module": str(ROOT / "examples" / "blog" / "graph.py"),
                          "federation": True}}
    async with gateway(settings) as client:
        sdl = (await gql(client, "{ _service { sdl } }"))["data"]["_service"]["sdl"]
        body = await gql(client, ENTITIES.replace("Product { name stock }", "Post { title }"),
                         {"r": [{"__typename": "Post", "id": "3"},
                                {"__typename": "User", "id": "2"}]})
    assert 'type Post @key(fields: "id"' in sdl and 'type User @key(fields: "id"' in sdl
    assert body["data"]["_entities"][1] == {"id": "2", "name": "Ervin Howell"}
    assert body["data"]["_entities"][0]["title"]


@pytest.mark.parametrize("representation", [
    {"__typename": "Nope", "id": "1"}, {"id": "7"}, "x", {"__typename": "User"},
    {"__typename": "User", "id": {"a": 1}}, {"__typename": "Dashboard", "userId": "7"}])
async def test_a_bad_representation_is_that_items_bad_user_input(representation: Any) -> None:
    recorder = Recorder()
    async with gateway(FEDERATED, recorder) as client:
        body = await gql(client, ENTITIES, {"r": [representation,
                                                  {"__typename": "User", "id": "7"}]})
    assert body["data"]["_entities"] == [None, {"id": "7", "name": "Aziz"}]
    [error] = body["errors"]
    assert error["path"] == ["_entities", 0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert recorder.counts() == {"users": 1}
