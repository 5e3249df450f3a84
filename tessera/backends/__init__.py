"""The backend services Tessera calls, one `BackendClient` each, by name.

    backends = Backends.open(settings, ["orders", "users"], embedded=demo_transport)
    await backends.clients["users"].get_json("/users/7", scope=CallScope())
    await backends.aclose()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from ..config import Settings
from .client import MISSING, BackendClient
from .scope import AnswerBudget, CallScope

__all__ = ["MISSING", "AnswerBudget", "BackendClient", "Backends", "CallScope"]

DEMO_HOST_SUFFIX = ".demo"


class Backends:
    """A client per backend name, plus how each is reached."""

    def __init__(self, clients: dict[str, BackendClient], modes: dict[str, str],
                 answers: AnswerBudget | None = None) -> None:
        self.clients = clients
        self.modes = modes  # service -> "http" or "embedded"
        # the bytes of answers the requests in progress hold (server.max_backend_bytes)
        self.answers = answers

    @classmethod
    def open(cls, settings: Settings, names: Iterable[str], *,
             transport: httpx.AsyncBaseTransport | None = None,
             embedded: Callable[[], httpx.AsyncBaseTransport] | None = None,
             clock: Callable[[], float] = time.monotonic, shared: Any = None) -> Backends:
        """A client for each name. `transport`, when given, carries every call (tests
        pass a MockTransport or a recording wrapper); otherwise a backend with a
        `url` gets a real connection pool and one without gets `embedded()` (the
        graph's demo services, made once). `clock` drives breakers, budgets and
        cache ages (tests pass a fake one); `shared` (the app's SharedState) is the
        entity caches' second level."""
        demo: httpx.AsyncBaseTransport | None = None
        clients: dict[str, BackendClient] = {}
        modes: dict[str, str] = {}
        for service in names:
            url = settings.url(service)
            modes[service] = "http" if url else "embedded"
            chosen = transport
            if chosen is None and url is None:
                if demo is None:
                    if embedded is None:
                        raise ValueError(f"backend {service!r} has no url and no demo")
                    demo = embedded()
                chosen = demo
            base_url = url or f"http://{service}{DEMO_HOST_SUFFIX}"
            clients[service] = BackendClient(service, base_url, settings.policy(service),
                                             chosen, clock=clock, shared=shared)
        return cls(clients, modes, AnswerBudget(settings.server.max_backend_bytes))

    def status(self) -> dict[str, dict[str, object]]:
        """Each backend as /readyz shows it: how it is reached, its state, circuit,
        load and its last calls. State: "circuit open", "failing" (the last call
        failed), "up" (it answered), or "idle" (not called yet)."""
        out: dict[str, dict[str, object]] = {}
        for name, client in self.clients.items():
            recent = client.recent.summary()
            circuit = client.breaker.state
            state = ("circuit open" if circuit == "open" else
                     "failing" if recent["last"] == "failed" else
                     "up" if recent["last"] == "ok" else "idle")
            out[name] = {"mode": self.modes[name], "state": state, "circuit": circuit,
                         "in_flight": client.bulkhead.in_flight, "recent": recent}
        return out

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
