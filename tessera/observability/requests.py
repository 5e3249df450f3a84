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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import logs, metrics, tracing

REFUSED = frozenset({403, 405, 406, 413, 415, 429})


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


@contextmanager
def observe(kind: str, request_id: str, headers: Mapping[str, str]) -> Iterator[Seen]:
    logs.request_id.set(request_id)
    seen = Seen(kind, request_id)
    started = time.perf_counter()
    metrics.IN_FLIGHT.inc()
    try:
        with tracing.span(f"{kind} request", {"tessera.request_id": request_id},
                          parent=headers):
            yield seen
    finally:
        metrics.IN_FLIGHT.dec()
    seconds = time.perf_counter() - started
    label = seen.operation if kind == "rest" else metrics.operation_label(seen.operation)
    metrics.child(metrics.REQUESTS, kind, str(label), seen.outcome).inc()
    metrics.child(metrics.REQUEST_SECONDS, kind).observe(seconds)
    logs.log_request(kind=kind, status=seen.status, operation=seen.operation,
                     outcome=seen.outcome, duration_ms=round(seconds * 1000, 1),
                     backend_calls=seen.calls, **seen.fields)
