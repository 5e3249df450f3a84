"""The admin endpoint: purge the entity cache. Off unless `[admin] token` is set.

    POST /admin/cache/purge?backend=users&key=7
    Authorization: Bearer <the admin token>

The token is compared in constant time (`hmac.compare_digest`) and never logged
(the request log records no header). Without a configured token the endpoint
answers 404, as if it did not exist. `tessera cache purge --backend users
[--key 7]` calls it.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .rest import error_response


class Admin:
    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    async def purge(self, request: Request) -> Response:
        if self._token is None:
            return error_response(404, "No such route.")
        given = request.headers.get("authorization", "")
        scheme, _, secret = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(secret.encode(),
                                                                  self._token):
            return error_response(401, "The admin token is missing or wrong.",
                                  "UNAUTHORIZED", {"www-authenticate": "Bearer"})
        backend = request.query_params.get("backend")
        key = request.query_params.get("key")
        backends: Any = request.state.backends
        if backend is not None and backend not in backends.clients:
            return error_response(404, f"No backend named {backend!r}.", "NOT_FOUND")
        purged = 0
        for name, client in backends.clients.items():
            if backend is None or name == backend:
                purged += client.cache.purge(key) + await client.cache.purge_second(key)
        return JSONResponse({"purged": purged, "backend": backend, "key": key})

