"""The Starlette application.

    app = create_app(settings)                       # embedded demo backends if no [backends]
    uvicorn tessera.app:create_app --factory         # reads TESSERA_CONFIG

The lifespan opens the backend clients once (their pools live as long as the
app) and hands them to requests as lifespan state.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .compose.graph import Graph
from .config import Settings, load_settings
from .gateway import Gateway
from .observability import metrics, tracing
from .observability.logs import configure_logging, write_lines
from .observability.metrics import metrics_endpoint
from .resilience.shared import SharedState
from .web import ide
from .web.admin import Admin
from .web.body import BodyLimit
from .web.graphql import GraphQLHTTP
from .web.health import Phase, healthz, readyz
from .web.landing import endpoint
from .web.ratelimit import RateLimiter
from .web.rest import RestRoutes, http_error
from .web.server import guarded_protocol, settle_heap


class TesseraApp(Starlette):
    """The Starlette app, with `/graphql` (the hot path) handed straight to its
    endpoint when no middleware is configured: Starlette's error and exception
    middleware and its router add a layer per message and per await for nothing
    there (the endpoint answers every error itself; an unexpected exception still
    reaches uvicorn, which logs it and answers 500, as the error middleware would)."""

    graphql: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.graphql is not None and scope["type"] == "http" \
                and scope["path"] == "/graphql" and not scope.get("root_path"):
            scope["app"] = self
            await self.graphql(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def serve_app() -> Starlette:
    """The factory `tessera serve` gives uvicorn's worker processes: the config from
    TESSERA_CONFIG, and logging set up as the config says, in each worker."""
    settings = load_settings()
    configure_logging(settings.server)
    tracing.setup(settings.tracing)
    guarded_protocol(settings.server)  # this worker's slow-client deadlines
    app = create_app(settings)
    settle_heap()
    return app


def create_app(settings: Settings | None = None,
               transport: httpx.AsyncBaseTransport | None = None, *,
               graph: Graph | None = None, batching: bool = True,
               clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The app serving `graph` (else the one the settings name). `transport` carries
    every backend call when given (tests); `clock` drives breakers and budgets;
    `batching=False` only for the benchmark's naive baseline (see benchmarks/)."""
    settings = settings if settings is not None else load_settings()
    gateway = Gateway.build(settings, graph)
    schema, aggregator = gateway.schema, gateway.aggregator
    limiter = RateLimiter(settings.rate_limit) if settings.rate_limit.enabled else None
    graphql = BodyLimit(GraphQLHTTP(schema, settings, limiter=limiter, batching=batching,
                                    named=gateway.named),
                        settings.server.max_body_bytes)

    phase = Phase()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        shared = SharedState(settings.redis, clock=clock)
        backends = gateway.open_backends(transport, clock=clock, shared=shared)
        phase.ready = True
        try:
            yield {"backends": backends, "shared": shared}
        finally:
            phase.ready = False
            await backends.aclose()
            await shared.aclose()
            write_lines()  # the request lines still waiting (a worker exits without atexit)
            metrics.flush()  # and the figures kept since the last flush

    landing = endpoint(sorted(aggregator.plans), graphiql=settings.server.graphiql,
                       metrics=True, profile=settings.server.profile)
    routes: list[BaseRoute] = [
        Route("/", landing),
        Route("/graphql", graphql),  # every method: GraphQLHTTP answers 405 itself
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/admin/cache/purge", Admin(settings.admin.secret()).purge, methods=["POST"]),
    ]
    if settings.server.graphiql:
        routes.append(ide.files())
    cors = settings.server.cors
    middleware = [Middleware(CORSMiddleware, allow_origins=cors.allow_origins,
                             allow_methods=["GET", "POST"], allow_headers=cors.allow_headers,
                             allow_credentials=cors.allow_credentials,
                             expose_headers=["x-request-id", "x-tessera-partial", "retry-after"],
                             max_age=cors.max_age_s)] if cors.allow_origins else []
    app = TesseraApp(routes=routes, lifespan=lifespan, middleware=middleware,
                     exception_handlers={HTTPException: http_error})
    if not middleware:
        app.graphql = graphql
    app.router.default = RestRoutes(aggregator, limiter)  # routes, else a JSON 404
    app.state.settings = settings
    app.state.schema = schema
    app.state.gateway = gateway
    app.state.phase = phase
    return app
