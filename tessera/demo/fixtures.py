"""Demo services from fixture files: one JSON file per backend, served with the
common REST shapes, so an example runs with no server of its own.

    graph = Graph(query=Query, demo=fixtures(Path(__file__).parent / "data"))

`data/posts.json` is the `posts` backend. Its top level is an object whose keys
are collections (`{"posts": [...]}`) served at `/posts`; a collection that is an
object (`{"inventory": {"A1": 120}}`) is a map. For a list collection:

    GET /posts                     every record
    GET /posts/{id}                the record whose `id` is that (404 when none)
    GET /posts?userId=1            records whose `userId` is 1
    GET /posts?id=1&id=2           repeated parameters: any of the values
    GET /shipments?order_ids=1,2   a comma list; `order_ids` filters `order_id`,
                                   `ids` filters `id` (the plural of a field)
    GET /orders?user_id=7&limit=3  `limit` keeps the first N

For a map: `GET /inventory?ids=A1,B2` answers the entries asked for. Values are
compared as strings, so ids that are numbers in JSON match ids in URLs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

if TYPE_CHECKING:
    from ..compose.graph import Demo


class DemoJSON(JSONResponse):
    """The demo services' JSON answer: Starlette's JSONResponse (compact, UTF-8),
    encoded by orjson (100 products: ~11 us against ~128), the same bytes but for
    an exponent's zeros (1e-7 where json writes 1e-07). A demo service's work is
    done within its latency, but its one core reads the calls that arrive during
    that work only after it: their latency starts that much later. A value orjson
    refuses (an integer past 64 bits) takes json's way."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError is one
            return super().render(content)


def fixtures(folder: Path | str) -> Demo:
    """A `Graph.demo`: one fixture service per `NAME.json` in `folder`."""
    from ..compose.graph import Demo

    folder = Path(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no fixture files (*.json) in {folder}")
    data = {}
    for path in files:  # read now: a broken file stops start-up, naming itself
        try:
            loaded = json.loads(path.read_text("utf-8"), parse_constant=_not_json)
            # what the services will write: a string with a lone surrogate
            # ("\ud800") is no UTF-8, and would fail every answer holding it
            json.dumps(loaded, ensure_ascii=False).encode("utf-8")
        except (OSError, ValueError) as exc:  # UnicodeError is a ValueError
            raise ValueError(f"fixture file {path.name}: {exc}") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, list | dict)
                                                   for v in loaded.values()):
            raise ValueError(f"fixture file {path.name}: the top level must be an object "
                             "of collections, e.g. {\"posts\": [...]}")
        data[path.stem] = loaded

    def services() -> dict[str, ASGIApp]:
        return {name: fixture_service(collections) for name, collections in data.items()}

    return Demo(tuple(data), services)


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON value")


def fixture_service(data: Mapping[str, Any]) -> Starlette:
    routes: list[Route] = []
    for name, records in data.items():
        if isinstance(records, dict):
            routes.append(Route(f"/{name}", _map_endpoint(records)))
        else:
            many, one = _list_endpoints(records)
            routes += [Route(f"/{name}", many), Route(f"/{name}/{{id}}", one)]
    return Starlette(routes=routes)


def _values(request: Request, name: str) -> list[str]:
    return [part for raw in request.query_params.getlist(name) for part in raw.split(",")
            if part]


def _field_for(param: str, sample: Mapping[str, Any]) -> str:
    if param in sample:
        return param
    if param.endswith("s") and param[:-1] in sample:
        return param[:-1]
    return param


def _list_endpoints(records: list[dict[str, Any]]) -> tuple[Any, Any]:
    sample = records[0] if records else {}

    async def many(request: Request) -> DemoJSON:
        chosen = records
        for param in dict.fromkeys(request.query_params.keys()):
            if param == "limit":
                continue
            field, wanted = _field_for(param, sample), set(_values(request, param))
            chosen = [r for r in chosen if str(r.get(field)) in wanted]
        limit = request.query_params.get("limit")
        if limit is not None:
            if not limit.isdigit():
                return DemoJSON({"error": "limit must be a number"}, 400)
            chosen = chosen[:int(limit)]
        return DemoJSON(chosen)

    async def one(request: Request) -> DemoJSON:
        wanted = request.path_params["id"]
        found = next((r for r in records if str(r.get("id")) == wanted), None)
        if found is None:
            return DemoJSON({"error": "not found"}, 404)
        return DemoJSON(found)

    return many, one


def _map_endpoint(entries: dict[str, Any]) -> Any:
    async def lookup(request: Request) -> DemoJSON:
        wanted = [v for param in request.query_params for v in _values(request, param)]
        return DemoJSON({k: entries[k] for k in wanted if k in entries})
    return lookup
