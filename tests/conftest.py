"""Shared fixtures: the app in-process, a call recorder, misbehaving backends."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn

from tessera.app import create_app
from tessera.config import Settings, parse_settings
from tessera.demo import build_demo_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder(httpx.AsyncBaseTransport):
    """Passes every backend call to `inner` and remembers it (count calls, not mocks)."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.ASGITransport(app=build_demo_app())
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def calls(self, service: str | None = None) -> list[str]:
        return [r.url.raw_path.decode() for r in self.requests
                if service is None or r.url.host == f"{service}.demo"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.requests:
            name = r.url.host.removesuffix(".demo")
            out[name] = out.get(name, 0) + 1
        return out


@asynccontextmanager
async def gateway(settings: Settings | dict[str, Any] | None = None,
                  transport: httpx.AsyncBaseTransport | None = None, *,
                  batching: bool = True, graph: Any = None,
                  clock: Any = time.monotonic) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, lifespan included, behind an httpx client (no sockets). `clock`
    drives its breakers, retry budgets and stale ages (a `FakeClock` in tests)."""
    if isinstance(settings, dict):
        settings = parse_settings(settings)
    app = create_app(settings or Settings(), transport, batching=batching, graph=graph,
                     clock=clock)
    async with app.router.lifespan_context(app) as state:
        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})  # as uvicorn does with lifespan state
            await app(scope, receive, send)

        transport_in = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport_in, base_url="http://gateway") as client:
            client.app = app  # type: ignore[attr-defined]  # for tests that look inside
            yield client


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep's stand-in: the time passes at once."""
        self.advance(seconds)


REFUSING = "http://127.0.0.1:9"  # nothing listens: every call is refused


@asynccontextmanager
async def open_users_circuit() -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose users backend refuses connections and whose circuit for it
    has opened (after two failed calls), for tests of how an open circuit shows."""
    settings = {"backends": {"users": {"url": REFUSING, "retries": 0,
                                       "circuit_breaker": {"minimum_calls": 2, "window": 2}}}}
    async with gateway(settings) as client:
        for _ in range(3):
            await gql(client, '{ user(id: "7") { name } }')
        yield client


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@contextmanager
def process_answering(cmd: list[str], urls: list[str], *, cwd: Any = None,
                      what: str = "process") -> Iterator[subprocess.Popen[bytes]]:
    """`cmd` started, waited for until every URL answers (< 500), stopped by its PID
    at the end; its output is read only to say why it did not start."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        waiting = list(urls)
        while waiting:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"{what} exited at start: {output[-2000:]}")
            try:
                if httpx.get(waiting[0], timeout=2).status_code < 500:
                    waiting.pop(0)
                    continue
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{what} did not answer {waiting[0]}"
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@contextmanager
def live_server(app: Any, **options: Any) -> Iterator[str]:
    """`app` served by uvicorn on a free 127.0.0.1 port in a thread; yields its base URL.
    `options` are uvicorn.Config's (e.g. `**uvicorn_options(settings)`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           **{"log_level": "warning", **options}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
