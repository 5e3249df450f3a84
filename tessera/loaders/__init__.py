"""Per-request DataLoaders, one per REST binding of the graph.

    loaders = make_loaders(backends, CallScope(headers, deadline), graph)
    user = await loaders[users_binding].load("7")    # batched with every other load
    user = await loaders.users.load("7")             # or by the binding's name

    waits = loader.want(["1", "2"])                  # the same, for many keys at once:
    await wait_all(waits)                            # one future per batch, not per key
    first, second = loader.values(["1", "2"])

Made per request: aiodataloader binds to the running loop, and a loader's cache
must never outlive the request (answers are not shared across clients). Equal
keys are fetched once per request. A loader is made the first time a request
uses its binding, so a graph of any size costs only what a request touches.

A load is an entry in a dict, not a future of its own: a batch has one future,
set when its answer is in, and its values are laid out by key in one step (100
products and their stock were 200 futures made, set and read one by one: ~0.1 ms
of a 100-id query's critical path). `load` still gives a future per key, for
resolvers written by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final, NoReturn

from aiodataloader import DataLoader

from ..backends import Backends, CallScope
from ..observability import metrics, tracing
from . import eager
from .batching import Batcher

if TYPE_CHECKING:
    from ..compose.binding import Rest

__all__ = ["Loaders", "make_loaders", "wait_all"]

_UNSET: Final = object()


def _same(key: Any) -> Any:
    return key


class _Batch:
    """One dispatch of a loader's queue: its keys, the future set once their values
    are in (`done`, always a result: a failure is a key's value), and the futures
    `load` gave for some of its keys."""

    __slots__ = ("done", "keys", "loads")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.keys: list[Any] = []
        self.loads: list[tuple[Any, asyncio.Future[Any]]] = []


class _Loader(DataLoader[Any, Any]):
    """A DataLoader for one binding, whose queue is dispatched by a shared `Batcher`
    (see there) as one task per batch: the binding's fetch, awaited directly."""

    def __init__(self, binding: Rest, client: Any, scope: CallScope, batcher: Batcher) -> None:
        # DataLoader's own __init__ inspects the function and looks up the loop for
        # each of a request's loaders; what it would set, set directly (batching
        # and caching on, keys their own cache keys). Its methods that read its
        # cache are this class's own.
        self.loop = batcher.loop
        self.get_cache_key = _same
        self._values: dict[Any, Any] = {}  # settled: the value, or that key's exception
        # in flight: the key's batch (left in place once settled: _values is read first)
        self._pending: dict[Any, _Batch] = {}
        # keys of a batch that failed as a whole: not kept (asked for again, loaded
        # again), but what the loads that waited for that batch read
        self._failed: dict[Any, BaseException] = {}
        self._futures: dict[Any, asyncio.Future[Any]] = {}  # load()'s, by key
        self._next: _Batch | None = None  # the batch the next dispatch sends
        self._batcher = batcher
        self._binding = binding
        self._client = client
        self._scope = scope

    @property
    def queued(self) -> list[Any]:
        """The keys waiting for the next dispatch."""
        return self._next.keys if self._next is not None else []

    def want(self, keys: Iterable[Any]) -> list[asyncio.Future[None]]:
        """Start loading each of `keys` not loaded nor on its way (batched with every
        other load, each key once): the futures of the batches the keys still wait
        for, each once (`wait_all` them, then read `values`)."""
        known, pending = self._values, self._pending
        unique = dict.fromkeys(keys)
        new = [key for key in unique if key not in known and key not in pending]
        if new:
            self._enqueue(new)
        waits = [batch.done for batch in {*map(pending.get, unique)}
                 if batch is not None and not batch.done.done()]
        return waits

    def want_one(self, key: Any) -> asyncio.Future[None] | None:
        """`want` for one key: its batch's future if it is still on its way."""
        if key in self._values:
            return None
        batch = self._pending.get(key)
        if batch is None:
            self._enqueue([key])
            batch = self._pending[key]
        return None if batch.done.done() else batch.done

    def value(self, key: Any) -> Any:
        """`values` for one key."""
        found = self._values.get(key, _UNSET)
        return self._failed.get(key, _UNSETTLED) if found is _UNSET else found

    def _enqueue(self, keys: list[Any]) -> None:
        if None in keys:  # the keys before it still go out: a later load waits for them
            keys = keys[:keys.index(None)]
            if keys:
                self._enqueue(keys)
            _no_none()
        batch = self._next
        first = batch is None
        if batch is None:
            batch = self._next = _Batch(self.loop)
        batch.keys += keys
        self._pending.update(dict.fromkeys(keys, batch))
        self._batcher.enqueued(self, first=first, count=len(keys))

    def values(self, keys: Sequence[Any]) -> list[Any]:
        """The settled value of each key (an exception for a key whose load failed),
        once the waits `want` gave are over."""
        got = list(map(self._values.get, keys, repeat(_UNSET)))
        if _UNSET in got:  # keys of a batch that failed as a whole
            failed = self._failed
            got = [failed.get(key, _UNSETTLED) if value is _UNSET else value
                   for key, value in zip(keys, got, strict=True)]
        return got

    def settled(self, key: Any, default: Any = None) -> Any:
        """The settled value of `key` (or its exception), `default` while its load is
        on its way, when it was never asked for, or when its batch failed as a whole
        (asked for again, it is loaded again)."""
        return self._values.get(key, default)

    def settled_all(self, keys: Iterable[Any], default: Any = None) -> list[Any]:
        """`settled` for each of `keys`, in one pass."""
        return list(map(self._values.get, keys, repeat(default)))

    def dispatch(self) -> None:
        """Send the queued keys as one batch (aiodataloader's dispatch_queue, without
        its wrappers: the binding splits a batch at the backend's size itself)."""
        batch, self._next = self._next, None
        if batch is not None:
            eager.start(self.loop, self._batch(batch))  # written in this pass

    async def _batch(self, batch: _Batch) -> None:
        keys = batch.keys
        binding = self._binding
        try:  # whatever happens, `_settle` ends the waits on this batch
            metrics.child(metrics.BATCH_SIZE, binding.label).observe(len(keys))
            if tracing.active:
                with tracing.span(f"loader {binding.label}", {"tessera.keys": len(keys)}):
                    values = await binding.fetch(self._client, keys, self._scope)
            else:
                values = await binding.fetch(self._client, keys, self._scope)
            if len(values) != len(keys):
                raise TypeError(f"{binding.label}: {len(values)} values for {len(keys)} keys")
            self._values.update(zip(keys, values, strict=True))
        except BaseException as exc:  # the whole batch failed (or was cancelled): each
            self._drop(batch, exc)  # key fails, none is kept; a cancellation goes on
            if not isinstance(exc, Exception):
                raise
        finally:
            self._settle(batch)

    def _drop(self, batch: _Batch, exc: BaseException) -> None:
        failure = exc if isinstance(exc, Exception) else asyncio.CancelledError()
        pending, futures = self._pending, self._futures
        for key in batch.keys:
            if pending.get(key) is batch:
                del pending[key]
            futures.pop(key, None)
        self._failed.update(dict.fromkeys(batch.keys, failure))

    def _settle(self, batch: _Batch) -> None:
        """The batch's loads are in: its `load` futures set and the waits on it woken,
        here, not by a done-callback a loop pass later."""
        for key, future in batch.loads:
            _fill(future, self.value(key))
        batch.done.set_result(None)
        for countdown in _WAITING.pop(batch.done, ()):
            countdown.settled()

    # DataLoader's interface, on this loader's own cache

    def load(self, key: Any) -> asyncio.Future[Any]:
        """A future for `key`'s value (the same one for the same key)."""
        future = self._futures.get(key)
        if future is None:
            future = self._futures[key] = self.loop.create_future()
            if self.want_one(key) is not None:
                self._pending[key].loads.append((key, future))
            else:
                _fill(future, self.value(key))
        return future

    def clear(self, key: Any) -> _Loader:
        for kept in (self._values, self._pending, self._failed, self._futures):
            kept.pop(key, None)
        return self

    def clear_all(self) -> _Loader:
        for kept in (self._values, self._pending, self._failed, self._futures):
            kept.clear()
        return self

    def prime(self, key: Any, value: Any) -> _Loader:
        if key not in self._values and key not in self._pending:
            self._values[key] = value
        return self


_UNSETTLED: Final = LookupError("a load was read before its batch settled")


def _fill(future: asyncio.Future[Any], value: Any) -> None:
    if future.done():
        return
    if isinstance(value, asyncio.CancelledError):
        future.cancel()
    elif isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


def _no_none() -> NoReturn:
    raise TypeError("The loader.load() function must be called with a value, but got: None.")


class _Unbatched(_Loader):
    """The benchmark's naive baseline (`caching=False`): every load its own call,
    at once, nothing kept."""

    def want(self, keys: Iterable[Any]) -> list[asyncio.Future[None]]:
        waits = []
        for key in keys:
            if key is None:
                _no_none()
            batch = _Batch(self.loop)
            batch.keys.append(key)
            self._pending[key] = batch
            self.loop.create_task(self._batch(batch))
            waits.append(batch.done)
        return waits

    def want_one(self, key: Any) -> asyncio.Future[None] | None:
        return self.want((key,))[0]

    def settled(self, key: Any, default: Any = None) -> Any:
        return default  # nothing kept: a field that reads it loads it

    def settled_all(self, keys: Iterable[Any], default: Any = None) -> list[Any]:
        return [default for _ in keys]

    def load(self, key: Any) -> asyncio.Future[Any]:
        self._futures.pop(key, None)  # nothing kept: each load its own call
        return super().load(key)


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


async def wait_all(futures: Sequence[asyncio.Future[None]]) -> None:
    """Once every one of these batches' futures (`_Loader.want`) is done, without
    gather's wrapper future and its callback per future, and without cancelling
    them if this task is cancelled (loads are shared)."""
    left = [future for future in futures if not future.done()]
    if left:
        await _done(*left)


class _Countdown:
    """One wait on several batches' futures: its waiter is set when the last of them
    is done (one wake-up of its task, not one per future)."""

    __slots__ = ("left", "waiter")

    def __init__(self, waiter: asyncio.Future[None], left: int) -> None:
        self.waiter = waiter
        self.left = left

    def settled(self) -> None:
        """One of its futures is done (a waiter already cancelled is left alone)."""
        self.left -= 1
        if not self.left and not self.waiter.done():
            self.waiter.set_result(None)


# a batch's future -> the waits on it (`_done`): the batch counts them down in its
# own step (`_Loader._settle`, which always runs: a batch's future is set nowhere
# else)
_WAITING: dict[asyncio.Future[None], list[_Countdown]] = {}


async def _done(*futures: asyncio.Future[None]) -> None:
    """Wait until all of these batches' futures are done, without cancelling them
    if this task is cancelled: `asyncio.wait(futures)` without its sets, counters
    and timeout handling. The wait has one waiter, woken by the batch that settles
    the last of them as it does so (a done-callback would run a loop pass later,
    behind other requests' callbacks)."""
    waiter: asyncio.Future[None] = futures[0].get_loop().create_future()
    countdown = _Countdown(waiter, len(futures))
    for future in futures:
        _WAITING.setdefault(future, []).append(countdown)
    try:
        await waiter
    finally:
        if countdown.left:  # leaving before all were done
            for future in futures:
                waits = _WAITING.get(future)
                if waits is not None and countdown in waits:
                    waits.remove(countdown)
                    if not waits:
                        del _WAITING[future]


def make_loaders(backends: Backends, scope: CallScope, named: dict[str, Rest] | None = None,
                 *, batching: bool = True) -> Loaders:
    return Loaders(backends, scope, caching=batching, named=named)
