"""The examples, end to end: each graph served by Tessera over its demo services
run as real HTTP servers (`tessera demo-backends --config`), calls counted at the
services."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import gateway, gql, process_answering
from test_cli import free_port_run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.anyio


class Services:
    """An example's demo services as real servers; `calls()` counts per service."""

    def __init__(self, names: list[str], base: int) -> None:
        self.urls = {name: f"http://127.0.0.1:{base + i}" for i, name in enumerate(names)}
        self._seen = {name: 0 for name in names}

    def total(self, name: str) -> int:
        return int(httpx.get(f"{self.urls[name]}/_demo/calls", timeout=5).json()["calls"])

    def calls(self) -> dict[str, int]:
        """Calls since the last time this was asked, per service (zeros left out)."""
        out = {}
        for name in self.urls:
            now = self.total(name)
            if now != self._seen[name]:
                out[name] = now - self._seen[name]
            self._seen[name] = now
        return out

    def settings(self, example: str, **extra: Any) -> dict[str, Any]:
        backends = {name: {"url": url, "retries": 0} for name, url in self.urls.items()}
        return {"graph": {"module": str(EXAMPLES / example / "graph.py")},
                "backends": backends, **extra}


@contextmanager
def demo_services(example: str, names: list[str]) -> Iterator[Services]:
    base = free_port_run(len(names))
    services = Services(names, base)
    cmd = [sys.executable, "-m", "tessera", "demo-backends", "--config",
           str(EXAMPLES / example / "tessera.toml"), "--port", str(base)]
    with process_answering(cmd, [f"{url}/_demo/calls" for url in services.urls.values()],
                           cwd=ROOT, what="demo services"):
        yield services


BLOG = ["comments", "posts", "users"]  # the fixture files, in name order


async def test_blog_the_n_plus_one_query_costs_two_calls() -> None:
    with demo_services("blog", BLOG) as services:
        async with gateway(services.settings("blog")) as client:
            body = await gql(client, "{ posts { id title user { id name email } } }")
            counted = services.calls()
    posts = body["data"]["posts"]
    assert len(posts) == 100 and "errors" not in body
    assert posts[0]["user"] == {"id": "1", "name": "Leanne Graham",
                                "email": "leanne@example.com"}
    assert posts[99]["user"]["id"] == "10"
    assert counted == {"posts": 1, "users": 1}


async def test_blog_every_link_batches_and_misses_are_null() -> None:
    query = """{ user(id: "3") { name posts { id comments { id } } }
                 post(id: "12") { userId user { username } comments { email } }
                 missing: post(id: "9999") { id } }"""
    with demo_services("blog", BLOG) as services:
        async with gateway(services.settings("blog")) as client:
            body = await gql(client, query)
            counted = services.calls()
    data = body["data"]
    assert "errors" not in body
    assert [p["id"] for p in data["user"]["posts"]] == [str(n) for n in range(21, 31)]
    assert all(len(p["comments"]) == 5 for p in data["user"]["posts"])
    assert data["post"]["userId"] == "2" and data["post"]["user"]["username"] == "ervin2"
    assert data["missing"] is None
    # hop 1: user 3 (users), posts 12 and 9999 in one batch (posts); hop 2: user 3's
    # posts (posts), post 12's author (users) and comments (comments); hop 3: the
    # comments of user 3's ten posts, in one batch (comments)
    assert counted == {"users": 2, "posts": 2, "comments": 2}


async def test_blog_a_service_down_nulls_its_fields_with_the_service_named() -> None:
    with demo_services("blog", BLOG) as services:
        settings = services.settings("blog")
        settings["backends"]["users"]["url"] = "http://127.0.0.1:9"
        async with gateway(settings) as client:
            body = await gql(client, '{ post(id: "1") { title user { name } } }')
    assert body["data"]["post"]["user"] is None and body["data"]["post"]["title"]
    [error] = body["errors"]
    assert error["path"] == ["post", "user"]
    assert error["extensions"]["code"] == "BACKEND_UNAVAILABLE"
    assert error["extensions"]["service"] == "users"


async def test_blog_embedded_with_no_backends_configured() -> None:
    settings = {"graph": {"module": str(EXAMPLES / "blog" / "graph.py")}}
    async with gateway(settings) as client:
        body = await gql(client, '{ post(id: "100") { user { id } } }')
        route = await client.get("/api/posts/5")
    assert body == {"data": {"post": {"user": {"id": "10"}}}}
    assert route.json()["author"]["name"] == "Leanne Graham"


def test_blog_check_finds_no_n_plus_one() -> None:
    done = subprocess.run([sys.executable, "-m", "tessera", "check", "--config",
                           str(EXAMPLES / "blog" / "tessera.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: no N+1 path" in done.stdout


SHOP_AND_SHIPMENTS = ["orders", "users", "products", "inventory", "reviews", "shipments"]
TWENTY = [str(n) for n in range(1000, 1020)]


async def test_shipments_twenty_orders_cost_one_orders_and_one_shipments_call() -> None:
    query = "query($ids: [ID!]!) { orders(ids: $ids) { id shipments { carrier status } } }"
    with demo_services("shipments", SHOP_AND_SHIPMENTS) as services:
        async with gateway(services.settings("shipments")) as client:
            body = await gql(client, query, {"ids": TWENTY})
            counted = services.calls()
    assert "errors" not in body
    orders = body["data"]["orders"]
    assert [o["id"] for o in orders] == TWENTY
    assert all(len(o["shipments"]) == 1 and o["shipments"][0]["carrier"] for o in orders)
    assert counted == {"orders": 1, "shipments": 1}


async def test_shipments_down_nulls_each_orders_shipments_naming_the_service() -> None:
    query = "query($ids: [ID!]!) { orders(ids: $ids) { id status shipments { carrier } } }"
    with demo_services("shipments", SHOP_AND_SHIPMENTS) as services:
        settings = services.settings("shipments")
        settings["backends"]["shipments"]["url"] = "http://127.0.0.1:9"
        async with gateway(settings) as client:
            body = await gql(client, query, {"ids": TWENTY})
    orders = body["data"]["orders"]
    assert [o["shipments"] for o in orders] == [None] * 20
    assert all(o["status"] for o in orders)  # the rest of each order is there
    assert sorted(e["path"][1] for e in body["errors"]) == list(range(20))
    assert {(e["path"][2], e["extensions"]["code"], e["extensions"]["service"])
            for e in body["errors"]} == {("shipments", "BACKEND_UNAVAILABLE", "shipments")}


def test_extending_the_shop_leaves_the_shop_alone() -> None:
    from tessera.compose import load_graph
    from tessera.schema import build_schema

    extended = load_graph(str(EXAMPLES / "shipments" / "graph.py"))
    assert "shipments: [Shipment!]" in build_schema(graph=extended).as_str()
    assert "Shipment" not in build_schema().as_str()
    assert (ROOT / "schema.graphql").read_text().strip() == build_schema().as_str().strip()


# --- the README's walkthrough is examples/library, word for word --------------------

LIBRARY = EXAMPLES / "library"


def _readme_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### From an empty folder to a served graph")
    return readme[start:readme.index("### The declaration API")]


@pytest.mark.parametrize(("language", "path"), [
    ("json", "data/authors.json"), ("json", "data/books.json"), ("python", "graph.py"),
    ("toml", "tessera.toml")])
def test_the_walkthrough_shows_the_example_files(language: str, path: str) -> None:
    import re

    blocks = re.findall(rf"```{language}\n(.*?)```", _readme_section(), re.S)
    assert (LIBRARY / path).read_text().strip() in [b.strip() for b in blocks]


async def test_the_walkthrough_serves_its_graph_over_real_services() -> None:
    with demo_services("library", ["authors", "books"]) as services:
        async with gateway(services.settings("library")) as client:
            body = await gql(client, "{ books { title author { name } } }")
            counted = services.calls()
    assert "errors" not in body
    assert body["data"]["books"][2] == {"title": "Invisible Cities",
                                        "author": {"name": "Italo Calvino"}}
    assert counted == {"books": 1, "authors": 1}  # as the README says


def test_the_walkthrough_check_passes() -> None:
    done = subprocess.run([sys.executable, "-m", "tessera", "check", "--config",
                           str(LIBRARY / "tessera.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "ok: no N+1 path" in done.stdout, done.stdout
