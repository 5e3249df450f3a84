"""REST aggregation routes over the engine, for HTTP and for the stdio protocol.

    aggregator = Aggregator.from_settings(settings, schema)      # plans checked here
    result = await aggregator.handle("/api/orders/123/details", backends, headers)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import strawberry
from graphql import parse, validate
from graphql.error import GraphQLSyntaxError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..backends import Backends
from ..config import Aggregation, Settings
from ..context import call_scope, new_context, request_id_from
from ..errors import ConfigError, RequestError
from ..observability.requests import observe
from ..schema import format_errors
from ..web.ratelimit import RateLimiter
from .engine import RouteResult, run_plan
from .plan import RoutePlan, build_plan

STRATEGIES = ("partial", "ignore", "fail_fast")
_WILDCARD = re.compile(r"^\$(\d+)$")


@dataclass
class Aggregator:
    plans: dict[str, RoutePlan]
    schema: strawberry.Schema
    request_timeout_ms: int | None = None
    limiter: RateLimiter | None = None

    @classmethod
    def from_settings(cls, settings: Settings, schema: strawberry.Schema,
                      limiter: RateLimiter | None = None) -> Aggregator:
        return cls(build_plans(settings.aggregations, schema), schema,
                   settings.server.request_timeout_ms, limiter)

    def match(self, path: str) -> tuple[RoutePlan, list[str]] | None:
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
        """Run the route for `path`; the result carries the backend calls it made."""
        if strategy is not None and strategy not in STRATEGIES:
            return RouteResult(400, {"error": "failure_strategy must be one of "
                                              + ", ".join(STRATEGIES)})
        found = self.match(path)
        if found is None:
            return RouteResult(404, {"error": "no such route"})
        plan, wildcards = found
        if plan.operation is not None:
            context = new_context(backends, headers, timeout_ms=plan.timeout_ms,
                                  request_id=request_id)
            result = await self._operation(plan, wildcards, context)
            result.calls = context.scope.report.calls
            return result
        scope = call_scope(headers, timeout_ms=plan.timeout_ms, request_id=request_id)
        result = await run_plan(plan, wildcards, backends, scope, strategy=strategy, down=down)
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

    def starlette_routes(self) -> list[Route]:
        return [Route(_starlette_path(pattern), self._endpoint_for(pattern), methods=["GET"])
                for pattern in self.plans]

    def _endpoint_for(self, pattern: str) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            return await self._serve(request, pattern)
        return endpoint

    async def _serve(self, request: Request, pattern: str) -> JSONResponse:
        """One route request, measured (metrics, span) and logged (one line)."""
        with observe("rest", request_id_from(request.headers), request.headers) as seen:
            seen.operation = pattern
            response, result = await self._respond(request, seen.request_id)
            seen.status = response.status_code
            if result is not None:
                seen.calls, seen.partial = result.calls, bool(result.partial)
                seen.fields["partial"] = result.partial
        return response

    async def _respond(self, request: Request,
                       rid: str) -> tuple[JSONResponse, RouteResult | None]:
        headers = {"x-request-id": rid}
        if self.limiter is not None:
            try:
                self.limiter.check(request)
            except RequestError as exc:
                return JSONResponse({"error": str(exc), "code": exc.code}, exc.status,
                                    headers={**headers, **exc.headers}), None
        result = await self.handle(request.url.path, request.state.backends, request.headers,
                                   strategy=request.query_params.get("failure_strategy"),
                                   request_id=rid)
        if result.partial:
            headers["x-tessera-partial"] = ",".join(result.partial)
        return JSONResponse(result.body, status_code=result.status, headers=headers), result


def _bind(value: Any, wildcards: list[str]) -> Any:
    if isinstance(value, str) and (m := _WILDCARD.match(value)):
        return wildcards[int(m.group(1)) - 1]
    return value


def _starlette_path(pattern: str) -> str:
    parts = pattern.split("/")
    count = 0
    for i, part in enumerate(parts):
        if part == "*":
            parts[i] = f"{{w{count}}}"
            count += 1
    return "/".join(parts)


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
