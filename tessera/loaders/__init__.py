"""Per-request DataLoaders, one per REST binding of the graph.

    loaders = make_loaders(backends, CallScope(headers, deadline), graph)
    user = await loaders[users_binding].load("7")    # batched with every other load
    user = await loaders.users.load("7")             # or by the binding's name

Made per request: aiodataloader binds to the running loop, and a loader's cache
must never outlive the request (answers are not shared across clients). Equal
keys are fetched once per request. A loader is made the first time a request
uses its binding, so a graph of any size costs only what a request touches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from aiodataloader import DataLoader, Loader

from ..backends import Backends, CallScope
from ..observability import metrics, tracing
from .batching import Batcher

if TYPE_CHECKING:
    from ..compose.binding import Rest

__all__ = ["Loaders", "load_all", "make_loaders", "settle", "settled"]

BatchFn = Callable[[list[Any]], Coroutine[Any, Any, list[Any]]]
AnyLoader = DataLoader[Any, Any]


def _same(key: Any) -> Any:
    return key


class _Loader(AnyLoader):
    """A DataLoader for one binding, whose queue is dispatched by a shared `Batcher`
    (see there) as one task per batch: the binding's fetch, awaited directly."""

    def __init__(self, binding: Rest, client: Any, scope: CallScope, batcher: Batcher) -> None:
        # DataLoader's own __init__ inspects the function and looks up the loop for
        # each of a request's loaders; what it would set, set directly (batching
        # and caching on, keys their own cache keys).
        self.loop = batcher.loop
        self.get_cache_key = _same
        self._cache: dict[Any, asyncio.Future[Any]] = {}
        self._queue: list[Loader] = []
        self._batcher = batcher
        self._binding = binding
        self._client = client
        self._scope = scope

    def dispatch(self) -> None:
        """Send the queued keys as one batch (aiodataloader's dispatch_queue, without
        its wrappers: the binding splits a batch at the backend's size itself)."""
        queue, self._queue = self._queue, []
        self.loop.create_task(self._batch(queue))

    async def _batch(self, queue: list[Loader]) -> None:
        keys = [entry.key for entry in queue]
        binding = self._binding
        metrics.child(metrics.BATCH_SIZE, binding.label).observe(len(keys))
        try:
            if tracing.active:
                with tracing.span(f"loader {binding.label}", {"tessera.keys": len(keys)}):
                    values = await binding.fetch(self._client, keys, self._scope)
            else:
                values = await binding.fetch(self._client, keys, self._scope)
            if len(values) != len(keys):
                raise TypeError(f"{binding.label}: {len(values)} values for {len(keys)} keys")
        except Exception as exc:  # the whole batch failed: each key fails, none is kept
            for entry in queue:
                self._cache.pop(entry.key, None)
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        for entry, value in zip(queue, values, strict=True):
            if not entry.future.done():
                if isinstance(value, Exception):
                    entry.future.set_exception(value)
                else:
                    entry.future.set_result(value)

    def load(self, key: Any) -> asyncio.Future[Any]:
        """aiodataloader's load with caching always on and keys as their own cache
        keys, in one call (it runs once per key of every batch)."""
        found: asyncio.Future[Any] | None = self._cache.get(key)
        if found is None:
            first = not self._queue
            found = self._enqueue(key)
            self._batcher.enqueued(self, first=first)
        return found

    def load_all(self, keys: Iterable[Any]) -> list[asyncio.Future[Any]]:
        """`load` for each key, in one pass (a field with 100 keys makes 100 loads),
        with one notice to the batcher for the lot."""
        cache = self._cache
        first = not self._queue
        futures: list[asyncio.Future[Any]] = []
        added = 0
        for key in keys:
            found = cache.get(key)
            if found is None:
                found = self._enqueue(key)
                added += 1
            futures.append(found)
        if added:
            self._batcher.enqueued(self, first=first, count=added)
        return futures

    def _enqueue(self, key: Any) -> asyncio.Future[Any]:
        """A new key's future, cached and queued for the next dispatch."""
        if key is None:
            raise TypeError("The loader.load() function must be called with a value, "
                            "but got: None.")
        future = self._cache[key] = self.loop.create_future()
        self._queue.append(Loader(key, future))
        return future


class Loaders:
    """One request's loaders by binding (or by the binding's name, as an attribute).
    `caching=False` is the benchmark's naive baseline: every load its own call."""

    def __init__(self, backends: Backends, scope: CallScope, *, caching: bool = True,
                 named: dict[str, Rest] | None = None) -> None:
        self.backends = backends
        self.scope = scope
        self.caching = caching
        self._named = named or {}
        self._made: dict[int, AnyLoader] = {}
        self.batcher = Batcher()  # shared by its loaders; told of executor work too

    def __getitem__(self, binding: Rest) -> AnyLoader:
        made = self._made.get(id(binding))
        if made is None:
            made = self._made[id(binding)] = self._make(binding)
        return made

    def __getattr__(self, name: str) -> AnyLoader:
        named = self.__dict__.get("_named", {})
        if name not in named:
            raise AttributeError(f"no binding named {name!r} in this graph")
        return self[named[name]]

    def _make(self, binding: Rest) -> AnyLoader:
        client = self.backends.clients[binding.backend]
        if not self.caching:
            fn = _counted(binding.label, partial(_fetch, binding, client, self.scope))
            return DataLoader(batch_load_fn=fn, batch=False, cache=False)
        return _Loader(binding, client, self.scope, self.batcher)


async def _fetch(binding: Rest, client: Any, scope: CallScope, keys: list[Any]) -> list[Any]:
    return await binding.fetch(client, keys, scope)


def load_all(loader: AnyLoader, keys: Iterable[Any]) -> list[asyncio.Future[Any]]:
    """The loader's futures for these keys (batched, de-duplicated)."""
    if isinstance(loader, _Loader):
        return loader.load_all(keys)
    return [loader.load(key) for key in keys]  # the naive baseline's plain DataLoader


async def settle(futures: Sequence[asyncio.Future[Any]]) -> list[Any]:
    """Each future's value, or its exception as a value (as `asyncio.gather(...,
    return_exceptions=True)` gives them), once all are done. Without gather's
    wrapper future and its callback per future: a batch's futures are all set at
    once, so after the first wait the rest are already done."""
    for future in futures:
        if not future.done():
            await _done(future)
    return [asyncio.CancelledError() if f.cancelled() else f.exception() or f.result()
            for f in futures]


async def _done(future: asyncio.Future[Any]) -> None:
    """Wait until `future` is done, without taking its outcome or cancelling it if
    this task is cancelled (loads are shared): `asyncio.wait((future,))` without
    its sets, counters and timeout handling."""
    waiter: asyncio.Future[None] = future.get_loop().create_future()

    def wake(_: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    future.add_done_callback(wake)
    try:
        await waiter
    finally:
        future.remove_done_callback(wake)


def settled(loader: AnyLoader, key: Any) -> asyncio.Future[Any] | None:
    """The loader's future for `key` if that load has already finished, else None."""
    future: asyncio.Future[Any] | None = loader._cache.get(key)
    return future if future is not None and future.done() else None


def make_loaders(backends: Backends, scope: CallScope, named: dict[str, Rest] | None = None,
                 *, batching: bool = True) -> Loaders:
    return Loaders(backends, scope, caching=batching, named=named)


def _counted(label: str, fn: BatchFn) -> BatchFn:
    """`fn`, with its batch sizes measured and, when tracing, a span per batch (the
    naive baseline's loaders; `_Loader._batch` does the same for batched ones)."""
    sizes = metrics.child(metrics.BATCH_SIZE, label)

    async def counted(keys: list[Any]) -> list[Any]:
        sizes.observe(len(keys))
        if not tracing.active:
            return await fn(keys)
        with tracing.span(f"loader {label}", {"tessera.keys": len(keys)}):
            return await fn(keys)
    return counted
