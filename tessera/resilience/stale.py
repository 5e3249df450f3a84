"""Stale-if-error: what a stale answer is, and when one may be served.

    Stale(value, service="users", age_s=12.5)   # served instead of a failed call

The answers themselves are kept by the entity cache (`tessera.resilience.cache`),
the one store of the backend's answers: fresh ones for `cache.ttl_s`, recallable
ones for `stale_if_error_s` after they were fetched, per caller. A stale answer
is served when the backend fails (timeout, refused, 5xx, circuit open, bad body),
never to hide a 4xx, and is reported where it was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import BackendError


@dataclass(frozen=True, slots=True)
class Stale:
    """A value served from the stale store instead of a failed backend."""

    value: Any
    service: str
    age_s: float


def backend_failed(error: BaseException) -> bool:
    """A failure of the backend (timeout, refused, 5xx, circuit open, bad body), as
    opposed to a 4xx, which says the request was wrong and stale data would hide it."""
    if not isinstance(error, BackendError):
        return False
    return error.status is None or error.status >= 500
