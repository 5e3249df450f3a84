"""The Starlette application.

    app = create_app(settings)                       # embedded demo backends if no [backends]
    uvicorn tessera.app:create_app --factory         # reads TESSERA_CONFIG

The lifespan opens the backend clients once (their pools live as long as the
app) and hands them to requests as lifespan state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .aggregate.routes import Aggregator
from .backends import Backends
from .config import Settings, load_settings
from .graphql_view import GraphQLEndpoint
from .http import BodyLimit
from .schema import build_schema


def create_app(settings: Settings | None = None,
               transport: httpx.AsyncBaseTransport | None = None, *,
               batching: bool = True) -> Starlette:
    """`batching=False` only for the benchmark's naive baseline (see benchmarks/)."""
    settings = settings if settings is not None else load_settings()
    schema = build_schema(settings)
    aggregator = Aggregator.from_settings(settings, schema)
    graphql = BodyLimit(GraphQLEndpoint(schema, settings, batching=batching),
                        settings.server.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        backends = Backends.open(settings, transport)
        try:
            yield {"backends": backends}
        finally:
            await backends.aclose()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        backends: Backends = request.state.backends
        return JSONResponse({"status": "ready", "backends": backends.status()})

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        *aggregator.starlette_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.schema = schema
    return app
