"""Prometheus metrics, served at /metrics; correct with several workers.

    tessera_requests_total{kind, operation, outcome}     kind graphql|rest
    tessera_request_duration_seconds{kind}               histogram
    tessera_requests_in_flight                           gauge (summed over workers)
    tessera_backend_calls_total{service, outcome}        one per attempt (retries count)
    tessera_backend_call_duration_seconds{service}       histogram
    tessera_loader_batch_size{loader}                    keys per DataLoader batch
    tessera_circuit_state{service}                       0 closed, 1 half-open, 2 open

With `server.workers > 1`, `tessera serve` points PROMETHEUS_MULTIPROC_DIR at a
fresh directory before the workers start, and /metrics merges every worker's
figures (prometheus-client's multiprocess mode). Operation names are the
client's, so only well-formed ones are kept, and at most MAX_OPERATIONS
distinct ones; the rest count as "other".
"""

from __future__ import annotations

import os
import re
import time
from bisect import bisect_left
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATIONS = 200
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter("tessera_requests", "Client requests by kind, operation and outcome "
                   "(ok, partial, request_error, refused, failed)",
                   ["kind", "operation", "outcome"])
REQUEST_SECONDS = Histogram("tessera_request_duration_seconds", "Client request latency",
                            ["kind"], buckets=_LATENCY)
IN_FLIGHT = Gauge("tessera_requests_in_flight", "Client requests being served",
                  multiprocess_mode="livesum")
BACKEND_CALLS = Counter("tessera_backend_calls", "Backend call attempts by outcome (ok, "
                        "timeout, unavailable, bad_response, circuit_open, bulkhead_full, "
                        "memory_limit)",
                        ["service", "outcome"])
BACKEND_SECONDS = Histogram("tessera_backend_call_duration_seconds",
                            "Backend call latency (attempts that reached the network)",
                            ["service"], buckets=_LATENCY)
BATCH_SIZE = Histogram("tessera_loader_batch_size", "Keys per DataLoader batch", ["loader"],
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))
CIRCUIT = Gauge("tessera_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, "
                "2 open", ["service"], multiprocess_mode="livemax")
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
REDIS_UP = Gauge("tessera_redis_up", "1 while Redis ([redis] url) answers, 0 while Tessera "
                 "serves without it", multiprocess_mode="livemin")

_operations: set[str] = set()
_children: dict[tuple[str, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, made once (labels() takes a lock and builds a key on
    every call; here a call is a dict lookup); for a counter or histogram, with a
    `Count` or `Observed` in front of it. The label sets are bounded: services, outcomes,
    kinds, and at most MAX_OPERATIONS operation names."""
    key = (metric._name, *labels)
    found = _children.get(key)
    if found is None:
        labelled = metric.labels(*labels)
        found = _children[key] = Count(labelled) if isinstance(metric, Counter) else \
            Observed(labelled) if isinstance(metric, Histogram) else labelled
    return found


# What has been counted and observed since the last flush: each figure is kept as
# plain numbers where it is made (a backend call, a batch, a request: one method
# call, where prometheus-client's inc and observe are four to eight, a lock each
# and a loop over the buckets; ~9 us of a request with four backend calls)
# and added to prometheus-client's own child in one step by `flush`: before
# /metrics is read, after a request when none is left in flight, and at least
# every FLUSH_S under load (with several workers each worker's figures are
# prometheus-client's multiprocess files, read by whichever worker is scraped).
FLUSH_S = 1.0
_dirty: list[Count | Observed] = []
_flushed = [0.0]  # when last (monotonic)


class Count:
    """A labelled counter's increments, kept until `flush`."""

    __slots__ = ("child", "pending")

    def __init__(self, labelled: Any) -> None:
        self.child = labelled
        self.pending = 0

    def inc(self) -> None:
        if not self.pending:
            _dirty.append(self)
        self.pending += 1

    def flush(self) -> None:
        pending, self.pending = self.pending, 0
        if pending:
            self.child.inc(pending)


class Observed:
    """A labelled histogram's observations, kept as a sum and a count per bucket
    (the first bucket whose bound is at least the value: prometheus-client's rule)
    until `flush`."""

    __slots__ = ("child", "bounds", "sum", "counts", "pending")

    def __init__(self, labelled: Any) -> None:
        self.child = labelled
        self.bounds = list(labelled._upper_bounds)  # ends with +Inf
        self.sum = 0.0
        self.counts = [0] * len(self.bounds)
        self.pending = False

    def observe(self, value: float) -> None:
        if value != value:  # NaN: in no bucket, as prometheus-client has it
            self.child.observe(value)
            return
        if not self.pending:
            _dirty.append(self)
            self.pending = True
        self.sum += value
        self.counts[bisect_left(self.bounds, value)] += 1

    def flush(self) -> None:
        if not self.pending:
            return
        total, counts = self.sum, self.counts
        self.sum, self.counts, self.pending = 0.0, [0] * len(counts), False
        labelled = self.child
        labelled._sum.inc(total)
        for index, count in enumerate(counts):
            if count:
                labelled._buckets[index].inc(count)


def flush() -> None:
    """Add what was counted and observed since the last flush to the metrics."""
    _flushed[0] = time.monotonic()
    while _dirty:
        _dirty.pop().flush()


def flush_due(idle: bool) -> None:
    """After a request: flush when no request is left in flight, or FLUSH_S after
    the last flush."""
    if _dirty and (idle or time.monotonic() - _flushed[0] >= FLUSH_S):
        flush()


def operation_label(name: str | None) -> str:
    """A bounded label for a client-chosen operation name."""
    if not name:
        return "anonymous"
    if not _NAME.fullmatch(name):
        return "other"
    if name not in _operations:
        if len(_operations) >= MAX_OPERATIONS:
            return "other"
        _operations.add(name)
    return name


def circuit_changed(service: str, before: str, after: str) -> None:
    CIRCUIT.labels(service).set(CIRCUIT_VALUES.get(after, 0))


async def metrics_endpoint(request: Request) -> Response:
    flush()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
