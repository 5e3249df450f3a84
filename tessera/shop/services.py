"""The shop's five demo services, as small Starlette apps over one SQLite store.

They speak exactly the shop's backend REST contract (README), so the gateway
cannot tell them from real services (the drill knobs, latency and forced 503s,
are added around any graph's demo services by `tessera.demo`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ..demo.fixtures import DemoJSON
from .store import open_store

Handler = Callable[[Request], Any]


def _ids(request: Request, name: str = "ids") -> list[str]:
    raw = request.query_params.get(name, "")
    return [part for part in raw.split(",") if part]


def _placeholders(values: Iterable[Any]) -> str:
    return ",".join("?" for _ in values)


def _bad_request(problem: str) -> DemoJSON:
    return DemoJSON({"error": problem}, status_code=400)


def _order(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "user_id": row["user_id"], "status": row["status"],
            "created_at": row["created_at"], "items": json.loads(row["items"]),
            "total": row["total"]}


def _entity_handlers(db: sqlite3.Connection, table: str,
                     to_json: Callable[[sqlite3.Row], dict[str, Any]]) -> tuple[Handler, Handler]:
    """`GET /{table}/{id}` and `GET /{table}?ids=a,b` for a table keyed by id."""

    async def one(request: Request) -> Response:
        row = db.execute(f"SELECT * FROM {table} WHERE id = ?",
                         (request.path_params["id"],)).fetchone()
        if row is None:
            return DemoJSON({"error": "not found"}, status_code=404)
        return DemoJSON(to_json(row))

    async def many(request: Request) -> Response:
        if "ids" not in request.query_params:
            return _bad_request("ids is required")
        ids = _ids(request)
        rows = db.execute(f"SELECT * FROM {table} WHERE id IN ({_placeholders(ids)})", ids)
        return DemoJSON([to_json(row) for row in rows])

    return one, many


def _entity_service(db: sqlite3.Connection, table: str,
                    to_json: Callable[[sqlite3.Row], dict[str, Any]]) -> list[Route]:
    one, many = _entity_handlers(db, table, to_json)
    return [Route(f"/{table}", many), Route(f"/{table}/{{id}}", one)]


def _orders_service(db: sqlite3.Connection) -> list[Route]:
    one, many = _entity_handlers(db, "orders", _order)

    async def listing(request: Request) -> Response:
        if "user_id" not in request.query_params:
            return await many(request)  # type: ignore[no-any-return]
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            return _bad_request("limit must be an integer")
        rows = db.execute("SELECT * FROM orders WHERE user_id = ? "
                          "ORDER BY created_at DESC, id DESC LIMIT ?",
                          (request.query_params["user_id"], max(0, min(limit, 100))))
        return DemoJSON([_order(row) for row in rows])

    return [Route("/orders", listing), Route("/orders/{id}", one)]


def _inventory_service(db: sqlite3.Connection) -> list[Route]:
    async def stock(request: Request) -> Response:
        ids = _ids(request)
        rows = db.execute("SELECT product_id, stock FROM inventory "
                          f"WHERE product_id IN ({_placeholders(ids)})", ids)
        return DemoJSON({row["product_id"]: row["stock"] for row in rows})

    return [Route("/inventory", stock)]


def _reviews_service(db: sqlite3.Connection) -> list[Route]:
    async def reviews(request: Request) -> Response:
        if "product_ids" in request.query_params:
            ids = _ids(request, "product_ids")
            rows = db.execute(f"SELECT * FROM reviews WHERE product_id IN "
                              f"({_placeholders(ids)}) ORDER BY id", ids)
        elif "user_id" in request.query_params:
            rows = db.execute("SELECT * FROM reviews WHERE user_id = ? ORDER BY id",
                              (request.query_params["user_id"],))
        else:
            return _bad_request("product_ids or user_id is required")
        return DemoJSON([dict(row) for row in rows])

    return [Route("/reviews", reviews)]


_store: sqlite3.Connection | None = None


def shared_store() -> sqlite3.Connection:
    """The process's demo store, seeded on first use (read-only afterwards)."""
    global _store
    if _store is None:
        _store = open_store()
    return _store


def services(db: sqlite3.Connection | None = None) -> dict[str, ASGIApp]:
    """One ASGI app per service name (the shop's `Graph.demo`)."""
    db = db or shared_store()
    routes = {
        "orders": _orders_service(db),
        "users": _entity_service(db, "users", dict),
        "products": _entity_service(db, "products", dict),
        "inventory": _inventory_service(db),
        "reviews": _reviews_service(db),
    }
    return {name: Starlette(routes=r) for name, r in routes.items()}
