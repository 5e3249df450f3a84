"""How uvicorn serves the app: its options, and an HTTP protocol with deadlines
for clients that send slowly.

    config = uvicorn.Config(app, host=host, port=port, **uvicorn_options(settings))

uvicorn times out an idle keep-alive connection, but not one that sends half a
request line, half its headers or half its body and then waits: such a
connection is held forever, and a thousand of them exhaust the process's file
descriptors (slowloris). `GuardedHttp` closes a connection whose headers have
not all arrived `header_timeout_s` after it opened (or after its previous
response), or whose body has not all arrived `body_timeout_s` after its headers.
`max_connections` (uvicorn's `limit_concurrency`) answers 503 beyond that many
open connections or requests in flight, and `raise_fd_limit` lifts the soft
file-descriptor limit to the hard one at start.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from ..config import ServerSettings, Settings
from ..deadlines import Deadlines

log = logging.getLogger("tessera.server")


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, with header and body deadlines (kept to within
    SLACK_S, on one timer per server: see tessera.deadlines)."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0
    _what = "headers"  # what the current deadline waits for

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        no_delay(transport)
        self._deadlines = _deadlines_of(self.server_state)
        self._armed = False
        self._arm(self.header_timeout_s, "headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._armed:  # a next request on a kept-alive connection
            self._arm(self.header_timeout_s, "headers")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout_s, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    _running: RequestResponseCycle | None = None  # the request whose app runs

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        # uvicorn marks the newest request gone; with requests pipelined behind the
        # one being answered, that one wrote to the closed transport (uvloop
        # raises: a traceback per such request). Its answer now goes nowhere.
        running = self._running
        if running is not None and not running.response_complete:
            running.disconnected = True
            running.message_event.set()

    def _arm(self, seconds: float, what: str) -> None:
        self._what = what
        self._armed = True
        self._deadlines.set(self, self.loop.time() + seconds)

    def _disarm(self) -> None:
        if self._armed:
            self._armed = False
            self._deadlines.clear(self)

    def too_slow(self) -> None:
        self._armed = False
        if not self.transport.is_closing():
            log.info("closed a connection from %s: its request %s did not arrive in time",
                     self.client[0] if self.client else "?", self._what)
            self.transport.close()


SLACK_S = 0.1


def _deadlines_of(state: Any) -> Deadlines[GuardedHttp]:
    """The server's deadlines (one set per uvicorn server: its connections share
    an event loop), made at its first connection."""
    deadlines: Deadlines[GuardedHttp] | None = getattr(state, "tessera_deadlines", None)
    if deadlines is None:
        deadlines = Deadlines(GuardedHttp.too_slow, slack=SLACK_S)
        state.tessera_deadlines = deadlines
    return deadlines


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Nagle's algorithm off for this connection. uvloop does it, and asyncio does it
    for sockets it made; not for the sockets uvicorn binds for its workers, where an
    answer's body then waits for the client's delayed ACK of its head (40 ms)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - the connection is already gone
            pass


def guarded_protocol(server: ServerSettings) -> type[GuardedHttp]:
    """The protocol class, with this config's deadlines. Set on the class itself (one
    server per process): uvicorn's workers get the class by name, and each worker
    sets its deadlines again when `tessera.app.serve_app` reads the config."""
    GuardedHttp.header_timeout_s = server.header_timeout_s
    GuardedHttp.body_timeout_s = server.body_timeout_s
    return GuardedHttp


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn runs the gateway (shared with the benchmark's baseline): uvloop
    where installed, the guarded httptools protocol, the connection limit, and no
    access log (a line per request from uvicorn costs more than the request does
    at zero backend latency)."""
    server = settings.server
    return {"log_level": server.log_level, "loop": "auto", "http": guarded_protocol(server),
            "access_log": False, "log_config": None,  # logging is configured by Tessera
            "timeout_keep_alive": server.keep_alive_s,
            "limit_concurrency": server.max_connections,
            "timeout_graceful_shutdown": server.shutdown_grace_s}


# The collector's first threshold while serving (Python's default: 700 allocations).
YOUNG_THRESHOLD = 5000


def settle_heap() -> None:
    """Before serving: the objects made at start (schema, graph, clients; they live
    as long as the process) moved out of the collector's sight (`gc.freeze`), so
    no pass walks them again, and a first-generation threshold of 5,000 instead
    of 700. An answered request leaves no reference cycle (tests/test_garbage.py)
    and a failed call's error keeps no frames (`errors.framed_out`), so what a
    pass could free is small either way; at 700 the passes over in-flight
    requests took ~8 % of the CPU under load, and full passes over the startup
    heap ~10 % more."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def raise_fd_limit(wanted: int) -> None:
    """Lift the soft open-files limit toward the hard one (connections and backend
    pools need a descriptor each); say so when even that is below `wanted`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft < wanted:
        log.warning("the open-files limit is %d, below the %d that server.max_connections "
                    "and the backend pools may need; raise it (ulimit -n)", soft, wanted)
