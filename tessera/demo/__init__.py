"""The embedded demo backends: five services over one seeded SQLite store.

    transport = embedded_transport()      # in-process, for `tessera serve` with no [backends]
    await serve_demo_backends(port=8101)  # real HTTP servers on 8101-8105

In-process, one ASGI app routes by host (`orders.demo`, `users.demo`, ...), so
the gateway's clients talk to it exactly as they would to real services.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Iterable

import httpx
from starlette.applications import Starlette
from starlette.routing import Host

from ..config import SERVICES
from .services import build_service_apps
from .store import open_store

__all__ = ["PortTaken", "build_demo_app", "embedded_transport", "open_store",
           "serve_demo_backends"]

_store: sqlite3.Connection | None = None


def shared_store() -> sqlite3.Connection:
    """The process's demo store, seeded on first use (read-only afterwards)."""
    global _store
    if _store is None:
        _store = open_store()
    return _store


def build_demo_app(db: sqlite3.Connection | None = None, *, latency_ms: float = 0,
                   failing: Iterable[str] = ()) -> Starlette:
    """All five services in one ASGI app, each under host `NAME.demo`."""
    apps = build_service_apps(db or shared_store(), latency_ms=latency_ms, failing=failing)
    return Starlette(routes=[Host(f"{name}.demo", app) for name, app in apps.items()])


def embedded_transport() -> httpx.AsyncBaseTransport:
    return httpx.ASGITransport(app=build_demo_app())


async def serve_demo_backends(host: str = "127.0.0.1", port: int = 8101, *,
                              latency_ms: float = 0, failing: Iterable[str] = (),
                              only: str | None = None) -> None:
    """Serve each service on its own port (orders on `port`, users on `port+1`, ...),
    or just `only` on `port` (one container per service)."""
    import uvicorn

    apps = build_service_apps(shared_store(), latency_ms=latency_ms, failing=failing)
    ports = {only: port} if only else {name: port + i for i, name in enumerate(SERVICES)}
    sockets = {name: listening_socket(host, at, name) for name, at in ports.items()}
    servers = [(uvicorn.Server(uvicorn.Config(apps[name], log_level="warning",
                                              lifespan="off")), sockets[name])
               for name in ports]
    for name, at in ports.items():
        print(f"demo {name:<9} http://{host}:{at}", flush=True)
    await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))


class PortTaken(OSError):
    """A port the demo services need is in use (or cannot be bound)."""


def listening_socket(host: str, port: int, name: str) -> socket.socket:
    """Bind before serving, so a taken port is one clear sentence, not a traceback."""
    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except OSError as exc:
        raise PortTaken(f"port {port} on {host} (for the {name} service) cannot be used: "
                        f"{exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
