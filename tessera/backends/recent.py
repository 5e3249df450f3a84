"""What the last calls to one backend looked like, for /readyz and the landing page.

    recent = RecentCalls()
    recent.record(0.012, ok=True)
    recent.summary()   # {"calls": 1, "failed": 0, "p50_ms": 12.0, "last": "ok"}

A fixed window of the last `size` calls (constant memory); calls refused by
Tessera itself (circuit open) are not calls and are not recorded.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class RecentCalls:
    def __init__(self, size: int = 100) -> None:
        self._calls: deque[tuple[float, bool]] = deque(maxlen=size)

    def record(self, seconds: float, *, ok: bool) -> None:
        self._calls.append((seconds, ok))

    def summary(self) -> dict[str, Any]:
        calls = list(self._calls)
        if not calls:
            return {"calls": 0, "failed": 0, "p50_ms": None, "last": None}
        durations = sorted(s for s, _ in calls)
        return {"calls": len(calls), "failed": sum(1 for _, ok in calls if not ok),
                "p50_ms": round(durations[len(durations) // 2] * 1000, 1),
                "last": "ok" if calls[-1][1] else "failed"}
