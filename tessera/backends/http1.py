"""Keep-alive HTTP/1.1 GETs to one plain-http backend, on asyncio and httptools.

    pool = Http1Pool("http://127.0.0.1:8102", service="users", limit=100, cap=10 * MiB,
                     static={"accept": "application/json"})
    status, cache_control, body = await pool.get("/users/7", {"x-request-id": "..."})
    await pool.aclose()

The default way to a backend (`http_client = "httptools"`). A GET through
aiohttp's ClientSession costs ~48 us of CPU here, this ~10 us (a Q1 query makes
four), so this module does only what a gateway's backend calls need: GET, plain
http (https:// backends go through aiohttp's pool), one request at a time per
connection, answers parsed by httptools (llhttp: the parser uvicorn serves with
and Node's http client uses), and nothing of cookies, redirects or proxies.

What a backend can get wrong ends as an exception of this module (`Unreachable`,
`Malformed`, translated with the rest in client.py) or a `BackendBadResponse`:
a connection refused, reset or closed before answering; bytes that are not HTTP,
a head over `MAX_HEAD` bytes, a bad chunk, conflicting lengths, a body cut short;
a body over the cap or that cannot be decoded (body.Collector: the cap counts
decoded bytes while they arrive). The connection is then closed, never reused.
Only a 200's body is kept; another status is answered as soon as its head is in,
and its body is read and dropped (up to `DRAIN` bytes) so the connection can serve
again. A reused connection found closed before any byte of its answer (the
backend's keep-alive ran out as the request went) is sent again on another;
idle connections are dropped after `IDLE_S`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

from ..deadlines import Deadlines
from ..errors import BackendBadResponse, InputError
from .body import Collector, too_large
from .urls import LINE_BREAK

__all__ = ["Http1Pool", "Malformed", "Unreachable"]

MAX_HEAD = 64 * 1024  # status line and headers of one answer
IDLE_S = 4.0  # an idle connection is not reused after this (servers close at ~5 s)
DRAIN = 64 * 1024  # body bytes of an unwanted answer read and dropped to keep its connection
TICK_S = 0.005  # a call's deadline is kept to within this (one timer per pool)

_UNSENDABLE_TARGET = re.compile(r"[^\x21-\x7e]")  # a request target is visible ASCII

Answer = tuple[int, str | None, bytes | None]  # status, Cache-Control, body (200 only)


class Unreachable(Exception):
    """The connection failed: refused, reset, or closed before an answer."""


class Malformed(Exception):
    """The answer is not HTTP a client can use."""


class _Stale(Exception):
    """A reused connection closed before any byte of its answer: send again."""


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; the answer's head and body parsed by
    httptools as bytes arrive."""

    def __init__(self, pool: Http1Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.answered = 0  # answers completed on this connection
        self.idle_since = 0.0
        self.busy = False  # a request is out and its answer not complete
        self._waiter: asyncio.Future[Answer] | None = None
        self._new_answer()

    def _new_answer(self) -> None:
        self._received = 0
        self._head_done = False
        self._informational = False
        self._status = 0
        self._cache_control: str | None = None
        self._encoding = ""
        self._delimited = False  # by Content-Length or chunked (else: by closing)
        self._declared = b""  # Content-Length
        self._collector: Collector | None = None
        self._dropped = 0
        self._error: BaseException | None = None

    def send(self, head: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None and not self.busy
        self.busy = True
        self._new_answer()
        waiter = self._waiter = self._pool.loop.create_future()
        self.transport.write(head)
        return waiter

    def abort(self) -> None:
        """Close at once (a request given up, a broken answer, the pool closing);
        never reused. A request still waiting fails (Unreachable)."""
        self.busy = False
        self._pool._deadlines.clear(self)
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(Unreachable("the connection was closed by the gateway"))
        if self.transport is not None:
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(Malformed("an upgrade answer"))
            return
        except httptools.HttpParserError as exc:
            self.fail(self._error or Malformed(str(exc)[:100]))
            return
        if self._error is not None:
            self.fail(self._error)
        elif not self._head_done and self._received > MAX_HEAD and self.busy:
            # (checked once a read is parsed: at most MAX_HEAD plus one read is held)
            self.fail(Malformed(f"a head over {MAX_HEAD} bytes"))

    def eof_received(self) -> bool:
        return False  # close; connection_lost settles the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool._lost(self)
        if not self.busy:
            return
        if self._received == 0:
            self.fail(_Stale() if self.answered else Unreachable(
                "closed the connection without answering"))
        elif self._head_done and not self._delimited and self._error is None:
            self._complete()  # a body delimited by the connection closing
        else:
            self.fail(self._error or Malformed("closed in the middle of its answer"))

    # httptools callbacks (an exception raised here would surface as a parser
    # error: they store it instead)

    def on_message_begin(self) -> None:
        if not self.busy:  # bytes on an idle connection, or a second answer to one
            self._error = Malformed("an answer nobody asked for")  # request: closed

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"cache-control":
            self._cache_control = value.decode("latin-1")
        elif name == b"content-encoding":
            self._encoding = value.decode("latin-1")
        elif name == b"content-length":
            self._delimited = True
            self._declared = value
        elif name == b"transfer-encoding":
            self._delimited = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue and the like: the real answer follows
            self._informational = True
            return
        self._head_done = True
        self._status = status
        if status != 200:  # answered now; the body is read and dropped
            self._settle((status, self._cache_control, None))
            return
        pool = self._pool
        try:
            if self._declared.isdigit() and int(self._declared) > pool.cap \
                    and self._encoding.strip().lower() in ("", "identity"):
                raise too_large(pool.service, pool.cap)  # refused before it arrives
            self._collector = Collector(self._encoding, pool.cap, pool.service)
        except BackendBadResponse as exc:
            self._error = exc

    def on_body(self, body: bytes) -> None:
        if self._error is not None:
            return
        if self._collector is None:
            self._dropped += len(body)
            if self._dropped > DRAIN:
                self._error = Malformed("an unwanted body too long to drop")
            return
        try:
            self._collector.add(body)
        except BackendBadResponse as exc:
            self._collector = None
            self._error = exc

    def on_message_complete(self) -> None:
        if self._informational:
            self._new_answer()
            return
        if self._error is None:
            self._complete()

    # settling the answer

    def _complete(self) -> None:
        collector, self._collector = self._collector, None
        if collector is not None:
            try:
                self._settle((self._status, self._cache_control, collector.finish()))
            except BackendBadResponse as exc:
                self.fail(exc)
                return
        self.busy = False
        self._pool._deadlines.clear(self)
        self.answered += 1
        if self.closed or not self._parser.should_keep_alive():
            self.abort()
        else:
            self._pool._release(self)

    def _settle(self, answer: Answer) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(answer)

    def fail(self, error: BaseException) -> None:
        """End the request with `error` (the waiter's, if still waiting), closed."""
        self._collector = None
        waiter = self._waiter
        self._waiter = None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


def _late(connection: _Connection) -> None:
    connection.fail(TimeoutError())  # its call's deadline passed (or its drain's)


class Http1Pool:
    """Up to `limit` keep-alive connections to one backend's origin."""

    def __init__(self, base_url: str, *, service: str, limit: int, cap: int,
                 static: Mapping[str, str]) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not a plain http URL: {base_url!r}")
        self.service = service
        self.cap = cap
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._limit = limit
        host = parts.netloc.rpartition("@")[2]
        self._static = f"host: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in static.items())
        self._idle: list[_Connection] = []  # the most recently used last
        self._all: set[_Connection] = set()
        self._opening = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        # the deadline of each connection with a request out (its answer, all of it)
        self._deadlines: Deadlines[_Connection] = Deadlines(_late, slack=TICK_S)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def get(self, target: str, headers: Mapping[str, str], timeout: float) -> Answer:
        """GET `target` (a path and query, already percent-encoded) with `headers`
        added to the pool's own: (status, Cache-Control, body if 200), or TimeoutError
        when the answer is not all in within `timeout` seconds (to within TICK_S)."""
        head = self._head(target, headers)
        deadline = self.loop.time() + timeout
        while True:  # ends: only a reused connection is stale, and it is closed
            connection = self._idle_connection()
            if connection is None:  # a new connection, or a wait for one to come free
                async with asyncio.timeout_at(deadline):
                    connection = await self._acquire()
            waiter = connection.send(head)
            self._deadlines.set(connection, deadline)
            try:
                return await waiter
            except _Stale:
                continue  # sent again, on the next idle connection or a new one
            finally:
                if waiter.cancelled():
                    connection.abort()  # given up: its answer is unwanted

    def _head(self, target: str, headers: Mapping[str, str]) -> bytes:
        if _UNSENDABLE_TARGET.search(target):
            raise InputError(f"A value sent to the {self.service} service cannot be "
                             "written in a URL.")
        lines = [f"GET {self._prefix}{target} HTTP/1.1\r\n", self._static]
        for name, value in headers.items():
            if LINE_BREAK.search(value):
                raise InputError(f"The {name} header cannot be forwarded: it holds a "
                                 "line break or NUL.")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        try:
            return "".join(lines).encode("latin-1")
        except UnicodeEncodeError:
            raise InputError("A forwarded header holds characters HTTP/1.1 cannot "
                             "carry.") from None

    def _idle_connection(self) -> _Connection | None:
        """The most recently used idle connection still fit to use, if any."""
        idle = self._idle
        while idle:
            connection = idle.pop()
            if not connection.closed and time.monotonic() - connection.idle_since < IDLE_S:
                return connection
            connection.abort()
        return None

    async def _acquire(self) -> _Connection:
        while True:
            if self._closed:
                raise Unreachable("the pool is closed (the gateway is stopping)")
            connection = self._idle_connection()
            if connection is not None:
                return connection
            if len(self._all) + self._opening < self._limit:
                return await self._open()
            turn = self.loop.create_future()
            self._waiting.append(turn)
            try:
                await turn
            finally:
                if not turn.done():
                    self._waiting.remove(turn)
                    turn.cancel()

    async def _open(self) -> _Connection:
        self._opening += 1
        try:
            _, connection = await self.loop.create_connection(
                lambda: _Connection(self), self._host, self._port)
        except BaseException as exc:
            self._opening -= 1
            self._wake()  # the slot this was to take is free again
            if isinstance(exc, OSError):
                raise Unreachable(f"{type(exc).__name__}: {exc}") from None
            raise
        self._opening -= 1
        if self._closed:  # closed while this was being opened
            connection.abort()
            raise Unreachable("the pool is closed (the gateway is stopping)")
        self._all.add(connection)
        return connection

    def _release(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        self._idle.append(connection)
        self._wake()

    def _lost(self, connection: _Connection) -> None:
        self._all.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        self._deadlines.close()
        for connection in list(self._all):  # each wakes a call waiting for a slot,
            connection.abort()  # which then finds the pool closed
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports close
