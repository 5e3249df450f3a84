"""REST aggregation routes over the engine, for HTTP (`tessera.web.rest`) and for
the stdio protocol.

    aggregator = Aggregator(build_plans(routes, schema), schema)   # plans checked there
    result = await aggregator.handle("/api/orders/123/details", backends, headers)

Paths are matched as the client sent them (percent-encoded); each wildcard's
segment is decoded exactly once, so `%252e` is the id `%2e`, `%0A` a line feed
that travels to the backend encoded again, and `%2F` a slash inside one id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import strawberry
from graphql import parse, validate
from graphql.error import GraphQLSyntaxError

from ..backends import Backends
from ..config import Aggregation
from ..context import call_scope, new_context
from ..errors import ConfigError
from ..schema import format_errors
from .engine import RouteResult, run_plan
from .plan import RoutePlan, build_plan

STRATEGIES = ("partial", "ignore", "fail_fast")
_WILDCARD = re.compile(r"^\$(\d+)$")


@dataclass
class Aggregator:
    plans: dict[str, RoutePlan]
    schema: strawberry.Schema
    request_timeout_ms: int | None = None
    named: dict[str, Any] = field(default_factory=dict)  # the graph's bindings, by name

    def match(self, path: str) -> tuple[RoutePlan, list[str]] | None:
        """The route for a percent-encoded path, and its wildcards decoded once."""
        parts = path.split("/")
        for pattern, plan in self.plans.items():
            want = pattern.split("/")
            if len(want) == len(parts) and all(w in ("*", p) for w, p in zip(want, parts,
                                                                             strict=True)):
                return plan, [unquote(p) for w, p in zip(want, parts, strict=True) if w == "*"]
        return None

    async def handle(self, path: str, backends: Backends, headers: Mapping[str, str], *,
                     strategy: str | None = None, down: frozenset[str] = frozenset(),
                     request_id: str | None = None) -> RouteResult:
        """Run the route for `path` (percent-encoded, as the client sent it); the
        result carries the backend calls it made. The route's `timeout_ms` and
        `server.request_timeout_ms`, whichever is smaller, bound it."""
        if strategy is not None and strategy not in STRATEGIES:
            return RouteResult(400, {"error": "failure_strategy must be one of "
                                     + ", ".join(STRATEGIES), "code": "BAD_REQUEST"})
        found = self.match(path)
        if found is None:
            return RouteResult(404, {"error": "no such route", "code": "NOT_FOUND"})
        plan, wildcards = found
        timeout_ms = min(plan.timeout_ms, self.request_timeout_ms or plan.timeout_ms)
        if plan.operation is not None:
            context = new_context(backends, headers, timeout_ms=timeout_ms,
                                  request_id=request_id, named=self.named)
            scope = context.scope
            running = self._operation(plan, wildcards, context)
        else:
            scope = call_scope(headers, timeout_ms=timeout_ms, request_id=request_id,
                               budget=backends.answers)
            running = run_plan(plan, wildcards, backends, scope, strategy=strategy, down=down)
        try:
            result = await running
        finally:
            scope.release()  # its answers are in the result now
        result.calls = scope.report.calls
        return result

    async def _operation(self, plan: RoutePlan, wildcards: list[str],
                         context: Any) -> RouteResult:
        variables = {name: _bind(value, wildcards) for name, value in plan.variables.items()}
        result = await self.schema.execute(plan.operation, variable_values=variables,
                                           context_value=context)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = format_errors(result.errors)
        return RouteResult(200, body)


def _bind(value: Any, wildcards: list[str]) -> Any:
    if isinstance(value, str) and (m := _WILDCARD.match(value)):
        return wildcards[int(m.group(1)) - 1]
    return value


def build_plans(aggregations: Mapping[str, Aggregation],
                schema: strawberry.Schema) -> dict[str, RoutePlan]:
    plans = {pattern: build_plan(pattern, agg) for pattern, agg in aggregations.items()}
    for pattern, plan in plans.items():
        if plan.operation is not None:
            _check_operation(pattern, plan.operation, schema)
    return plans


def _check_operation(pattern: str, operation: str, schema: strawberry.Schema) -> None:
    key = f'aggregations."{pattern}".operation'
    try:
        document = parse(operation)
    except GraphQLSyntaxError as exc:
        raise ConfigError(key, exc.message) from None
    errors = validate(schema._schema, document)
    if errors:
        raise ConfigError(key, errors[0].message)
