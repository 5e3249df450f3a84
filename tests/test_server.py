"""Slow clients (tessera/web/server.py): half a header, half a body, or nothing at
all, against a real uvicorn socket with the options `tessera serve` uses."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from conftest import live_server

from tessera.app import create_app
from tessera.config import parse_settings
from tessera.demo import listening_socket
from tessera.web.server import no_delay, uvicorn_options

SETTINGS = {"server": {"header_timeout_s": 0.5, "body_timeout_s": 0.5, "max_connections": 20,
                       "log_level": "error"}}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    settings = parse_settings(SETTINGS)
    with live_server(create_app(settings), **uvicorn_options(settings)) as base:
        yield base


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@contextmanager
def connected(url: str, sent: bytes) -> Iterator[socket.socket]:
    sock = socket.create_connection(address(url), timeout=15)
    try:
        if sent:
            sock.sendall(sent)
        yield sock
    finally:
        sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (recv gives EOF, or a reset)."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize("sent", [
    b"",  # connects and says nothing
    b"GET /healthz HT",  # half a request line
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",  # half its headers
    (b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 100\r\n\r\n{\"query\":"),  # half its body
], ids=["nothing", "half a request line", "half the headers", "half the body"])
def test_a_slow_request_is_closed(url: str, sent: bytes) -> None:
    with connected(url, sent) as sock:
        assert closed_by_server(sock)


def test_slow_connections_beyond_the_limit_are_refused_then_freed(url: str) -> None:
    slow = [socket.create_connection(address(url), timeout=15) for _ in range(25)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        busy = httpx.get(f"{url}/healthz", timeout=15)
        assert busy.status_code == 503  # over server.max_connections
        assert all(closed_by_server(sock) for sock in slow)
        deadline = time.monotonic() + 15
        while (answer := httpx.get(f"{url}/healthz", timeout=15)).status_code != 200:
            assert time.monotonic() < deadline, "the slow connections were never freed"
            time.sleep(0.1)
        assert answer.json() == {"status": "ok"}
    finally:
        for sock in slow:
            sock.close()


def test_a_prompt_client_on_a_kept_alive_connection_is_served(url: str) -> None:
    with httpx.Client(base_url=url, timeout=15) as client:
        first = client.get("/healthz")
        time.sleep(0.3)  # idle, but within keep-alive and the header deadline
        second = client.get("/healthz")
    assert first.status_code == second.status_code == 200


async def _accepted_nodelay(listener: socket.socket, *, fix: bool) -> int:
    """TCP_NODELAY of a connection accepted by asyncio from `listener`."""
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
            if fix:
                no_delay(transport)
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Probe, sock=listener)
    port = listener.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(200):
        if seen:
            break
        await asyncio.sleep(0.01)
    writer.close()
    server.close()
    return seen[0]


@pytest.mark.anyio
async def test_connections_never_wait_for_a_delayed_ack() -> None:
    """Nagle's algorithm is off for the demo services' connections and the gateway's
    (else every answer after the first on a kept-alive connection waited 40 ms for
    the client's delayed ACK of its head). A socket bound without naming its
    protocol, as uvicorn binds one for its workers, shows why `no_delay` is there."""
    assert await _accepted_nodelay(listening_socket("127.0.0.1", 0, "probe"), fix=False)
    unnamed = socket.create_server(("127.0.0.1", 0))
    assert not await _accepted_nodelay(unnamed, fix=False)
    unnamed = socket.create_server(("127.0.0.1", 0))
    assert await _accepted_nodelay(unnamed, fix=True)


def test_graphql_is_served_without_starlettes_layers_and_a_bug_is_still_a_bare_500(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """/graphql goes straight to its endpoint (no middleware configured); with CORS
    configured it goes through Starlette. Either way an unexpected exception in the
    endpoint is uvicorn's plain 500, with no stack trace in the answer, and the
    server keeps serving."""
    from tessera.web.graphql import GraphQLHTTP

    async def broken(self: GraphQLHTTP, *args: object) -> object:
        raise RuntimeError("a bug with a secret in its message")

    for cors in ([], ["https://app.example"]):
        app = create_app(parse_settings({"server": {"cors": {"allow_origins": cors}}}))
        assert (app.graphql is not None) == (not cors)  # type: ignore[attr-defined]
        with live_server(app, log_level="critical") as base:
            ok = httpx.post(f"{base}/graphql", json={"query": "{ __typename }"})
            assert ok.json() == {"data": {"__typename": "Query"}}
            monkeypatch.setattr(GraphQLHTTP, "_handle", broken)
            failed = httpx.post(f"{base}/graphql", json={"query": "{ __typename }"})
            monkeypatch.undo()
            assert failed.status_code == 500
            assert "secret" not in failed.text and "Traceback" not in failed.text
            assert httpx.get(f"{base}/healthz").status_code == 200


def test_a_client_gone_with_requests_pipelined_leaves_no_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn marks only a connection's newest request as gone; the one being
    answered, with another pipelined behind it, wrote its answer to the closed
    transport and uvloop raised (a stack trace in the log per such request)."""
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        if scope["path"] == "/slow":  # still working when the client leaves
            await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    settings = parse_settings(SETTINGS)
    with live_server(app, **uvicorn_options(settings)) as base:
        for _ in range(3):
            with connected(base, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                                 b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
                pass  # closed at once
        time.sleep(0.5)  # the slow answers come and go nowhere (no timing asserted)
        assert httpx.get(f"{base}/").text == "ok"
    assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]
