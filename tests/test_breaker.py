"""The circuit breaker's state machine against a plain model, under hypothesis.

The model keeps every outcome in a list and recomputes everything from it; the
breaker keeps a ring with running counts. They must agree after any sequence of
calls started, calls finished (success, failure, ignored) and time passing.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tessera.config import CircuitBreakerSettings
from tessera.resilience import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Model:
    """The rules of the breaker's docstring, written as plainly as possible."""

    def __init__(self, s: CircuitBreakerSettings, clock: Clock) -> None:
        self.s = s
        self.clock = clock
        self.state = "closed"
        self.generation = 0
        self.history: list[bool] = []  # True = failed, since the circuit last closed
        self.opened_at = 0.0
        self.probes: list[bool] = []
        self.probes_out = 0

    def _enter(self, state: str) -> None:
        self.state = state
        self.generation += 1
        self.probes, self.probes_out = [], 0
        if state == "open":
            self.opened_at = self.clock()
        if state == "closed":
            self.history = []

    def acquire(self) -> int | None:
        """The permit's generation, or None when refused."""
        if self.state == "open":
            if self.clock() - self.opened_at < self.s.open_ms / 1000:
                return None
            self._enter("half_open")
        if self.state == "half_open":
            if self.probes_out + len(self.probes) >= self.s.half_open_probes:
                return None
            self.probes_out += 1
        return self.generation

    def finish(self, generation: int, outcome: str) -> None:
        if generation != self.generation:
            return
        failed = outcome == "failure"
        if self.state == "closed" and outcome != "ignore":
            self.history.append(failed)
            recent = self.history[-self.s.window:]
            if (len(recent) >= self.s.minimum_calls
                    and sum(recent) / len(recent) >= self.s.failure_rate):
                self._enter("open")
        elif self.state == "half_open":
            self.probes_out -= 1
            if outcome != "ignore":
                self.probes.append(failed)
            if len(self.probes) >= self.s.half_open_probes:
                rate = sum(self.probes) / len(self.probes)
                self._enter("open" if rate >= self.s.failure_rate else "closed")


class BreakerMachine(RuleBasedStateMachine):
    @initialize(window=st.integers(1, 6), minimum=st.integers(1, 6),
                rate=st.sampled_from([0.25, 0.5, 0.75, 1.0]), probes=st.integers(1, 3))
    def setup(self, window: int, minimum: int, rate: float, probes: int) -> None:
        self.clock = Clock()
        s = CircuitBreakerSettings(window=window, minimum_calls=minimum, failure_rate=rate,
                                   half_open_probes=probes, open_ms=1000)
        self.breaker = CircuitBreaker("users", s, clock=self.clock)
        self.model = Model(s, self.clock)
        self.pending: list[tuple[Any, int]] = []
        self.granted_while_half_open = 0

    @rule()
    def acquire(self) -> None:
        expected = self.model.acquire()
        try:
            permit = self.breaker.acquire()
        except CircuitOpen:
            assert expected is None, "the breaker refused a call the model allows"
            return
        assert expected is not None, "the breaker allowed a call the model refuses"
        self.pending.append((permit, expected))

    @precondition(lambda self: self.pending)
    @rule(data=st.data(), outcome=st.sampled_from(["success", "failure", "ignore"]))
    def finish(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.pending) - 1))
        permit, generation = self.pending.pop(index)
        getattr(permit, outcome)()
        self.model.finish(generation, outcome)

    @rule(seconds=st.sampled_from([0.1, 0.5, 0.999, 1.0, 3.0]))
    def wait(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "model"):
            return
        model_state = self.model.state
        if model_state == "open" and self.clock() - self.model.opened_at >= 1.0:
            model_state = "half_open"  # what `state` reads once the open period is over
        assert self.breaker.state == model_state


BreakerMachine.TestCase.settings = hsettings(max_examples=300, stateful_step_count=40,
                                             deadline=None)
test_breaker_matches_model = BreakerMachine.TestCase


def make(clock: Clock, **kw: Any) -> CircuitBreaker:
    defaults: dict[str, Any] = {"window": 10, "minimum_calls": 4, "failure_rate": 0.5,
                                "open_ms": 5000, "half_open_probes": 2}
    return CircuitBreaker("users", CircuitBreakerSettings(**(defaults | kw)), clock=clock)


def test_opens_at_the_failure_rate_and_refuses_until_the_open_period_ends() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(3):
        breaker.acquire().failure()
    assert breaker.state == "closed"  # 3 calls: under minimum_calls
    breaker.acquire().success()
    assert breaker.state == "open"  # 3 of 4 failed
    clock.now += 4.9
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    assert breaker.retry_after() == pytest.approx(0.1)
    clock.now += 0.1
    first, second = breaker.acquire(), breaker.acquire()
    with pytest.raises(CircuitOpen):
        breaker.acquire()  # only the probes go through
    first.success()
    second.success()
    assert breaker.state == "closed"


def test_a_failed_probe_reopens_and_ignored_outcomes_do_not_count() -> None:
    clock = Clock()
    breaker = make(clock, half_open_probes=1)
    for _ in range(10):
        breaker.acquire().ignore()  # 4xx, cancellations: no verdict on the backend
    assert breaker.state == "closed"
    late = breaker.acquire()  # started before the circuit opened
    for _ in range(4):
        breaker.acquire().failure()
    assert breaker.state == "open"
    late.success()  # from an earlier state: does not close anything
    assert breaker.state == "open"
    clock.now += 5
    probe = breaker.acquire()
    probe.ignore()  # frees the probe slot
    breaker.acquire().failure()
    assert breaker.state == "open"


def test_disabled_breaker_never_opens() -> None:
    breaker = make(Clock(), enabled=False)
    for _ in range(50):
        breaker.acquire().failure()
    assert breaker.state == "closed"
