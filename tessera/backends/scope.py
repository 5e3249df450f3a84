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

from ..errors import BackendBadResponse, BackendError, BackendTimeout, BackendUnavailable

OK = "ok"
DEADLINE = "deadline_exceeded"
MIN_CALL_S = 0.005  # less time than this left: the call could not succeed, so it is not made
HELD_FULL = "memory_limit"  # a call refused, or its answer dropped: AnswerBudget is full


def outcome_of(exc: BackendError) -> str:
    """A failure as the completeness report names it."""
    if exc.reason is not None and exc.reason != DEADLINE:
        return exc.reason  # circuit_open, bulkhead_full, memory_limit
    if isinstance(exc, BackendTimeout):
        return "timeout"
    if isinstance(exc, BackendBadResponse):
        return "bad_response"
    return "unavailable"


@dataclass
class CallReport:
    """How each backend fared for one client request, and what was served stale.

    A backend's entry is "ok" while every call to it succeeded; the first failure
    replaces it (timeout, unavailable, bad_response, circuit_open, bulkhead_full,
    memory_limit).
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


class AnswerBudget:
    """The decoded bytes of backend answers that the requests in progress hold, in
    one process, kept within `limit` (`server.max_backend_bytes`).

    One answer is bounded by its backend's `max_response_bytes`, but a request keeps
    its answers (and what is built from them: ~20x their bytes for a list of small
    records) until its own answer is written, and requests run side by side: 16
    requests each given a 10 MB list held 1 GB at once. Each request's `Tab` counts
    what it holds. A call is not made while the budget is spent, and an answer that
    would overspend it is dropped before it is parsed: that piece fails with
    BACKEND_UNAVAILABLE (reason "memory_limit"), the rest of the request is served.
    A request gives its bytes back when it ends (`Tab.release`)."""

    __slots__ = ("limit", "held")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0


class Tab:
    """One request's account with the AnswerBudget."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: AnswerBudget) -> None:
        self.budget = budget
        self.held = 0

    def room(self) -> bool:
        """Before a call: is there room for an answer at all?"""
        return self.budget.held < self.budget.limit

    def take(self, size: int, service: str) -> None:
        """An answer of `size` decoded bytes, held until the request ends."""
        budget = self.budget
        if budget.held + size > budget.limit:
            raise held_full(service, f"answered, but its answer ({size} bytes) was dropped")
        budget.held += size
        self.held += size

    def release(self) -> None:
        """The request has ended: what it held is free (once, however often called)."""
        self.budget.held -= self.held
        self.held = 0

    def __del__(self) -> None:  # a request that ended without release(): never leak
        if self.held:
            self.release()


def held_full(service: str, what: str) -> BackendUnavailable:
    """A call not made, or an answer dropped, because the AnswerBudget is spent."""
    return BackendUnavailable(service, f"{what}: the gateway is holding as much of its "
                              "backends' answers as it may for the requests in progress",
                              reason=HELD_FULL)


@dataclass(frozen=True)
class CallScope:
    """`headers` are forwarded as they are; `deadline` is an event-loop time after
    which no call may start (each call's timeout is cut to what is left); `tab`
    counts the bytes of answers the request holds (None: not counted)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    deadline: float | None = None
    report: CallReport = field(default_factory=CallReport)
    tab: Tab | None = None

    def release(self) -> None:
        """The request has ended: give back the bytes its answers held."""
        if self.tab is not None:
            self.tab.release()

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
