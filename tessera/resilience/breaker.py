"""A circuit breaker per backend, with resilience4j's count-based semantics.

    breaker = CircuitBreaker("users", settings, clock=time.monotonic)
    permit = breaker.acquire()            # raises CircuitOpen while the circuit is open
    ...call...; permit.success() | permit.failure() | permit.ignore()

closed     every call goes through; the outcomes of the last `window` calls are
           kept, and once at least `minimum_calls` are known, a failure rate of
           `failure_rate` or more opens the circuit.
open       every call fails at once, without touching the network, until
           `open_ms` has passed; the next call then moves it to half-open.
half_open  `half_open_probes` calls are let through; the rest fail at once. When
           every probe has finished, a failure rate of `failure_rate` or more
           opens the circuit again, anything less closes it with a fresh window.

An ignored outcome (a 4xx, the client going away, our own deadline) is not a
verdict on the backend: it is not counted, and in half-open it frees its probe
slot for another call. A permit from an earlier state (a call that started
before the circuit opened) no longer counts: each state change starts a new
generation. The clock is injected, so tests drive time by hand.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from ..config import CircuitBreakerSettings

log = logging.getLogger("tessera.breaker")

State = Literal["closed", "open", "half_open"]
Clock = Callable[[], float]


class CircuitOpen(Exception):
    """`acquire()` refused: the circuit is open (or half-open with every probe out)."""


class Permit:
    """The right to make one call; report how it went exactly once."""

    __slots__ = ("_breaker", "_generation", "_done")

    def __init__(self, breaker: CircuitBreaker, generation: int) -> None:
        self._breaker = breaker
        self._generation = generation
        self._done = False

    def success(self) -> None:
        self._finish(True)

    def failure(self) -> None:
        self._finish(False)

    def ignore(self) -> None:
        self._finish(None)

    def _finish(self, ok: bool | None) -> None:
        if not self._done:
            self._done = True
            self._breaker._record(self._generation, ok)


class CircuitBreaker:
    def __init__(self, name: str, settings: CircuitBreakerSettings, *,
                 clock: Clock = time.monotonic,
                 on_change: Callable[[str, State, State], None] | None = None) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock
        self._on_change = on_change
        self._state: State = "closed"
        self._generation = 0
        self._outcomes: deque[bool] = deque(maxlen=settings.window)  # True = failed
        self._failures = 0
        self._opened_at = 0.0
        self._probes_out = 0  # half-open: permits handed out and not yet finished
        self._probe_results: list[bool] = []

    @property
    def state(self) -> State:
        """The state as of now (an open circuit whose time is up reads half_open)."""
        if self._state == "open" and self._open_elapsed():
            return "half_open"
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a probe through (0 if it is not open)."""
        if self._state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.settings.open_ms / 1000 - self._clock())

    def acquire(self) -> Permit:
        if not self.settings.enabled:
            return Permit(self, -1)
        if self._state == "open":
            if not self._open_elapsed():
                raise CircuitOpen(self.name)
            self._move("half_open")
        if self._state == "half_open":
            taken = self._probes_out + len(self._probe_results)
            if taken >= self.settings.half_open_probes:
                raise CircuitOpen(self.name)
            self._probes_out += 1
        return Permit(self, self._generation)

    def _open_elapsed(self) -> bool:
        return self._clock() - self._opened_at >= self.settings.open_ms / 1000

    def _record(self, generation: int, ok: bool | None) -> None:
        if generation != self._generation:
            return  # from a state that has since ended, or the breaker is disabled
        if self._state == "closed":
            if ok is not None:
                self._count(not ok)
        elif self._state == "half_open":
            self._probes_out -= 1
            if ok is not None:
                self._probe_results.append(not ok)
            if len(self._probe_results) >= self.settings.half_open_probes:
                failed = sum(self._probe_results)
                self._move("open" if failed >= self._threshold(len(self._probe_results))
                           else "closed")

    def _count(self, failed: bool) -> None:
        if len(self._outcomes) == self._outcomes.maxlen:
            self._failures -= self._outcomes[0]
        self._outcomes.append(failed)
        self._failures += failed
        calls = len(self._outcomes)
        if calls >= self.settings.minimum_calls and self._failures >= self._threshold(calls):
            self._move("open")

    def _threshold(self, calls: int) -> float:
        return self.settings.failure_rate * calls

    def _move(self, to: State) -> None:
        before = self._state
        self._state = to
        self._generation += 1
        if to == "open":
            self._opened_at = self._clock()
        if to == "closed":
            self._outcomes.clear()
            self._failures = 0
        self._probes_out = 0
        self._probe_results = []
        if before != to:
            level = logging.INFO if to == "closed" else logging.WARNING
            log.log(level, "circuit for backend %s: %s -> %s", self.name, before, to)
            if self._on_change is not None:
                self._on_change(self.name, before, to)


