"""Embedded demo backends for any graph: its `Graph.demo` services, in-process or
as real HTTP servers, with the drill knobs around them.

    transport = embedded_transport(graph)                 # `tessera serve` with no url
    await serve_demo_backends(graph, port=8101)           # one port per backend

In-process, one ASGI app routes by host (`orders.demo`, `users.demo`, ...), so
the gateway's clients talk to it exactly as they would to real services.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import select
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Host
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..backends import DEMO_HOST_SUFFIX
from ..loaders.eager import start
from .fixtures import fixtures

if TYPE_CHECKING:
    from ..compose.graph import Graph

__all__ = ["DEMO_HOST_SUFFIX", "PortTaken", "SPIN_S", "build_demo_app", "embedded_transport",
           "fixtures", "run_demo_backends", "serve_demo_backends", "wrapped"]




class Conditions:
    """Wraps a service app with the drill knobs (latency: the answer leaves that long
    after the request arrived, when its bytes did if the server says (`ARRIVED`);
    forced 503) and counts the requests it serves
    (`GET /_demo/calls`, read by the benchmark: `calls`, and `recent`, the last
    RECENT targets with their arrival on `clock`, the host's monotonic clock, from
    which the benchmark replays a query's calls without a gateway). `GET /healthz`
    answers 200 (a container's health check), uncounted and never failed."""

    RECENT = 64

    def __init__(self, app: ASGIApp, latency_ms: float, failing: bool, *,
                 clock: Callable[[], float] = time.monotonic,
                 later: Callable[[float, Callable[[], object]], asyncio.Handle] | None = None
                 ) -> None:
        self.app = app
        # what answers a call: the service, or for --fail the same 503 each time
        self.answer: ASGIApp = _REFUSAL if failing else app
        self.clock = clock
        # runs a callback that many seconds from now (else the running loop's call_later)
        self.later = later
        self.latency = latency_ms / 1000
        self.calls = 0
        self.recent: deque[tuple[float, str]] = deque(maxlen=self.RECENT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_demo/calls":  # for benchmarks: requests served so far
            await JSONResponse({"calls": self.calls, "recent": list(self.recent)})(
                scope, receive, send)
            return
        if scope["path"] == "/healthz":
            await _HEALTHY(scope, receive, send)
            return
        arrived = scope.get(ARRIVED) or self.clock()
        self.calls += 1
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string")
        self.recent.append((arrived, (path + b"?" + query if query else path)
                            .decode("latin-1")))
        if self.latency:
            await self._answer_late(arrived + self.latency, scope, receive, send)
        else:
            await self.answer(scope, receive, send)

    async def _answer_late(self, due: float, scope: Scope, receive: Receive,
                           send: Send) -> None:
        """The answer leaves at `due`, `latency` after the request arrived, as a
        service whose latency that is would answer: its work is done within that
        time, not after it. (Sleeping first and working after made each call
        latency + work, and calls arriving together queue for the work on the
        service's one core: at 4 connections a 100-id call answered ~3 ms late, more
        than any gateway's own work, so latency x hops was no floor to measure
        against.) It is written from the timer's own callback, in the loop pass the
        timer fires (a sleeping task resumed a pass later, behind the work the
        requests read in that pass queued: ~0.03 ms later idle, more under load)."""
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        async def answer() -> None:
            for message in held:
                await send(message)

        await self.answer(scope, receive, hold)
        if (left := due - self.clock()) <= 0:
            await answer()
            return
        loop = asyncio.get_running_loop()
        written: asyncio.Future[asyncio.Task[None]] = loop.create_future()
        timer = (self.later or loop.call_later)(
            left, lambda: written.set_result(start(loop, answer())))
        try:
            sending = await written
        except asyncio.CancelledError:
            timer.cancel()
            raise
        await sending


ARRIVED = "tessera.arrived"  # scope key: when the request's bytes arrived (`clock`'s time)


class ArrivalStamped(HttpToolsProtocol):
    """uvicorn's protocol, stamping each request's scope with when its bytes arrived
    (`ARRIVED`). Taken in the app instead, a request's arrival came after the
    work of the requests read with it or before it in the same loop pass: ~0.1 ms
    late at the median, 0.3 at p90 at 4 connections, added to every call."""

    _arrived = 0.0

    def data_received(self, data: bytes) -> None:
        self._arrived = time.monotonic()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[ARRIVED] = self._arrived  # type: ignore[literal-required]


_REFUSAL = JSONResponse({"error": "service unavailable (demo --fail)"}, status_code=503)
_HEALTHY = JSONResponse({"status": "ok"})


def _default_graph() -> Graph:
    from ..compose.graph import load_graph

    return load_graph(None)


def wrapped(services: Mapping[str, ASGIApp], *, latency_ms: float = 0,
            failing: Iterable[str] = ()) -> dict[str, ASGIApp]:
    failing = set(failing)
    return {name: Conditions(app, latency_ms, name in failing)
            for name, app in services.items()}


def build_demo_app(graph: Graph | None = None, *, latency_ms: float = 0,
                   failing: Iterable[str] = ()) -> Starlette:
    """Every demo service of `graph` (the shop by default) in one ASGI app, each
    under host `NAME.demo`."""
    services = (graph or _default_graph()).demo_services()
    apps = wrapped(services, latency_ms=latency_ms, failing=failing)
    return Starlette(routes=[Host(f"{name}{DEMO_HOST_SUFFIX}", app)
                             for name, app in apps.items()])


def embedded_transport(graph: Graph | None = None) -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=build_demo_app(graph))


class PortTaken(OSError):
    """A port the demo services need is in use (or cannot be bound)."""


def listening_socket(host: str, port: int, name: str) -> socket.socket:
    """Bind before serving, so a taken port is one clear sentence, not a traceback.

    The socket is made with its protocol named (IPPROTO_TCP), as a server binding
    by host and port would: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    for connections accepted from such a socket. Without it each answer's body
    waited for the client's delayed ACK of its head: 40 ms on every request of a
    kept-alive connection after the first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise PortTaken(f"port {port} on {host} (for the {name} service) cannot be used: "
                        f"{exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class FineTimerSelector(selectors.EpollSelector):
    """epoll waits in whole milliseconds (Python rounds a timeout up), so a timer
    woke up to 1 ms late: a demo service of 20 ms answered at 20.8 (median, one
    connection), the gateway in front of it paid that on every hop, and calls
    released together at each millisecond tick came back in bursts. Waiting on the
    epoll descriptor with select(), whose timeout is in microseconds, wakes a
    timer within ~0.1 ms; the events are then read from epoll without waiting.

    That ~0.1 ms is the machine's own wake-up from a timer (on the benchmark's VM
    0.13 ms at the median for a 20 ms call_later, with any timer slack). With
    `spin` (seconds) the last `spin` of a wait is polled instead of slept, the
    core yielded to any other process that wants it between polls (wrk shares it
    in the benchmark): the same timer then fires ~0.01 ms late. Polling stops at
    the first event, so it takes only time the service would have spent idle."""

    def __init__(self, spin: float = 0.0) -> None:
        super().__init__()
        self.spin = spin

    def select(self, timeout: float | None = None) -> list[
            tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0:
            until = time.monotonic() + timeout
            polled = [self.fileno()]
            try:
                ready = timeout > self.spin and select.select(
                    polled, [], [], timeout - self.spin)[0]
                while not ready and time.monotonic() < until:
                    os.sched_yield()
                    ready = select.select(polled, [], [], 0)[0]
            except ValueError:  # a descriptor select() cannot take: the coarse wait
                return super().select(timeout)
            timeout = 0
        return super().select(timeout)


SPIN_S = 0.0004  # how long before a timer the demo services poll, when a latency is set


def fine_timer_slack() -> None:
    """Linux lets a sleeping thread's wake-up come up to its timer slack late (50 µs
    by default): a select() of 5 ms woke ~0.17 ms late at the median on the
    benchmark's 2-core VM, ~0.05 ms with a slack of 1 ns. Elsewhere, or where
    /proc does not allow it, nothing changes."""
    try:
        with open("/proc/self/timerslack_ns", "w") as slack:
            slack.write("1")
    except OSError:
        pass


def run_demo_backends(main: Coroutine[None, None, None], *, spin: float = 0.0) -> None:
    """asyncio.run for the demo services: on Linux, timers to the microsecond
    (with `spin`, to ~0.01 ms: see FineTimerSelector)."""
    fine_timer_slack()
    if not hasattr(selectors, "EpollSelector"):
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(
            FineTimerSelector(spin))) as runner:
        runner.run(main)


async def serve_demo_backends(graph: Graph | None = None, host: str = "127.0.0.1",
                              port: int = 8101, *, latency_ms: float = 0,
                              failing: Iterable[str] = (), only: str | None = None,
                              at: Mapping[str, int] | None = None) -> None:
    """Serve each demo service on its own port (the one `at` gives it, else the
    first on `port`, the next on `port+1`, ...), or just `only` (on its `at` port,
    else `port`: one container per service)."""
    import uvicorn

    apps = wrapped((graph or _default_graph()).demo_services(), latency_ms=latency_ms,
                   failing=failing)
    given = dict(at or {})
    if only:
        ports = {only: given.get(only, port)}
    else:
        free = (n for n in itertools.count(port) if n not in given.values())
        ports = {name: given[name] if name in given else next(free) for name in apps}
    sockets = {name: listening_socket(host, number, name) for name, number in ports.items()}
    servers = [(uvicorn.Server(uvicorn.Config(apps[name], log_level="warning",
                                              lifespan="off", http=ArrivalStamped)),
                sockets[name])
               for name in ports]
    for name, number in ports.items():
        print(f"demo {name:<9} http://{host}:{number}", flush=True)
    await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
