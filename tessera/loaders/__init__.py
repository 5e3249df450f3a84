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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from aiodataloader import DataLoader

from ..backends import Backends, CallScope
from ..observability import metrics, tracing
from . import eager
from .batching import Batcher

if TYPE_CHECKING:
    from ..compose.binding import Rest

__all__ = ["Loaders", "load_all", "make_loaders", "settle", "settled"]



def _same(key: Any) -> Any:
    return key


class _Loader(DataLoader[Any, Any]):
    """A DataLoader for one binding, whose queue is dispatched by a shared `Batcher`
    (see there) as one task per batch: the binding's fetch, awaited directly."""

    def __init__(self, binding: Rest, client: Any, scope: CallScope, batcher: Batcher) -> None:
        # DataLoader's own __init__ inspects the function and looks up the loop for
        # each of a request's loaders; what it would set, set directly (batching
        # and caching on, keys their own cache keys).
        self.loop = batcher.loop
        self.get_cache_key = _same
        self._cache: dict[Any, asyncio.Future[Any]] = {}
        # (key, its future): aiodataloader's Loader namedtuple without its
        # Python-level __new__ (one per key); only this class's methods read it
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []  # type: ignore[assignment]
        self._batcher = batcher
        self._binding = binding
        self._client = client
        self._scope = scope

    def dispatch(self) -> None:
        """Send the queued keys as one batch (aiodataloader's dispatch_queue, without
        its wrappers: the binding splits a batch at the backend's size itself)."""
        queue, self._queue = self._queue, []
        eager.start(self.loop, self._batch(queue))  # written in this pass

    async def _batch(self, queue: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        keys = [key for key, _ in queue]
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
            for key, _ in queue:
                self._cache.pop(key, None)
            values = [exc] * len(queue)
        for (_, future), value in zip(queue, values, strict=True):
            # the waits on this load are woken here, not by its done-callback a pass later
            waiters = _WAITING.pop(future, None) if _WAITING else None
            if waiters is not None:
                future.remove_done_callback(_wake_waiters)
            if not future.done():
                if isinstance(value, Exception):
                    future.set_exception(value)
                else:
                    future.set_result(value)
            if waiters is not None:
                _wake(waiters)

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
        cache, queue, create = self._cache, self._queue, self.loop.create_future
        first = not queue
        futures: list[asyncio.Future[Any]] = []
        added = 0
        for key in keys:  # (_enqueue inlined: this loop runs for every key of a batch)
            found = cache.get(key)
            if found is None:
                if key is None:  # the keys queued before it still go out
                    if added:
                        self._batcher.enqueued(self, first=first, count=added)
                    _no_none()
                found = cache[key] = create()
                queue.append((key, found))
                added += 1
            futures.append(found)
        if added:
            self._batcher.enqueued(self, first=first, count=added)
        return futures

    def _enqueue(self, key: Any) -> asyncio.Future[Any]:
        """A new key's future, cached and queued for the next dispatch."""
        entry = self._entry(key)
        self._cache[key] = entry[1]
        self._queue.append(entry)
        return entry[1]

    def _entry(self, key: Any) -> tuple[Any, asyncio.Future[Any]]:
        if key is None:
            _no_none()
        return key, self.loop.create_future()


def _no_none() -> NoReturn:
    raise TypeError("The loader.load() function must be called with a value, but got: None.")


class _Unbatched(_Loader):
    """The benchmark's naive baseline (`caching=False`): every load its own call,
    at once, nothing kept."""

    def load(self, key: Any) -> asyncio.Future[Any]:
        entry = self._entry(key)
        self.loop.create_task(self._batch([entry]))
        return entry[1]

    def load_all(self, keys: Iterable[Any]) -> list[asyncio.Future[Any]]:
        return [self.load(key) for key in keys]


class Loaders:
    """One request's loaders by binding (or by the binding's name, as an attribute).
    `caching=False` is the benchmark's naive baseline: every load its own call."""

    def __init__(self, backends: Backends, scope: CallScope, *, caching: bool = True,
                 named: dict[str, Rest] | None = None) -> None:
        self.backends = backends
        self.scope = scope
        self.caching = caching
        self._named = named or {}
        self._made: dict[int, _Loader] = {}
        self.batcher = Batcher()  # shared by its loaders; told of executor work too

    def __getitem__(self, binding: Rest) -> _Loader:
        made = self._made.get(id(binding))
        if made is None:
            made = self._made[id(binding)] = self._make(binding)
        return made

    def __getattr__(self, name: str) -> _Loader:
        named = self.__dict__.get("_named", {})
        if name not in named:
            raise AttributeError(f"no binding named {name!r} in this graph")
        return self[named[name]]

    def _make(self, binding: Rest) -> _Loader:
        made = _Loader if self.caching else _Unbatched
        return made(binding, self.backends.clients[binding.backend], self.scope, self.batcher)


def load_all(loader: _Loader, keys: Iterable[Any]) -> list[asyncio.Future[Any]]:
    """The loader's futures for these keys (batched, de-duplicated)."""
    return loader.load_all(keys)


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


# a load's future -> the waiters of the tasks waiting for it (`_done`): the batch
# that settles the load wakes them in its own step (`_Loader._batch`)
_WAITING: dict[asyncio.Future[Any], list[asyncio.Future[None]]] = {}


async def _done(future: asyncio.Future[Any]) -> None:
    """Wait until `future` is done, without taking its outcome or cancelling it if
    this task is cancelled (loads are shared): `asyncio.wait((future,))` without
    its sets, counters and timeout handling. Each wait has its own waiter, woken by
    the batch that settles the load as it does so; a done-callback (kept for loads
    settled otherwise) runs a loop pass later, behind other requests' callbacks."""
    waiter: asyncio.Future[None] = future.get_loop().create_future()
    waiters = _WAITING.get(future)
    if waiters is None:
        waiters = _WAITING[future] = []
        future.add_done_callback(_wake_waiters)
    waiters.append(waiter)
    try:
        await waiter
    finally:
        if _WAITING.get(future) is waiters and waiter in waiters:  # not woken: leaving
            waiters.remove(waiter)
            if not waiters:
                del _WAITING[future]
                future.remove_done_callback(_wake_waiters)


def _wake_waiters(future: asyncio.Future[Any]) -> None:
    """The done-callback: for a load settled other than by its batch."""
    _wake(_WAITING.pop(future, ()))


def _wake(waiters: Iterable[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def settled(loader: _Loader, key: Any) -> asyncio.Future[Any] | None:
    """The loader's future for `key` if that load has already finished, else None."""
    future: asyncio.Future[Any] | None = loader._cache.get(key)
    return future if future is not None and future.done() else None


def make_loaders(backends: Backends, scope: CallScope, named: dict[str, Rest] | None = None,
                 *, batching: bool = True) -> Loaders:
    return Loaders(backends, scope, caching=batching, named=named)
