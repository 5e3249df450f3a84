"""A retry budget per backend (the Finagle / Envoy model).

    budget = RetryBudget(settings.retry_budget, clock=time.monotonic)
    budget.deposit()                 # once per call a client request causes
    if budget.try_withdraw(): ...    # once per retry; False = the budget is spent

Over the last `window_s` seconds, retries may add at most `ratio` of the calls
made plus `min_per_second * window_s`. A backend that fails every call
therefore sees at most (1 + ratio) times the traffic (plus the small floor),
never `retries + 1` times: no retry storm. Counts are kept in one-second
buckets, so memory is constant whatever the traffic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..config import RetryBudgetSettings


class RetryBudget:
    def __init__(self, settings: RetryBudgetSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._size = max(1, math.ceil(settings.window_s))
        self._calls = [0] * self._size
        self._retries = [0] * self._size
        self._second = [-1] * self._size  # which second each bucket holds

    def _bucket(self) -> int:
        now = int(self._clock())
        index = now % self._size
        if self._second[index] != now:
            self._second[index] = now
            self._calls[index] = 0
            self._retries[index] = 0
        return index

    def _live(self, counts: list[int]) -> int:
        oldest = int(self._clock()) - self._size + 1
        return sum(n for n, second in zip(counts, self._second, strict=True) if second >= oldest)

    def deposit(self) -> None:
        self._calls[self._bucket()] += 1

    def try_withdraw(self) -> bool:
        index = self._bucket()
        allowed = (self.settings.ratio * self._live(self._calls)
                   + self.settings.min_per_second * self._size)
        if self._live(self._retries) + 1 > allowed:
            return False
        self._retries[index] += 1
        return True
