"""BackendClient: one httpx.AsyncClient per service, with that service's policy.

    client = BackendClient("users", "http://127.0.0.1:8102", policy)
    user = await client.get_json("/users/7", scope=scope, missing_ok=True)

Every failure leaves this module as a `BackendError` (see `tessera.errors`);
callers never see an httpx exception. `map_httpx_errors` is the one place that
translates them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from ..config import BackendPolicy
from ..errors import BackendBadResponse, BackendError, BackendTimeout, BackendUnavailable
from .urls import with_query

log = logging.getLogger("tessera.backends")

MISSING: Final = object()
"""Returned by `get_json(..., missing_ok=True)` when the backend answers 404."""

_RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class CallScope:
    """What one client request contributes to every backend call it causes.

    `headers` are forwarded as they are; `deadline` is an event-loop time after
    which no call may run (each call's timeout is cut to what is left).
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    deadline: float | None = None

    def remaining(self) -> float:
        if self.deadline is None:
            return float("inf")
        return self.deadline - asyncio.get_running_loop().time()

    def timeout(self, own: float, service: str) -> float:
        left = self.remaining()
        if left <= 0:
            raise BackendTimeout(service, "was not called: the request deadline had passed")
        return min(own, left)


class BackendClient:
    """Calls one backend service. Owns its connection pool for the app's lifetime."""

    def __init__(self, service: str, base_url: str, policy: BackendPolicy,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.service = service
        self.policy = policy
        self.max_batch_size = policy.max_batch_size
        self._timeout = policy.timeout_ms / 1000
        if transport is None:
            limits = httpx.Limits(max_connections=policy.max_connections,
                                  max_keepalive_connections=policy.max_connections)
            transport = httpx.AsyncHTTPTransport(limits=limits)
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport,
                                       timeout=self._timeout, follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_json(self, path: str, params: Mapping[str, str] | None = None, *,
                       scope: CallScope, missing_ok: bool = False) -> Any:
        """GET `path` and decode its JSON body, retrying what is worth retrying.

        Retries (`policy.retries`) apply to refused or reset connections and
        502/503/504, with a short jittered backoff, and never past the deadline.
        """
        attempt = 0
        while True:
            try:
                return await self._get_once(path, params, scope, missing_ok)
            except BackendUnavailable as exc:
                attempt += 1
                backoff = 0.01 * (2 ** attempt) * (0.5 + random.random())
                if (attempt > self.policy.retries or not _retryable(exc)
                        or scope.remaining() <= backoff):
                    raise
                await asyncio.sleep(backoff)

    async def _get_once(self, path: str, params: Mapping[str, str] | None,
                        scope: CallScope, missing_ok: bool) -> Any:
        timeout = scope.timeout(self._timeout, self.service)
        with map_httpx_errors(self.service, timeout):
            async with asyncio.timeout(timeout):
                async with self._http.stream("GET", with_query(path, params or {}),
                                             headers=scope.headers) as response:
                    status = response.status_code
                    if status == 404 and missing_ok:
                        return MISSING
                    if status >= 500:
                        raise BackendUnavailable(self.service, f"answered HTTP {status}",
                                                 status=status)
                    if status != 200:
                        raise BackendBadResponse(self.service, f"answered HTTP {status}",
                                                 status=status)
                    body = await self._read_capped(response)
        try:
            return json.loads(body)
        except ValueError:
            raise BackendBadResponse(self.service, "answered with a body that is not JSON") \
                from None

    async def _read_capped(self, response: httpx.Response) -> bytes:
        cap = self.policy.max_response_bytes
        too_large = BackendBadResponse(self.service, f"answered with more than {cap} bytes")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)


def _retryable(exc: BackendUnavailable) -> bool:
    return exc.status is None or exc.status in _RETRY_STATUSES


@contextmanager
def map_httpx_errors(service: str, timeout: float) -> Iterator[None]:
    """Translate httpx and timeout exceptions into the Tessera tree, once."""
    try:
        yield
    except BackendError:
        raise
    except (TimeoutError, httpx.TimeoutException) as exc:
        log.warning("backend %s timed out after %.0f ms", service, timeout * 1000)
        raise BackendTimeout(service, f"did not answer within {timeout * 1000:.0f} ms") \
            from exc
    except httpx.DecodingError as exc:
        raise BackendBadResponse(service, "answered with a body that cannot be decoded") \
            from exc
    except httpx.TransportError as exc:
        log.warning("backend %s unreachable: %s", service, exc)
        raise BackendUnavailable(service, "is unreachable (connection failed)") from exc
