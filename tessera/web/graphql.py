"""POST and GET /graphql, per the GraphQL-over-HTTP specification.

    endpoint = GraphQLHTTP(schema, settings, limiter=limiter)   # an ASGI app
    Route("/graphql", endpoint)

One request, in order: method (GET, POST; else 405) -> GraphiQL for a browser's
GET without a query -> the response type (`Accept`: application/graphql-response+json
or application/json; else 406) -> CSRF (a POST a browser could send without a
preflight is refused; GET too with `server.csrf_require_preflight`) -> the body
(POST: application/json only, else 415; an object, or a list of at most
`limits.max_batch_operations`) -> the rate limit (one token per operation; 429 with
Retry-After) -> persisted queries -> execution (GET runs queries only: 405).

A GET or persisted query's answer carries Cache-Control from its parts
(`cache_hint`). Status codes: a request error (unparsable document, validation failure, bad
variables, a limit, a persisted-query miss) answers without a `data` key; with
application/graphql-response+json that is a 4xx, with application/json a 200
(the legacy rule), so old clients keep working. Partial data is always 200.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from ..config import Settings
from ..context import Context, first_values, new_context, request_id_from
from ..errors import RequestError
from ..observability.requests import Seen, observe
from ..schema import format_errors
from . import ide
from .body import READ_BODY
from .persisted import PersistedQueries, Resolved
from .ratelimit import RateLimiter

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# Content types a browser sends cross-origin without a CORS preflight.
_SIMPLE_TYPES = frozenset({"", "text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data"})
_PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")


_QUERIES = frozenset({OperationType.QUERY})  # what a GET may run
_OPERATIONS = frozenset(OperationType)


@dataclass(frozen=True)
class Params:
    """One operation of a request, as the client sent it."""

    query: Any
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


def negotiate(accept: str | None) -> str | None:
    """The response media type for this Accept header, or None when neither is
    acceptable. No header, or only wildcards, get application/json (the spec's
    rule for legacy clients); an explicit graphql-response+json wins a tie."""
    if not accept or not accept.strip():
        return JSON
    quality = {GRAPHQL_RESPONSE: 0.0, JSON: 0.0}
    explicit: set[str] = set()
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        media = media.lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        for candidate in quality:
            if media == candidate:
                explicit.add(candidate)
                quality[candidate] = max(quality[candidate], q)
            elif media in ("*/*", "application/*") and candidate not in explicit:
                quality[candidate] = max(quality[candidate], q)
    if GRAPHQL_RESPONSE in explicit and quality[GRAPHQL_RESPONSE] > 0 \
            and quality[GRAPHQL_RESPONSE] >= quality[JSON]:
        return GRAPHQL_RESPONSE
    if quality[JSON] > 0:
        return JSON
    return GRAPHQL_RESPONSE if quality[GRAPHQL_RESPONSE] > 0 else None


def error_body(error: RequestError) -> dict[str, Any]:
    return {"errors": [{"message": str(error), "extensions": error.extensions}]}


class GraphQLHTTP:
    def __init__(self, schema: strawberry.Schema, settings: Settings, *,
                 limiter: RateLimiter | None = None, batching: bool = True,
                 named: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.server = settings.server
        self.max_operations = settings.limits.max_batch_operations
        self.persisted = PersistedQueries.from_settings(settings.persisted_queries)
        self.limiter = limiter
        self._ide = settings.server.graphiql
        self._batching = batching
        self._named = named or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One request, measured (metrics, span) and logged (one line) once its
        answer is written: the bookkeeping (~50 µs) is not on the answer's way out,
        and the duration counts the write."""
        request = Request(scope, receive)
        headers = first_values(scope["headers"])
        with observe("graphql", request_id_from(headers), headers) as seen:
            codes: set[str] = set()
            response = await self._handle(request, headers, seen, codes)
            seen.status = response.status_code
            seen.fields["error_codes"] = sorted(codes)
            await response(scope, receive, send)

    async def _handle(self, request: Request, headers: dict[str, str], seen: Seen,
                      codes: set[str]) -> Response:
        media = JSON
        try:
            if request.method not in ("GET", "POST"):
                raise RequestError("METHOD_NOT_ALLOWED", "/graphql takes GET and POST.", 405,
                                   headers={"allow": "GET, POST"})
            if self._wants_ide(request, headers):
                if not self._ide:
                    raise RequestError("NOT_FOUND", "GraphiQL is off on this gateway.", 404)
                return ide.page()
            found = negotiate(headers.get("accept"))
            if found is None:
                raise RequestError("NOT_ACCEPTABLE", f"Accept {GRAPHQL_RESPONSE} or {JSON}.",
                                   406)
            media = found
            content_type = _media(headers.get("content-type", ""))
            self._check_csrf(request, headers, content_type)
            operations, batch = await self._read(request, content_type)
            seen.operation = operations[0].operation_name if not batch else "batch"
            if self.limiter is not None:
                await self.limiter.acheck(request, len(operations),
                                          getattr(request.state, "shared", None))
            return await self._execute(request, headers, operations, batch, media, seen,
                                       codes)
        except RequestError as exc:
            codes.add(exc.code)
            return self._respond(error_body(exc), exc.status, media, exc.headers)

    def _wants_ide(self, request: Request, headers: dict[str, str]) -> bool:
        return (request.method == "GET" and "text/html" in headers.get("accept", "")
                and "query" not in request.query_params
                and "extensions" not in request.query_params)

    def _check_csrf(self, request: Request, headers: dict[str, str],
                    content_type: str) -> None:
        if any(headers.get(name, "").strip() for name in _PREFLIGHT_HEADERS):
            return
        if request.method == "POST":
            if content_type not in _SIMPLE_TYPES:
                return
        elif not self.server.csrf_require_preflight:
            return
        raise RequestError(
            "CSRF_REFUSED", "This request was refused as a possible cross-site request "
            "forgery: send POST with Content-Type: application/json, or set a non-empty "
            "Apollo-Require-Preflight header.", 400)

    async def _read(self, request: Request, content_type: str) -> tuple[list[Params], bool]:
        if request.method == "GET":
            q = request.query_params
            return [_params({"query": q.get("query"), "operationName": q.get("operationName"),
                             "variables": _json_param(q, "variables"),
                             "extensions": _json_param(q, "extensions")})], False
        if content_type != JSON:
            raise RequestError("UNSUPPORTED_MEDIA_TYPE",
                               f"POST /graphql takes Content-Type: {JSON}.", 415)
        try:
            read = request.scope.get(READ_BODY)  # BodyLimit read it already
            data = orjson.loads(read if read is not None else await request.body())
        except orjson.JSONDecodeError:
            raise RequestError("BAD_REQUEST", "The body is not valid JSON.") from None
        if isinstance(data, list):
            if not data:
                raise RequestError("BAD_REQUEST", "A batch needs at least one operation.")
            if len(data) > self.max_operations:
                raise RequestError("BATCH_TOO_LARGE", f"A batch may hold at most "
                                   f"{self.max_operations} operations (got {len(data)}).")
            return [_params(item) for item in data], True
        return [_params(data)], False

    async def _execute(self, request: Request, headers: dict[str, str],
                       operations: list[Params], batch: bool, media: str, seen: Seen,
                       codes: set[str]) -> Response:
        context = new_context(request.state.backends, headers,
                              timeout_ms=self.server.request_timeout_ms, batching=self._batching,
                              request_id=seen.request_id, named=self._named)
        seen.calls = context.scope.report.calls
        try:
            return await self._answer(request, operations, batch, media, seen, codes,
                                      context)
        finally:
            context.scope.release()  # its answers are in the body now

    async def _answer(self, request: Request, operations: list[Params], batch: bool,
                      media: str, seen: Seen, codes: set[str], context: Context) -> Response:
        allowed = _QUERIES if request.method == "GET" else _OPERATIONS
        # A batch's operations share one context: their loads batch together.
        shared = getattr(request.state, "shared", None)
        if len(operations) == 1:  # no task for the usual request of one operation
            outcomes = [await self._one(operations[0], context, allowed, media, shared)]
        else:
            outcomes = await asyncio.gather(*(self._one(p, context, allowed, media, shared)
                                              for p in operations))
        for body, _ in outcomes:
            _note(body, seen, codes)
        if not batch and seen.operation is None:
            seen.operation = context.scope.report.operation
        headers = {"x-request-id": context.request_id}
        if batch:
            return self._respond([body for body, _ in outcomes], 200, media, headers)
        body, status = outcomes[0]
        if status == 405:
            headers["allow"] = "POST"
        persisted = "persistedQuery" in (operations[0].extensions or {})
        if request.method == "GET" or persisted:
            headers["cache-control"] = cache_hint(body, context.scope.report)
        return self._respond(body, status, media, headers)

    async def _one(self, params: Params, context: Context, allowed: frozenset[OperationType],
                   media: str, shared: Any = None) -> tuple[dict[str, Any], int]:
        try:
            resolved = await self._resolve(params, shared)
            result = await self._run(resolved.query, params, context, allowed)
            if not _is_request_error(result):
                self.persisted.remember(resolved)
                if resolved.register is not None and shared is not None and shared.configured:
                    await shared.set("apq:" + resolved.register, resolved.query,
                                     shared.settings.apq_ttl_s)
        except RequestError as exc:
            status = exc.status if media == GRAPHQL_RESPONSE or exc.status in (403, 405) \
                else 200
            return error_body(exc), status
        return self._body(result, media)

    async def _resolve(self, params: Params, shared: Any) -> Resolved:
        """The query to run; a hash registered on another replica is found in Redis."""
        try:
            return self.persisted.resolve(params.query, params.extensions)
        except RequestError as exc:
            if exc.code != "PERSISTED_QUERY_NOT_FOUND" or shared is None \
                    or not shared.configured:
                raise
            digest = self.persisted.wanted(params.extensions)
            text = await shared.get("apq:" + digest) if digest else None
            found = None if text is None else self.persisted.recalled(
                digest or "", text.decode("utf-8", "replace"))
            if found is None:
                raise
            return found

    async def _run(self, query: str, params: Params, context: Context,
                   allowed: frozenset[OperationType]) -> ExecutionResult:
        try:
            return await self.schema.execute(
                query, variable_values=params.variables, context_value=context,
                operation_name=params.operation_name, allowed_operation_types=allowed,
                operation_extensions=params.extensions)
        except InvalidOperationTypeError as exc:
            raise RequestError("METHOD_NOT_ALLOWED",
                               exc.as_http_error_reason("GET") + ": send them with POST.",
                               405) from None
        except CannotGetOperationTypeError as exc:
            raise RequestError("BAD_REQUEST", exc.as_http_error_reason()) from None
        except MissingQueryError:
            raise RequestError("BAD_REQUEST", "The request has no 'query'.") from None

    def _body(self, result: ExecutionResult, media: str) -> tuple[dict[str, Any], int]:
        errors = format_errors(result.errors or [], suggestions=self.server.suggestions)
        body: dict[str, Any] = {}
        status = 200
        if _is_request_error(result):
            if media == GRAPHQL_RESPONSE:
                status = 400
        else:
            body["data"] = result.data
        if errors:
            body["errors"] = errors
        if result.extensions:
            body["extensions"] = result.extensions
        return body, status

    def _respond(self, body: Any, status: int, media: str,
                 headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(body), status, headers=headers, media_type=media)


def cache_hint(body: dict[str, Any], report: Any) -> str:
    """Cache-Control for a GET or persisted query's answer, so a CDN may keep it:
    `max-age` the smallest TTL among its parts (each kept or served by the entity
    cache), `private` when a part was kept for this caller only; `no-store` with
    errors, partial data, or any part that may not be kept."""
    ttl = report.cache_ttl_s
    if body.get("errors") or "data" not in body or report.cache_never or ttl is None \
            or int(ttl) <= 0:
        return "no-store"
    return f"{'private' if report.cache_private else 'public'}, max-age={int(ttl)}"


def _note(body: dict[str, Any], seen: Seen, codes: set[str]) -> None:
    """What one operation's answer says for the request's metrics and log line."""
    for error in body.get("errors", ()):
        codes.add(str(error.get("extensions", {}).get("code", "")))
    if "data" not in body:
        seen.failed = True
    elif body.get("errors"):
        seen.partial = True


def _is_request_error(result: ExecutionResult) -> bool:
    """Errors raised before execution (parse, validation, variables, limits) carry
    no path and leave no data; a field error always has a path."""
    errors: list[GraphQLError] = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def _media(content_type: str) -> str:
    """A Content-Type's media type, lower case, without parameters ("" when none)."""
    return content_type.split(";")[0].strip().lower()



def _json_param(params: Any, name: str) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("BAD_REQUEST", f"The '{name}' parameter is not valid JSON.") \
            from None


def _params(data: Any) -> Params:
    if not isinstance(data, dict):
        raise RequestError("BAD_REQUEST", "A GraphQL request must be a JSON object.")
    name, variables, extensions = (data.get(k) for k in ("operationName", "variables",
                                                         "extensions"))
    if name is not None and not isinstance(name, str):
        raise RequestError("BAD_REQUEST", "'operationName' must be a string.")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError("BAD_REQUEST", "'variables' must be an object.")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError("BAD_REQUEST", "'extensions' must be an object.")
    return Params(data.get("query"), name or None, variables, extensions)
