"""Everything built once from the settings, before serving: the graph, its schema,
the REST routes, and which backends need a client. Every check that can stop
start-up happens here, with a message naming the key and the problem.

    gateway = Gateway.build(settings)               # ConfigError when it cannot serve
    backends = gateway.open_backends()              # in the app's lifespan
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import strawberry

from .aggregate.routes import Aggregator, build_plans
from .backends import Backends
from .compose.binding import Rest
from .compose.graph import Graph, backend_names, check_backends, graph_for, routes_for
from .config import Settings
from .schema import build_schema


@dataclass
class Gateway:
    settings: Settings
    graph: Graph
    schema: strawberry.Schema
    aggregator: Aggregator
    backends: list[str]  # every backend a client is made for
    named: dict[str, Rest]  # the graph's bindings by name

    @classmethod
    def build(cls, settings: Settings, graph: Graph | None = None) -> Gateway:
        graph = graph or graph_for(settings)
        routes = routes_for(settings, graph)
        check_backends(settings, graph, routes)
        schema = build_schema(settings, graph)
        named = graph.named_bindings()
        aggregator = Aggregator(build_plans(routes, schema), schema,
                                settings.server.request_timeout_ms, named)
        return cls(settings, graph, schema, aggregator,
                   backend_names(settings, graph, routes), named)

    def open_backends(self, transport: httpx.AsyncBaseTransport | None = None, *,
                      clock: Callable[[], float] = time.monotonic,
                      shared: Any = None) -> Backends:
        from .demo import embedded_transport

        return Backends.open(self.settings, self.backends, transport=transport,
                             embedded=lambda: embedded_transport(self.graph), clock=clock,
                             shared=shared)
