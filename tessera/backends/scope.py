"""What one client request carries down to every backend call it causes.

    scope = CallScope(headers={"x-request-id": "abc"}, deadline=loop.time() + 5)
    scope.timeout(1.0, "users")        # min(the backend's own timeout, what is left)
    scope.report.backends              # {"orders": "ok", "users": "timeout"}
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendBadResponse, BackendError, BackendTimeout

OK = "ok"
DEADLINE = "deadline_exceeded"
MIN_CALL_S = 0.005  # less time than this left: the call could not succeed, so it is not made


def outcome_of(exc: BackendError) -> str:
    """A failure as the completeness report names it."""
    if exc.reason is not None and exc.reason != DEADLINE:
        return exc.reason  # circuit_open, bulkhead_full
    if isinstance(exc, BackendTimeout):
        return "timeout"
    if isinstance(exc, BackendBadResponse):
        return "bad_response"
    return "unavailable"


@dataclass
class CallReport:
    """How each backend fared for one client request, and what was served stale.

    A backend's entry is "ok" while every call to it succeeded; the first failure
    replaces it (timeout, unavailable, bad_response, circuit_open, bulkhead_full).
    """

    backends: dict[str, str] = field(default_factory=dict)
    stale: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # per service, retries included once
    operation: str | None = None  # the operation's name, once the document is parsed
    # How cacheable the answer's parts were (see tessera.web.graphql's cache hints):
    cache_ttl_s: float | None = None  # the smallest TTL among the parts
    cache_private: bool = False  # some part was kept for this caller only
    cache_never: bool = False  # some part may not be kept

    def cache_part(self, ttl_s: float | None, *, private: bool = False) -> None:
        """One part of the answer: kept (or served from the cache) for `ttl_s`,
        or None when it may not be kept."""
        if ttl_s is None:
            self.cache_never = True
            return
        self.cache_ttl_s = ttl_s if self.cache_ttl_s is None else min(self.cache_ttl_s, ttl_s)
        self.cache_private = self.cache_private or private

    def called(self, service: str, outcome: str) -> None:
        self.calls[service] = self.calls.get(service, 0) + 1
        self.fared(service, outcome)

    def fared(self, service: str, outcome: str) -> None:
        """Record an outcome found after the call (a wrong-shaped answer)."""
        if self.backends.get(service, OK) == OK:
            self.backends[service] = outcome

    def served_stale(self, path: list[str | int], service: str, age_s: float) -> None:
        self.stale.append({"path": path, "service": service, "age_s": age_s})


@dataclass(frozen=True)
class CallScope:
    """`headers` are forwarded as they are; `deadline` is an event-loop time after
    which no call may start (each call's timeout is cut to what is left)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    deadline: float | None = None
    report: CallReport = field(default_factory=CallReport)

    def remaining(self) -> float:
        if self.deadline is None:
            return float("inf")
        return self.deadline - asyncio.get_running_loop().time()

    def timeout(self, own: float, service: str) -> float:
        left = self.remaining()
        if left < MIN_CALL_S:
            raise BackendTimeout(service, "was not called: the request deadline had passed",
                                 reason=DEADLINE)
        return min(own, left)
