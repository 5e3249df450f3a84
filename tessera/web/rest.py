"""The REST edge: aggregation routes over HTTP, and the JSON answer for any path
or method nothing else serves.

    rest = RestRoutes(aggregator, limiter)
    app.router.default = rest          # after every other route has had its chance

Routes are matched on the raw, percent-encoded path (`scope["raw_path"]`), so an
id is decoded once, by the aggregator, and `%2F` inside an id does not split it.
Every error body has one shape: `{"error": message, "code": CODE}` (a failed
backend under `fail_fast` adds `"service"`).
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..aggregate.engine import RouteResult
from ..aggregate.routes import Aggregator
from ..context import first_values, request_id_from
from ..errors import RequestError
from ..observability.requests import observe
from .ratelimit import RateLimiter

_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
          413: "PAYLOAD_TOO_LARGE"}


def error_response(status: int, message: str, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The one shape of a REST error body."""
    return JSONResponse({"error": message, "code": code or _CODES.get(status, "ERROR")},
                        status, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (a wrong method on /healthz, ...) in the same shape."""
    assert isinstance(exc, HTTPException)
    message = {404: "Not found.", 405: "Method not allowed."}.get(exc.status_code,
                                                                  str(exc.detail))
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


class RestRoutes:
    """ASGI app for every path the router did not match: a route, or a JSON 404."""

    def __init__(self, aggregator: Aggregator, limiter: RateLimiter | None = None) -> None:
        self.aggregator = aggregator
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = _raw_path(scope)
        found = self.aggregator.match(path)
        if found is None:
            response: Response = error_response(404, "No such route.")
        elif request.method not in ("GET", "HEAD"):
            response = error_response(405, "Routes answer GET only.",
                                      headers={"allow": "GET"})
        else:
            await self._serve(request, path, found[0].pattern, send)
            return
        await response(scope, receive, send)

    async def _serve(self, request: Request, path: str, pattern: str, send: Send) -> None:
        """One route request, measured (metrics, span) and logged (one line) once
        its answer is written (as /graphql's)."""
        headers = first_values(request.scope["headers"])
        with observe("rest", request_id_from(headers), headers) as seen:
            seen.operation = pattern
            response, result = await self._respond(request, headers, path, seen.request_id)
            seen.status = response.status_code
            if result is not None:
                seen.calls, seen.partial = result.calls, bool(result.partial)
                seen.fields["partial"] = result.partial
            await response(request.scope, request.receive, send)

    async def _respond(self, request: Request, request_headers: dict[str, str], path: str,
                       rid: str) -> tuple[Response, RouteResult | None]:
        headers = {"x-request-id": rid}
        if self.limiter is not None:
            try:
                await self.limiter.acheck(request, 1, getattr(request.state, "shared", None))
            except RequestError as exc:
                return error_response(exc.status, str(exc), exc.code,
                                      {**headers, **exc.headers}), None
        result = await self.aggregator.handle(
            path, request.state.backends, request_headers,
            strategy=request.query_params.get("failure_strategy"), request_id=rid)
        if result.partial:
            headers["x-tessera-partial"] = ",".join(result.partial)
        return JSONResponse(result.body, status_code=result.status, headers=headers), result


def _raw_path(scope: dict[str, Any] | Scope) -> str:
    raw = scope.get("raw_path")
    if not raw:
        return str(scope["path"])
    return bytes(raw).decode("utf-8", "replace").partition("?")[0]
