"""Resilience around one backend call, each piece small and testable alone.

The client (`tessera.backends.client`) layers them, outermost first:
retry (with its budget and the request deadline) -> circuit breaker ->
bulkhead -> timeout -> transport (with injected faults, when configured).
Stale-if-error sits above, where a key is known (loaders, aggregation steps).
"""

from .breaker import CircuitBreaker, CircuitOpen, Permit
from .budget import RetryBudget
from .bulkhead import Bulkhead
from .cache import EntityCache
from .faults import FaultTransport
from .stale import Stale

__all__ = ["Bulkhead", "CircuitBreaker", "CircuitOpen", "FaultTransport", "Permit",
           "RetryBudget", "Stale", "EntityCache"]
