"""Tessera's own HTTP/1.1 pool (tessera/backends/http1.py), against real sockets on
127.0.0.1 whose every byte the test writes: keep-alive reuse, a connection the
backend closed while idle, the pool's limit, a call given up, answers that are
not 200, bytes nobody asked for, bodies delimited by closing, 1xx, and what may
not be sent. (Malformed answers, caps and gzip bombs: test_hostile_backends.py,
run through this pool by default.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tessera.backends import MISSING, BackendClient, CallScope
from tessera.backends.http1 import Http1Pool
from tessera.config import parse_settings
from tessera.errors import BackendBadResponse, BackendTimeout, BackendUnavailable, InputError

pytestmark = pytest.mark.anyio

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


def ok(body: bytes = b'{"id": "7"}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Scripted:
    """A server whose connections each run `script(reader, writer, n)`, n counting
    the connections accepted; `heads` holds the request heads read via `head`."""

    def __init__(self, script: Callable[[Reader, Writer, int], Awaitable[None]]) -> None:
        self.script = script
        self.connections = 0
        self.heads: list[bytes] = []
        self.open = 0
        self.peak = 0
        self._server: asyncio.Server | None = None

    @property
    def requests(self) -> int:
        return len(self.heads)

    async def head(self, reader: Reader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        return head

    async def __aenter__(self) -> Scripted:
        async def handle(reader: Reader, writer: Writer) -> None:
            self.connections += 1
            self.open += 1
            self.peak = max(self.peak, self.open)
            try:
                await self.script(reader, writer, self.connections)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                self.open -= 1
                writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()


def client_for(url: str, **policy: Any) -> BackendClient:
    settings = parse_settings({"backends": {"users": {"url": url, "retries": 0, **policy}}})
    return BackendClient("users", url, settings.policy("users"))


async def serve_forever(server: Scripted, answer: bytes,
                        reader: Reader, writer: Writer) -> None:
    while True:
        await server.head(reader)
        writer.write(answer)
        await writer.drain()


async def test_calls_reuse_one_keep_alive_connection() -> None:
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await serve_forever(server, ok(), reader, writer)

    async with Scripted(script) as server:
        client = client_for(server.url)
        for _ in range(20):
            assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        await client.aclose()
    assert (server.requests, server.connections) == (20, 1)


async def test_a_connection_the_backend_closed_while_idle_is_not_an_error() -> None:
    """The backend answers once per connection and closes it without saying so (as a
    keep-alive timeout does): the next request is sent on a new connection, even
    when the close arrives after the request went out (retried once, retries = 0)."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)
        writer.write(ok())
        await writer.drain()
        await reader.read(1)  # the next request's first byte, then close unanswered

    async with Scripted(script) as server:
        client = client_for(server.url, coalesce=False)
        for _ in range(5):
            assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        # three idle connections, all closed by the backend as the next request goes
        await asyncio.gather(*(client.get_json(f"/users/{i}", scope=CallScope())
                               for i in range(3)))
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        await client.aclose()
    assert server.requests == 9


async def test_a_fresh_connection_closed_unanswered_is_unavailable() -> None:
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)

    async with Scripted(script) as server:
        client = client_for(server.url)
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await client.get_json("/users/7", scope=CallScope())
        await client.aclose()
    assert server.connections == 1  # not retried: nothing says it was stale


async def test_concurrent_calls_never_open_more_than_max_connections() -> None:
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        while True:
            await server.head(reader)
            await asyncio.sleep(0.01)
            writer.write(ok())
            await writer.drain()

    async with Scripted(script) as server:
        client = client_for(server.url, max_connections=2, coalesce=False)
        answers = await asyncio.gather(*(client.get_json(f"/users/{i}", scope=CallScope())
                                         for i in range(12)))
        await client.aclose()
    assert answers == [{"id": "7"}] * 12
    assert server.peak == 2 and server.connections == 2 and server.requests == 12


async def test_a_call_given_up_frees_its_connection_slot() -> None:
    """With one connection allowed: a hanging answer times out, its connection is
    closed (its late answer can never be read as the next call's), and the next
    call gets a new connection."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        if n > 1:
            await serve_forever(server, ok(), reader, writer)
        await server.head(reader)
        await reader.read(1)  # until the client gives up and closes
        writer.write(ok(b'{"id": "late"}'))

    async with Scripted(script) as server:
        client = client_for(server.url, max_connections=1, timeout_ms=100)
        with pytest.raises(BackendTimeout):
            await client.get_json("/users/1", scope=CallScope())
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        await client.aclose()
    assert server.connections == 2


async def test_answers_other_than_200_keep_their_connection() -> None:
    """A 404 with a body and a 503 are answered from their heads; their bodies are read
    and dropped so the connection serves the next call."""
    answers = [b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
               b"HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"4\r\ndown\r\n0\r\n\r\n", ok()]

    async def script(reader: Reader, writer: Writer, n: int) -> None:
        for answer in answers:
            await server.head(reader)
            writer.write(answer)
            await writer.drain()
        await reader.read(1)

    async with Scripted(script) as server:
        client = client_for(server.url)
        missing = await client.get_json("/users/1", scope=CallScope(), missing_ok=True)
        with pytest.raises(BackendUnavailable, match="HTTP 503"):
            await client.get_json("/users/2", scope=CallScope())
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        await client.aclose()
    assert missing is MISSING and server.connections == 1


async def test_a_second_answer_to_one_request_closes_the_connection() -> None:
    """An answer followed in the same write by another: the call gets the first, and
    the connection is never used again (two calls at once must not share it)."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        if n == 1:
            await server.head(reader)
            writer.write(ok() + ok(b'{"id": "extra"}'))
        await serve_forever(server, ok(), reader, writer)

    async with Scripted(script) as server:
        client = client_for(server.url, coalesce=False)
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        answers = await asyncio.gather(*(client.get_json(f"/users/{i}", scope=CallScope())
                                         for i in range(3)))
        await client.aclose()
    assert answers == [{"id": "7"}] * 3
    assert server.connections == 4


async def test_bytes_arriving_on_an_idle_connection_close_it() -> None:
    """Half a status line on an idle connection: never read as the next answer's start."""
    go = asyncio.Event()

    async def script(reader: Reader, writer: Writer, n: int) -> None:
        if n == 1:
            await server.head(reader)
            writer.write(ok())
            await go.wait()
            writer.write(b"HTTP/1.1 2")
        await serve_forever(server, ok(), reader, writer)

    async with Scripted(script) as server:
        client = client_for(server.url)
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        pool = client._way._pool  # type: ignore[union-attr]
        go.set()
        for _ in range(200):  # until the pool drops the connection (<= 2 s, < IDLE_S)
            if not pool._idle:
                break
            await asyncio.sleep(0.01)
        assert not pool._idle
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        await client.aclose()
    assert server.connections == 2


async def test_an_error_status_is_answered_from_its_head_whatever_its_body() -> None:
    """A 503 whose body never ends: BACKEND_UNAVAILABLE at once, not a timeout; the
    body is dropped up to 64 KiB and then the connection with it."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(1000):  # bounded: ~8 MB; the client stops after 64 KiB
            writer.write(b"2000\r\n" + b" " * 0x2000 + b"\r\n")
            await writer.drain()

    async with Scripted(script) as server:
        client = client_for(server.url, timeout_ms=60_000)
        with pytest.raises(BackendUnavailable, match="HTTP 503"):
            await client.get_json("/users/7", scope=CallScope())
        await client.aclose()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"id\": \"7\"}",
    b"HTTP/1.0 200 OK\r\n\r\n{\"id\": \"7\"}",
    b"HTTP/1.1 100 Continue\r\n\r\n" + ok(),
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\n{\"i\r\n8\r\nd\": \"7\"}\r\n0\r\n\r\n",
], ids=["delimited by close", "HTTP/1.0", "100 Continue first", "chunked"])
async def test_answers_http_allows_are_read(answer: bytes) -> None:
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)
        writer.write(answer)
        await writer.drain()
        if b"100 Continue" in answer or b"chunked" in answer:
            await reader.read(1)

    async with Scripted(script) as server:
        client = client_for(server.url)
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        await client.aclose()


async def test_a_body_larger_than_the_cap_is_refused_by_its_declared_length() -> None:
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        await writer.drain()
        await reader.read(1)

    async with Scripted(script) as server:
        client = client_for(server.url, max_response_bytes=1000)
        with pytest.raises(BackendBadResponse, match="more than 1000 bytes"):
            await client.get_json("/users/7", scope=CallScope())
        await client.aclose()


async def test_the_request_sent_is_a_plain_get_with_the_forwarded_headers() -> None:
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await serve_forever(server, ok(), reader, writer)

    async with Scripted(script) as server:
        client = client_for(server.url + "/v1")
        scope = CallScope({"authorization": "Bearer t", "x-request-id": "abc"})
        await client.get_json("/users", {"ids": "1,2"}, scope=scope)
        await client.aclose()
    [head] = server.heads
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "GET /v1/users?ids=1,2 HTTP/1.1"
    assert set(lines[1:-2]) == {f"host: {server.url[7:]}", "accept: application/json",
                                "accept-encoding: gzip, deflate", "user-agent: tessera",
                                "authorization: Bearer t", "x-request-id: abc"}


@pytest.mark.parametrize("target, headers", [
    ("/users/7 HTTP/1.1\r\nx-evil: 1", {}),
    ("/users/7", {"authorization": "a\r\nx-evil: 1"}),
    ("/users/7", {"authorization": "a\x00"}),
    ("/users/7", {"accept-language": "\u20ac"}),
])
async def test_what_http_cannot_carry_is_never_sent(target: str,
                                                    headers: dict[str, str]) -> None:
    pool = Http1Pool("http://127.0.0.1:9", service="users", limit=1, cap=1000, static={})
    with pytest.raises(InputError):
        await pool.get(target, headers, 1.0)
    await pool.aclose()


async def test_a_refused_connection_is_unavailable_and_frees_its_slot() -> None:
    from faults import free_port

    client = client_for(f"http://127.0.0.1:{free_port()}", max_connections=1)
    for _ in range(3):
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await client.get_json("/users/7", scope=CallScope())
    await client.aclose()


async def test_a_call_with_less_time_left_times_out_first() -> None:
    """One timer per pool, due at the earliest deadline: a call cut short by its
    request's deadline times out while a call with the backend's full timeout is
    still waiting."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)
        await reader.read(1)  # never answers

    async with Scripted(script) as server:
        client = client_for(server.url, timeout_ms=5000, coalesce=False)
        patient = asyncio.create_task(client.get_json("/users/1", scope=CallScope()))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        with pytest.raises(BackendTimeout):
            await client.get_json("/users/2", scope=CallScope(deadline=loop.time() + 0.1))
        assert not patient.done()
        patient.cancel()
        await asyncio.gather(patient, return_exceptions=True)
        await client.aclose()


async def test_an_error_body_that_never_ends_frees_its_connection_at_the_deadline() -> None:
    """A 503 answered from its head whose body then stalls: the connection, still
    reading it, is closed at the call's deadline, so the pool's only slot comes free."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)
        if n == 1:
            writer.write(b"HTTP/1.1 503 Unavailable\r\nContent-Length: 100\r\n\r\n{")
            await reader.read(1)
            return
        writer.write(ok())
        await reader.read(1)

    async with Scripted(script) as server:
        client = client_for(server.url, timeout_ms=5000, max_connections=1)
        loop = asyncio.get_running_loop()
        with pytest.raises(BackendUnavailable, match="HTTP 503"):
            await client.get_json("/users/1", scope=CallScope(deadline=loop.time() + 0.1))
        assert await client.get_json("/users/7", scope=CallScope()) == {"id": "7"}
        await client.aclose()
    assert server.connections == 2


async def test_closing_the_pool_fails_its_calls_instead_of_leaving_them_waiting() -> None:
    """At shutdown: the call in flight and the call waiting for the pool's only
    connection both end as BACKEND_UNAVAILABLE, and a call after it too."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await server.head(reader)
        await reader.read(1)  # never answers

    async with Scripted(script) as server:
        client = client_for(server.url, timeout_ms=30_000, max_connections=1,
                            coalesce=False)
        calls = [asyncio.create_task(client.get_json(f"/users/{i}", scope=CallScope()))
                 for i in range(2)]
        while server.requests < 1:
            await asyncio.sleep(0.01)
        await client.aclose()
        outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
        with pytest.raises(BackendUnavailable):
            await client.get_json("/users/3", scope=CallScope())
    assert [type(o) for o in outcomes] == [BackendUnavailable] * 2


async def test_credentials_in_a_backend_url_are_sent_as_basic_auth() -> None:
    """A URL with user:password@ goes through aiohttp's pool, which sends them, in
    place of the client's forwarded Authorization (aiohttp refuses both at once)."""
    async def script(reader: Reader, writer: Writer, n: int) -> None:
        await serve_forever(server, ok(), reader, writer)

    async with Scripted(script) as server:
        url = server.url.replace("http://", "http://svc:s3cret@")
        client = client_for(url)
        for scope in (CallScope(), CallScope({"authorization": "Bearer client"})):
            assert await client.get_json("/users/7", scope=scope) == {"id": "7"}
        await client.aclose()
    for head in server.heads:
        lines = {line.partition(b": ")[0].lower(): line.partition(b": ")[2]
                 for line in head.split(b"\r\n")}
        assert lines[b"authorization"] == b"Basic c3ZjOnMzY3JldA=="  # svc:s3cret
