"""The /graphql endpoint: Strawberry's ASGI view with Tessera's context and errors."""

from __future__ import annotations

from typing import Any, cast

import orjson
import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from .config import Settings
from .context import Context, new_context
from .schema import format_errors


class GraphQLEndpoint(GraphQL[Context, None]):
    def __init__(self, schema: strawberry.Schema, settings: Settings, *,
                 batching: bool = True) -> None:
        super().__init__(schema, graphql_ide="graphiql" if settings.server.graphiql else None,
                         allow_queries_via_get=True)
        self._timeout_ms = settings.server.request_timeout_ms
        self._batching = batching

    async def get_context(self, request: Request | WebSocket,
                          response: Response | WebSocket) -> Context:
        context = new_context(request.state.backends, request.headers,
                              timeout_ms=self._timeout_ms, batching=self._batching)
        if isinstance(response, Response):
            response.headers["x-request-id"] = context.request_id
        return context

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # its JSONDecodeError is json's: still a 400

    async def process_result(self, request: Request | WebSocket,
                             result: ExecutionResult) -> GraphQLHTTPResponse:
        return cast(GraphQLHTTPResponse, format_result(result))


def format_result(result: ExecutionResult) -> dict[str, Any]:
    """The response body of one operation: data, masked errors, extensions."""
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = format_errors(result.errors)
    if result.extensions:
        body["extensions"] = result.extensions
    return body
