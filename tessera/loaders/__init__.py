"""Per-request DataLoaders over the backends.

    loaders = make_loaders(backends, CallScope(headers, deadline))
    user = await loaders.users.load("7")          # batched with every other users.load

Made per request: aiodataloader binds to the running loop, and a loader's cache
must never outlive the request (answers are not shared across clients).
Equal keys are fetched once per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiodataloader import DataLoader, Loader

from ..backends import Backends, CallScope
from ..observability import metrics, tracing
from . import batch
from .batching import Batcher

__all__ = ["Loaders", "make_loaders", "settled"]


BatchFn = Callable[[list[Any]], Coroutine[Any, Any, list[Any]]]
AnyLoader = DataLoader[Any, Any]


class _Loader(AnyLoader):
    """A DataLoader whose queue is dispatched by a shared `Batcher` (see there)."""

    def __init__(self, fn: BatchFn, batcher: Batcher) -> None:
        super().__init__(batch_load_fn=fn)
        self._batcher = batcher

    def do_resolve_reject(self, key: Any, future: Any) -> None:
        self._queue.append(Loader(key=key, future=future))
        self._batcher.enqueued(self, first=len(self._queue) == 1)


@dataclass(frozen=True)
class Loaders:
    orders: AnyLoader
    users: AnyLoader
    products: AnyLoader
    stock: AnyLoader
    reviews_by_product: AnyLoader
    orders_by_user: AnyLoader  # key: (user_id, limit)
    reviews_by_user: AnyLoader
    caching: bool = True  # False: the naive baseline, every load its own call


def settled(loader: AnyLoader, key: Any) -> asyncio.Future[Any] | None:
    """The loader's future for `key` if that load has already finished, else None."""
    future: asyncio.Future[Any] | None = loader._cache.get(key)
    return future if future is not None and future.done() else None


def make_loaders(backends: Backends, scope: CallScope, *, batching: bool = True) -> Loaders:
    """`batching=False` gives the naive gateway the benchmark compares against: every
    load is its own backend call, nothing is shared (never used in serving)."""
    batcher = Batcher()

    def loader(name: str, fn: BatchFn) -> AnyLoader:
        counted = _counted(name, fn)
        if not batching:
            return DataLoader(batch_load_fn=counted, batch=False, cache=False)
        return _Loader(counted, batcher)

    async def orders_of(key: tuple[str, int]) -> Any:
        user_id, limit = key
        answer = await backends.orders.get_json(
            "/orders", {"user_id": user_id, "limit": str(limit)}, scope=scope)
        return batch.entity_list(backends.orders, answer)

    async def reviews_of(user_id: str) -> Any:
        answer = await backends.reviews.get_json("/reviews", {"user_id": user_id}, scope=scope)
        return batch.entity_list(backends.reviews, answer)

    return Loaders(
        orders=loader("orders", partial(batch.entities, backends.orders, "orders",
                                        scope=scope)),
        users=loader("users", partial(batch.entities, backends.users, "users", scope=scope)),
        products=loader("products", partial(batch.entities, backends.products, "products",
                                            scope=scope)),
        stock=loader("stock", partial(batch.stock_levels, backends.inventory, scope=scope)),
        reviews_by_product=loader("reviews_by_product", partial(
            batch.reviews_by_product, backends.reviews, scope=scope)),
        orders_by_user=loader("orders_by_user", partial(
            batch.lists_per_key, fetch=orders_of, stale=(backends.orders.stale, "by_user"))),
        reviews_by_user=loader("reviews_by_user", partial(
            batch.lists_per_key, fetch=reviews_of, stale=(backends.reviews.stale, "by_user"))),
        caching=batching,
    )


_BATCH_SIZES = {name: metrics.BATCH_SIZE.labels(name) for name in (
    "orders", "users", "products", "stock", "reviews_by_product", "orders_by_user",
    "reviews_by_user")}


def _counted(name: str, fn: BatchFn) -> BatchFn:
    """`fn`, with its batch sizes measured and, when tracing, a span per batch."""
    sizes = _BATCH_SIZES[name]

    async def counted(keys: list[Any]) -> list[Any]:
        sizes.observe(len(keys))
        if not tracing.active:
            return await fn(keys)
        with tracing.span(f"loader {name}", {"tessera.keys": len(keys)}):
            return await fn(keys)
    return counted
