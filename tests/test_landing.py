"""The landing page at `/` and GraphiQL's page, against a live app with one backend down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import gateway, gql, open_users_circuit

from tessera.web import assets

pytestmark = pytest.mark.anyio

DOWN = {"backends": {"users": {"url": "http://127.0.0.1:9", "retries": 0}}}


def _row(page: str, service: str) -> str:
    match = re.search(rf"<tr><td>{service}</td>(.*?)</tr>", page)
    assert match, f"no row for {service}"
    return match.group(1)


async def test_landing_page_shows_links_routes_and_backend_states() -> None:
    async with gateway(DOWN) as client:
        before = (await client.get("/")).text
        await gql(client, '{ order(id: "42") { user { name } items { stock } } }')
        response = await client.get("/")
    page = response.text
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/html")
    assert "idle" in _row(before, "users")
    for link in ('href="/graphql"', 'href="/healthz"', 'href="/readyz"'):
        assert link in page
    assert "GET /api/orders/*/details" in page and "GET /api/dashboard/*" in page
    users, orders, inventory = (_row(page, s) for s in ("users", "orders", "inventory"))
    assert "failing" in users and "1 (1 failed)" in users and "http" in users
    assert ">up<" in orders and "1 (0 failed)" in orders and " ms" in orders
    assert ">up<" in inventory
    assert "idle" in _row(page, "reviews")
    assert 'name="viewport"' in page
    assert not re.search(r"""(src|href)=["']https?://""", page)  # no external assets
    assert "127.0.0.1" not in page  # backend addresses are not shown


async def test_landing_page_shows_an_open_circuit() -> None:
    async with open_users_circuit() as client:
        page = (await client.get("/")).text
        ready = (await client.get("/readyz")).json()
    assert "circuit open" in _row(page, "users")
    assert ready["backends"]["users"]["state"] == "circuit open"
    assert ready["backends"]["users"]["recent"]["failed"] == 2


async def test_landing_page_hides_graphiql_when_it_is_off() -> None:
    async with gateway({"server": {"profile": "production"}}) as client:
        page = (await client.get("/")).text
    assert 'href="/graphql"' not in page and "production" in page


async def test_graphiql_page_says_how_to_get_its_files_when_they_are_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "STATIC", tmp_path / "none")
    monkeypatch.setattr(assets, "STAMP", tmp_path / "none" / "versions.json")
    async with gateway() as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 503
    assert "python -m tessera.web.assets" in response.text


def test_graphiql_page_loads_nothing_from_another_origin() -> None:
    page = (Path(assets.__file__).with_name("graphiql.html")).read_text()
    sources = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
    assert sources and all(s.startswith("/graphiql/") or s == "data:," for s in sources)
