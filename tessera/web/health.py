"""/healthz and /readyz, and the process's phase: starting -> ready -> draining.

    /healthz   200 while the process answers at all
    /readyz    200 when ready; 503 while starting or draining; each backend's state

`draining` is set by `tessera serve` on SIGTERM (`DrainingServer`): from then
/readyz answers 503, so a load balancer stops sending new requests, while the
requests in flight finish.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..backends import Backends


class Phase:
    """One app's serving phase (in `app.state.phase`; two apps in a process, as in
    tests, each have their own)."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False

    def name(self) -> str:
        return "draining" if self.draining else "ready" if self.ready else "starting"


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    phase = request.app.state.phase.name()
    backends: Backends | None = getattr(request.state, "backends", None)
    shared = getattr(request.state, "shared", None)
    body = {"status": phase,
            "backends": backends.status() if backends is not None else {},
            "redis": shared.status() if shared is not None else {"state": "off"}}
    return JSONResponse(body, status_code=200 if phase == "ready" else 503)


class DrainingServer(uvicorn.Server):
    """uvicorn's Server with a drain on SIGTERM/SIGINT: /readyz answers 503 at once,
    requests are still served for `drain_delay_s` (so a load balancer sees the 503
    and stops routing here), then uvicorn stops accepting, lets the requests in
    flight finish within its graceful-shutdown timeout, and exits. A second signal
    skips what is left of the delay."""

    def __init__(self, config: uvicorn.Config, drain_delay_s: float) -> None:
        super().__init__(config)
        self.drain_delay_s = drain_delay_s

    def handle_exit(self, sig: int, frame: Any) -> None:
        app: Any = self.config.app  # the Starlette app this server serves
        phase: Phase = app.state.phase
        first = not phase.draining
        phase.draining = True
        if not first or self.drain_delay_s <= 0:
            super().handle_exit(sig, frame)
            return
        logging.getLogger("tessera").warning("draining: /readyz is 503; stopping in %.1f s",
                                             self.drain_delay_s)
        timer = threading.Timer(self.drain_delay_s, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()
