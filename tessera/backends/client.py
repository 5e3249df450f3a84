"""BackendClient: one httpx.AsyncClient per service, with that service's policy.

    client = BackendClient("users", "http://127.0.0.1:8102", policy)
    user = await client.get_json("/users/7", scope=scope, missing_ok=True)

Every failure leaves this module as a `BackendError` (see `tessera.errors`);
callers never see an httpx or aiohttp exception. `translated` is the one place
that translates them. One call goes through, outermost first:

    retry (budget, backoff, deadline) -> circuit breaker -> bulkhead
        -> timeout (own, cut to the deadline) -> transport (+ injected faults)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp
import httpx
import orjson

from ..config import BackendPolicy
from ..errors import (
    BackendBadResponse,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    InputError,
)
from ..observability import metrics, tracing
from ..resilience import (
    Bulkhead,
    CircuitBreaker,
    CircuitOpen,
    FaultTransport,
    RetryBudget,
)
from ..resilience.cache import EntityCache
from .body import ACCEPT_ENCODING, PIECE, plain_length, read_capped, read_chunks
from .http1 import Http1Pool, Malformed, Unreachable
from .recent import RecentCalls
from .scope import HELD_FULL, OK, CallScope, held_full, outcome_of
from .urls import MAX_URL_CHARS, with_query

log = logging.getLogger("tessera.backends")

MISSING: Final = object()
"""Returned by `get_json(..., missing_ok=True)` when the backend answers 404."""
# A call's outcome: its decoded JSON (or MISSING), its Cache-Control, its body's bytes
Fetched = tuple[Any, "str | None", int]

_RETRY_STATUSES = frozenset({502, 503, 504})
_HEADERS = {"accept": "application/json", "accept-encoding": ACCEPT_ENCODING,
            "user-agent": "tessera"}
_MAX_BACKOFF_S = 1.0


class BackendClient:
    """Calls one backend service. Owns its connection pool, breaker, bulkhead,
    retry budget and stale store for the app's lifetime."""

    def __init__(self, service: str, base_url: str, policy: BackendPolicy,
                 transport: httpx.AsyncBaseTransport | None = None, *,
                 clock: Callable[[], float] = time.monotonic, shared: Any = None) -> None:
        self.service = service
        self.policy = policy
        self.max_batch_size = policy.max_batch_size
        self._timeout = policy.timeout_ms / 1000
        # How calls travel (`_Native`, `_Pool` or `_Transport`, one interface). To a
        # real plain-http backend, by default: our own keep-alive pool on httptools'
        # parser (http1.py; ~10 us of CPU per call against ~48 through aiohttp's
        # ClientSession). To an https:// one, one whose URL carries user:password@
        # (aiohttp sends them as Basic auth), or with `http_client = "aiohttp"`:
        # aiohttp's pool called directly, without an httpx Request and Response per
        # call. Otherwise through an httpx transport: one given (tests pass
        # MockTransport or a recording wrapper; the demo services are an
        # ASGITransport), httpx's own pool (`http_client = "httpx"`), or aiohttp's
        # behind httpx's API when faults are injected (FaultTransport wraps it).
        # Every way: no cookie kept or sent, no redirect followed; the call's deadline
        # is kept by the pool itself (_Native) or by asyncio.timeout (_Timed ways).
        base = base_url.rstrip("/")
        self._way: _Native | _Pool | _Transport
        if transport is not None or policy.fault.active or policy.http_client == "httpx":
            chosen = transport if transport is not None else _network_transport(policy)
            if policy.fault.active:
                chosen = FaultTransport(chosen, policy.fault)
            self._way = _Transport(chosen, base, policy)
        elif policy.http_client == "httptools" and base.startswith("http://") \
                and not _has_credentials(base):
            self._way = _Native(base, service, policy)
        else:
            self._way = _Pool(base, policy)
        self._in_flight: dict[tuple[Any, ...], asyncio.Future[Fetched]] = {}
        self.breaker = CircuitBreaker(service, policy.circuit_breaker, clock=clock,
                                      on_change=metrics.circuit_changed)
        metrics.circuit_changed(service, "closed", "closed")  # exported from the start
        self.bulkhead = Bulkhead(service, policy.bulkhead)
        self.recent = RecentCalls()
        # bound once: observed on every call
        self._seconds = metrics.child(metrics.BACKEND_SECONDS, service)
        self._ok_calls = metrics.child(metrics.BACKEND_CALLS, service, OK)
        self.budget = RetryBudget(policy.retry_budget, clock=clock)
        # One store for fresh answers and stale-if-error ones (resilience/cache.py).
        self.cache = EntityCache(policy.cache, stale_s=policy.stale_if_error_s,
                                 service=service, clock=clock, second=shared)
        self.stale = self.cache if policy.stale_if_error_s > 0 else None

    async def aclose(self) -> None:
        await self._way.aclose()

    async def get_json(self, path: str, params: Mapping[str, str] | None = None, *,
                       scope: CallScope, missing_ok: bool = False) -> Any:
        """`fetch`'s decoded body alone."""
        return (await self.fetch(path, params, scope=scope, missing_ok=missing_ok))[0]

    async def fetch(self, path: str, params: Mapping[str, str] | None = None, *,
                    scope: CallScope, missing_ok: bool = False) -> tuple[Any, str | None]:
        """GET `path`: its decoded JSON body (MISSING for a 404 when `missing_ok`)
        and its Cache-Control header, retrying what is worth retrying.

        Retries (`policy.retries`) apply to refused or reset connections, timeouts
        and 502/503/504, after an exponential backoff with full jitter, while the
        retry budget allows and never past the request's deadline. The outcome
        lands in `scope.report`. A path too long to send is the client's input
        error (`InputError`), and no call is made.

        Coalescing (`policy.coalesce`, on by default): a GET of the same path for the
        same caller (Authorization and Accept-Language) while one is in flight
        waits for that one's answer instead of making a second call.
        """
        target = with_query(path, params or {})
        if len(target) > MAX_URL_CHARS:
            raise InputError(f"A value sent to the {self.service} service is too long "
                             f"(a backend URL may hold at most {MAX_URL_CHARS} characters).")
        if not self.policy.coalesce:
            return (await self._call(target, scope, missing_ok))[:2]
        key = (target, missing_ok, scope.headers.get("authorization"),
               scope.headers.get("accept-language"))
        leader = self._in_flight.get(key)
        if leader is not None:
            try:
                answer: Fetched = await asyncio.shield(leader)
                if scope.tab is not None:  # this request builds on the answer too
                    scope.tab.take(answer[2], self.service)
            except asyncio.CancelledError:
                if leader.cancelled():  # the caller we waited on went away: call ourselves
                    return (await self._call(target, scope, missing_ok))[:2]
                raise
            except BackendError as exc:
                scope.report.fared(self.service, outcome_of(exc))
                raise
            scope.report.fared(self.service, OK)
            return answer[:2]
        shared: asyncio.Future[Fetched] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = shared
        try:
            answer = await self._call(target, scope, missing_ok)
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except Exception as exc:
            shared.set_exception(exc)
            shared.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            shared.set_result(answer)
            return answer[:2]
        finally:
            del self._in_flight[key]

    async def _call(self, target: str, scope: CallScope, missing_ok: bool) -> Fetched:
        self.budget.deposit()
        attempt = 0
        while True:
            try:
                answer: Fetched = await self._attempt(target, scope, missing_ok)
            except BackendError as exc:
                if not self._retry_after_failure(exc, attempt, scope):
                    scope.report.called(self.service, outcome_of(exc))
                    raise
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))
                continue
            scope.report.called(self.service, OK)
            return answer

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, self._backoff_ceiling(attempt))

    def _backoff_ceiling(self, attempt: int) -> float:
        """The longest wait before retry number `attempt` (1, 2, ...)."""
        return min(_MAX_BACKOFF_S, self.policy.retry_backoff_ms / 1000 * 2.0 ** (attempt - 1))

    def _retry_after_failure(self, exc: BackendError, attempt: int, scope: CallScope) -> bool:
        if attempt >= self.policy.retries or not _retryable(exc):
            return False
        if scope.remaining() <= self._backoff_ceiling(attempt + 1):
            return False
        if not self.budget.try_withdraw():
            log.info("backend %s: retry budget spent, not retrying", self.service)
            return False
        return True

    async def _attempt(self, target: str, scope: CallScope, missing_ok: bool) -> Fetched:
        timeout = scope.timeout(self._timeout, self.service)
        if scope.tab is not None and not scope.tab.room():
            metrics.child(metrics.BACKEND_CALLS, self.service, HELD_FULL).inc()
            raise held_full(self.service, "was not called")
        try:
            permit = self.breaker.acquire()
        except CircuitOpen:
            metrics.child(metrics.BACKEND_CALLS, self.service, "circuit_open").inc()
            raise BackendUnavailable(
                self.service, "is not being called: its circuit is open after repeated "
                f"failures (next try in {self.breaker.retry_after():.1f} s)",
                reason="circuit_open") from None
        verdict = permit.ignore
        started: float | None = None
        outcome = OK
        try:
            if not self.bulkhead.try_enter():
                await self.bulkhead.enter(wait_s=timeout)
                timeout = scope.timeout(self._timeout, self.service)  # waiting took time
            try:
                started = time.perf_counter()
                answer = await self._get(target, timeout, scope, missing_ok)
            finally:
                self.bulkhead.leave()
            verdict = permit.success
            return answer
        except BackendError as exc:
            outcome = outcome_of(exc)
            if _counts_against_backend(exc, cut=timeout < self._timeout):
                verdict = permit.failure
            raise
        finally:
            verdict()
            (self._ok_calls if outcome == OK else
             metrics.child(metrics.BACKEND_CALLS, self.service, outcome)).inc()
            if started is not None:
                seconds = time.perf_counter() - started
                self.recent.record(seconds, ok=verdict != permit.failure)
                self._seconds.observe(seconds)

    async def _get(self, target: str, timeout: float, scope: CallScope,
                   missing_ok: bool) -> Fetched:
        """One GET within `timeout`: its body decoded (MISSING for an expected 404),
        Cache-Control, and the body's size."""
        headers = scope.headers
        try:
            if tracing.active:
                with tracing.span(f"backend {self.service}",
                                  {"tessera.service": self.service,
                                   "url.path": target.partition("?")[0]}):
                    cache_control, body = await self._way.get(
                        target, tracing.inject(headers), self, missing_ok, timeout)
            else:
                cache_control, body = await self._way.get(target, headers, self, missing_ok,
                                                          timeout)
        except _LIBRARY_ERRORS as exc:
            raise translated(self.service, timeout, exc) from exc
        if body is None:
            return MISSING, cache_control, 0
        if scope.tab is not None:  # before parsing: the parsed answer is what weighs
            scope.tab.take(len(body), self.service)
        try:
            return orjson.loads(body), cache_control, len(body)
        except orjson.JSONDecodeError:
            raise BackendBadResponse(self.service, "answered with a body that is not JSON") \
                from None

    def wants_body(self, status: int, missing_ok: bool) -> bool:
        """Is this answer's body worth reading? 200 yes; a 404 the caller expects is
        "missing" (no body); any other status is this backend's error."""
        if status == 200:
            return True
        if status == 404 and missing_ok:
            return False
        if status >= 500:
            raise BackendUnavailable(self.service, f"answered HTTP {status}", status=status)
        raise BackendBadResponse(self.service, f"answered HTTP {status}", status=status)


class _Native:
    """Our keep-alive pool for a plain-http backend (http1.py)."""

    def __init__(self, base: str, service: str, policy: BackendPolicy) -> None:
        self._pool = Http1Pool(base, service=service, limit=policy.max_connections,
                               cap=policy.max_response_bytes, static=_HEADERS)

    async def get(self, target: str, headers: Mapping[str, str], client: BackendClient,
                  missing_ok: bool, timeout: float) -> tuple[str | None, bytes | None]:
        """(Cache-Control, the decoded body, or None for an expected 404); the pool
        keeps the deadline (TimeoutError)."""
        status, cache_control, body = await self._pool.get(target, headers, timeout)
        if not client.wants_body(status, missing_ok):
            return cache_control, None
        return cache_control, body

    async def aclose(self) -> None:
        await self._pool.aclose()


class _Timed(ABC):
    """A way whose call's deadline is an asyncio.timeout around its `_get`."""

    async def get(self, target: str, headers: Mapping[str, str], client: BackendClient,
                  missing_ok: bool, timeout: float) -> tuple[str | None, bytes | None]:
        """(Cache-Control, the decoded body, or None for an expected 404)."""
        async with asyncio.timeout(timeout):
            return await self._get(target, headers, client, missing_ok)

    @abstractmethod
    async def _get(self, target: str, headers: Mapping[str, str], client: BackendClient,
                   missing_ok: bool) -> tuple[str | None, bytes | None]:
        """The GET itself (aiohttp's or httpx's), without a deadline of its own."""


class _Pool(_Timed):
    """aiohttp's connection pool for one backend, called directly. No cookie is kept
    (DummyCookieJar) or redirect followed; bodies arrive still encoded and are
    decoded within the cap by `read_chunks`. Made at the first call (aiohttp wants
    a running loop)."""

    def __init__(self, base: str, policy: BackendPolicy) -> None:
        self._base = base
        # user:password@ in the URL: aiohttp sends them as Basic auth, in place of
        # the client's forwarded Authorization (a request cannot carry both)
        self._own_auth = _has_credentials(base)
        self._limit = policy.max_connections
        self._cap = policy.max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None))  # deadlines are ours
        return self._session

    async def _get(self, target: str, headers: Mapping[str, str], client: BackendClient,
                   missing_ok: bool) -> tuple[str | None, bytes | None]:
        session = self._session or self._open()
        sent = {**_HEADERS, **headers}
        if self._own_auth:
            sent.pop("authorization", None)
        async with session.get(self._base + target, headers=sent,
                               allow_redirects=False) as response:
            cache_control = response.headers.get("cache-control")
            if not client.wants_body(response.status, missing_ok):
                return cache_control, None
            length = plain_length(response.headers)
            if length is not None and length <= self._cap:
                body = await response.read()  # the declared length, read at once
            else:
                body = await read_chunks(response.headers,
                                         response.content.iter_chunked(PIECE), self._cap,
                                         client.service)
        return cache_control, body

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _Transport(_Timed):
    """An httpx transport, handed a prebuilt httpx.Request (httpx's types and
    transports, without AsyncClient's URL merging, cookie, auth and redirect
    layers); its own timeouts are set to the backend's."""

    def __init__(self, transport: httpx.AsyncBaseTransport, base: str,
                 policy: BackendPolicy) -> None:
        self._transport = transport
        self._base = base
        self._cap = policy.max_response_bytes
        self._extensions = {"timeout": httpx.Timeout(policy.timeout_ms / 1000).as_dict()}

    async def _get(self, target: str, headers: Mapping[str, str], client: BackendClient,
                   missing_ok: bool) -> tuple[str | None, bytes | None]:
        request = httpx.Request("GET", self._base + target, headers={**_HEADERS, **headers},
                                extensions=self._extensions)
        response = await self._transport.handle_async_request(request)
        try:
            cache_control = response.headers.get("cache-control")
            if not client.wants_body(response.status_code, missing_ok):
                return cache_control, None
            return cache_control, await read_capped(response, self._cap, client.service)
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()


def _has_credentials(url: str) -> bool:
    """Does the URL carry user:password@ before its host?"""
    return "@" in url.partition("//")[2].partition("/")[0]


def _network_transport(policy: BackendPolicy) -> httpx.AsyncBaseTransport:
    """The connection pool under httpx's API. aiohttp's (via httpx-aiohttp) by default:
    httpx's own pool scans every connection on every request (encode/httpx#3215),
    which cost this gateway ~27 % of its CPU at 32 concurrent requests."""
    limits = httpx.Limits(max_connections=policy.max_connections,
                          max_keepalive_connections=policy.max_connections)
    if policy.http_client == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits)
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport(limits=limits)


def _retryable(exc: BackendError) -> bool:
    """Timeouts, refused or reset connections and 502/503/504; never our own refusals."""
    if exc.reason is not None:
        return False
    if isinstance(exc, BackendTimeout):
        return True
    return isinstance(exc, BackendUnavailable) and (exc.status is None
                                                    or exc.status in _RETRY_STATUSES)


def _counts_against_backend(exc: BackendError, *, cut: bool) -> bool:
    """Does this failure count toward opening the circuit? Timeouts, connection
    failures, 5xx and unusable bodies do; a 4xx (the request's fault), our own
    refusals, and a timeout we cut short to fit the client's deadline do not."""
    if exc.reason is not None:
        return False
    if isinstance(exc, BackendTimeout):
        return not cut
    return exc.status is None or exc.status >= 500


# What the HTTP libraries (and asyncio.timeout) raise; `translated` maps each.
_LIBRARY_ERRORS = (TimeoutError, httpx.HTTPError, aiohttp.ClientError,
                   aiohttp.http_exceptions.HttpProcessingError, Unreachable, Malformed)


def translated(service: str, timeout: float, exc: BaseException) -> BackendError:
    """What the transport raised, as the Tessera error to raise instead.

    Timeouts -> BackendTimeout; refused, reset or dropped connections ->
    BackendUnavailable; a malformed answer (a garbage status line, a bad chunk,
    a conflicting Content-Length, a NUL or an oversized header, a body that
    cannot be decoded) -> BackendBadResponse. Any other error of httpx or aiohttp
    is a bad response too: none leaves untranslated. (An exception outside the
    HTTP libraries is a bug, is not caught, and is masked like one.)"""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        cause = exc.__cause__
        if (cause is not None and type(cause).__module__.startswith("aiohttp")
                and not isinstance(cause, TimeoutError)):
            # httpx-aiohttp maps every aiohttp connection error (a reset, a dropped
            # connection) to ConnectTimeout; only aiohttp's own timeouts are timeouts.
            return _unreachable(service, exc)
        log.warning("backend %s timed out after %.0f ms", service, timeout * 1000)
        return BackendTimeout(service, f"did not answer within {timeout * 1000:.0f} ms")
    if isinstance(exc, httpx.DecodingError | httpx.ProtocolError):
        return _malformed(service, exc)
    if isinstance(exc, httpx.TransportError | aiohttp.ClientPayloadError):
        # a connection that failed, or a body cut short or refused by the parser
        return _malformed(service, exc) if _malformed_payload(exc) \
            else _unreachable(service, exc)
    if isinstance(exc, aiohttp.ClientConnectionError | Unreachable):  # refused, reset, dropped
        return _unreachable(service, exc)
    # aiohttp's ClientResponseError for a malformed head (httpx-aiohttp passes it
    # through unmapped), and whatever else either library raises
    return _malformed(service, exc)


def _unreachable(service: str, exc: BaseException) -> BackendUnavailable:
    log.warning("backend %s unreachable: %s", service, exc)
    return BackendUnavailable(service, "is unreachable (connection failed)")


def _malformed(service: str, exc: BaseException) -> BackendBadResponse:
    log.warning("backend %s sent a malformed answer: %s: %s", service,
                type(exc).__name__, str(exc)[:200])
    return BackendBadResponse(service, "answered with malformed HTTP")


def _malformed_payload(exc: BaseException) -> bool:
    """A body the HTTP parser refused (a bad chunk size, more or fewer bytes than
    Content-Length), as opposed to a connection that dropped."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.http_exceptions.HttpProcessingError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
