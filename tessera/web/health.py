"""/healthz and /readyz, and the process's phase: starting -> ready -> draining.

    /healthz   200 while the process answers at all
    /readyz    200 when ready; 503 while starting or draining; each backend's state

`draining` is set by `tessera serve` on SIGTERM (see cli.DrainingServer): from
then /readyz answers 503, so a load balancer stops sending new requests, while
the requests in flight finish.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..backends import Backends


class Phase:
    """The process's serving phase (one per process, like its signals)."""

    ready = False
    draining = False

    @classmethod
    def name(cls) -> str:
        return "draining" if cls.draining else "ready" if cls.ready else "starting"


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    phase = Phase.name()
    backends: Backends | None = getattr(request.state, "backends", None)
    body = {"status": phase,
            "backends": backends.status() if backends is not None else {}}
    return JSONResponse(body, status_code=200 if phase == "ready" else 503)
