"""One client request, observed once, the same way for /graphql and REST routes:
the in-flight gauge, a span, the request counter and latency histogram, and the
one log line.

    with observe("graphql", request_id, request.headers) as seen:
        response = await serve(request)
        seen.status, seen.operation = response.status_code, "OrderPage"

The outcome label follows from what the endpoint noted: refused (403, 405,
406, 413, 415, 429), failed (5xx), request_error (another 4xx, or an operation
that never ran), partial (data with errors), else ok.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import logs, metrics, tracing

REFUSED = frozenset({403, 405, 406, 413, 415, 429})
_active = [0]  # requests in flight in this process (metrics are flushed when none is)


@dataclass
class Seen:
    kind: str
    request_id: str
    status: int = 200
    operation: str | None = None
    partial: bool = False
    failed: bool = False
    calls: dict[str, int] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # more for the log line

    @property
    def outcome(self) -> str:
        if self.status in REFUSED:
            return "refused"
        if self.status >= 500:
            return "failed"
        if self.status >= 400 or self.failed:
            return "request_error"
        return "partial" if self.partial else "ok"


class observe:  # lower case: used as `with observe(...) as seen`, as it was a function
    """`with observe(kind, request_id, headers) as seen:` (a class rather than a
    generator context manager: it wraps every client request)."""

    __slots__ = ("_seen", "_started", "_span")

    def __init__(self, kind: str, request_id: str, headers: Mapping[str, str]) -> None:
        logs.request_id.set(request_id)
        self._seen = Seen(kind, request_id)
        self._span = tracing.span(f"{kind} request", {"tessera.request_id": request_id},
                                  parent=headers)
        self._started = 0.0

    def __enter__(self) -> Seen:
        self._started = time.perf_counter()
        metrics.IN_FLIGHT.inc()
        _active[0] += 1
        try:
            self._span.__enter__()
        except BaseException:
            metrics.IN_FLIGHT.dec()
            _active[0] -= 1
            raise
        return self._seen

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            self._span.__exit__(kind, error, trace)
        finally:
            metrics.IN_FLIGHT.dec()
            _active[0] -= 1
        if kind is not None:  # the endpoint failed: counted and logged by the server
            metrics.flush_due(idle=not _active[0])
            return
        seen = self._seen
        seconds = time.perf_counter() - self._started
        label = seen.operation if seen.kind == "rest" else \
            metrics.operation_label(seen.operation)
        metrics.child(metrics.REQUESTS, seen.kind, str(label), seen.outcome).inc()
        metrics.child(metrics.REQUEST_SECONDS, seen.kind).observe(seconds)
        logs.log_request(kind=seen.kind, status=seen.status, operation=seen.operation,
                         outcome=seen.outcome, duration_ms=round(seconds * 1000, 1),
                         backend_calls=seen.calls, **seen.fields)
        metrics.flush_due(idle=not _active[0])
