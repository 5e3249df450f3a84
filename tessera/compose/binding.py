"""A REST binding: how one backend is asked for records by key, declared once.

    users = Rest("users", many="/users", one="/users/{key}")              # ?ids=1,2
    users = Rest("users", many="/users", param="id", batch="repeat")      # ?id=1&id=2
    posts = Rest("posts", one="/posts?userId={key}", batch="none", answer="list")
    every_post = Rest("posts", one="/posts", batch="none", answer="list")   # no key
    shipments = Rest("shipments", many="/shipments", param="order_ids",
                     group_by="order_id")                                 # one-to-many

From the binding Tessera derives the batch function a per-request DataLoader
runs (`fetch`): keys de-duplicated, split at the backend's `max_batch_size`
(and so that no URL grows past 8000 characters of keys), one call per chunk,
every answer checked and laid out in key order, a failed chunk failing only its
own keys, stale answers kept and served when the backend's `stale_if_error_s`
says so. What a key maps to:

    answer="entity"  objects; each one's `by` field (default "id") is its key
                     (a number is read as a string); a key not answered is None
    group_by="f"     objects grouped into a list per key by their field `f`
                     ([] for a key with none)
    answer="map"     one object {key: value} (e.g. {"A1": 120})
    answer="list"    with batch="none": the call's list is the key's value

Batch shapes: "comma" (`?ids=1,2`; a key containing a comma is fetched alone,
by `one` when there is one), "repeat" (`?id=1&id=2`), "none" (one call per key,
`one` with `{key}`; other `{placeholders}` are filled from the field's
arguments, so `one="/orders?user_id={key}&limit={limit}"` takes `limit`).
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal

from ..backends import MISSING, BackendClient, CallScope
from ..backends.urls import DOT_SEGMENTS, fill, key_list, list_chunks
from ..errors import BackendBadResponse, framed_out

Batch = Literal["comma", "repeat", "none"]
Answer = Literal["entity", "map", "list"]
Slot = Any  # a value, None, a Stale value, or an Exception


@dataclass(frozen=True, eq=False)
class Rest:
    """One way of fetching records from `backend` by key (compared by identity)."""

    backend: str
    many: str | None = None  # the batch call's path, e.g. "/users"
    one: str | None = None  # the path for one key, with {key}, e.g. "/users/{key}"
    param: str = "ids"  # the query parameter that carries the keys of a batch
    batch: Batch = "comma"
    by: str = "id"  # answer="entity": the object field that holds its key
    group_by: str | None = None  # objects grouped into a list per key, by this field
    answer: Answer = "entity"
    list_size: int | None = None  # how many items a key's list holds, for the cost limit
    name: str | None = None  # metrics and tracing label; default: backend + path
    per_key_ok: bool = False  # batch="none" accepted: `tessera check` reports, not fails
    placeholders: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"Rest({self.backend!r}, ...): {problem}")
        names = [n for _, n, _, _ in string.Formatter().parse(self.one or "") if n]
        object.__setattr__(self, "placeholders", tuple(n for n in names if n != "key"))

    def _problem(self) -> str | None:
        if self.batch == "none" and self.one is None:
            return "batch='none' needs `one`, the path for one key"
        if self.batch != "none" and self.many is None:
            return f"batch={self.batch!r} needs `many`, the path of the batch call"
        if self.one is not None and "{key}" not in self.one and self.answer != "list":
            return "`one` must contain {key} (only a list answer may have a fixed path)"
        if self.answer == "list" and self.batch != "none":
            return "answer='list' is for one call per key (batch='none')"
        if self.group_by is not None and self.answer != "entity":
            return "group_by groups objects: leave answer='entity'"
        return None

    @property
    def label(self) -> str:
        return self.name or f"{self.backend}:{self.many or self.one}"

    @property
    def fixed(self) -> bool:
        """A whole collection at a fixed path (`one="/posts"`): no key at all."""
        return self.one is not None and "{key}" not in self.one

    @property
    def grouped(self) -> bool:
        """Does a key map to a list of records (one-to-many)?"""
        return self.group_by is not None or self.answer == "list"

    def key_of(self, key: Any, args: dict[str, Any]) -> Hashable:
        """The loader key for `key` with the values of the path's other placeholders."""
        if not self.placeholders:
            return str(key)
        return (str(key), tuple(args[name] for name in self.placeholders))

    def keys_of(self, keys: Iterable[Any], args: dict[str, Any]) -> list[Hashable]:
        """`key_of` for each of `keys` (the list of a batch: one pass, not a call each)."""
        if not self.placeholders:
            return list(map(str, keys))
        others = tuple(args[name] for name in self.placeholders)
        return [(str(key), others) for key in keys]

    async def fetch(self, client: BackendClient, keys: Sequence[Hashable],
                    scope: CallScope) -> list[Slot]:
        """The batch function: a slot per key, in key order. With the backend's
        entity cache on, kept answers are served from it and only the rest fetched
        (see `tessera.resilience.cache`)."""
        report, cache = scope.report, client.cache
        caller = scope.headers.get("authorization")
        unique = list(dict.fromkeys(keys))
        writes: list[Awaitable[None]] = []
        keep: Keep | None = None
        if cache.enabled:
            found, missing = await cache.lookup(self.label, unique, caller, report, scope.tab)

            def keep(key: Hashable, value: Any, cache_control: str | None) -> None:
                write = cache.keep(self.label, key, value, cache_control, caller, report)
                if write is not None:
                    writes.append(write)
        else:
            found, missing = {}, unique
            report.cache_part(None)
        if missing:
            if self.batch == "none":
                found.update(await _per_key(missing, lambda key: self._one(client, key, scope),
                                            stale=(client.stale, self.label), keep=keep,
                                            caller=caller))
            else:
                found.update(await _by_chunks(self, client, list(map(str, missing)), scope,
                                              keep, caller))
        if writes:
            await asyncio.gather(*writes)
        return list(map(found.get, keys))

    async def _one(self, client: BackendClient, key: Any,
                   scope: CallScope) -> tuple[Any, str | None]:
        value, extra = key if self.placeholders else (key, ())
        path = fill(self.one or "", {"key": str(value), **{
            name: str(arg) for name, arg in zip(self.placeholders, extra, strict=True)}})
        answer, cache_control = await client.fetch(path, scope=scope,
                                                   missing_ok=not self.grouped)
        if answer is MISSING:
            return None, cache_control
        if self.answer == "list":
            return _objects(client, answer), cache_control
        if not isinstance(answer, dict):
            raise _bad(client, "a body that is not an object")
        return next(iter(self.index(client, [answer], [str(value)]).values()), None), \
            cache_control

    async def many_call(self, client: BackendClient, chunk: list[str],
                        scope: CallScope) -> tuple[dict[str, Any], str | None]:
        assert self.many is not None
        answer, cache_control = await client.fetch(
            key_list(self.many, self.param, chunk, repeat=self.batch == "repeat"), scope=scope)
        return self.index(client, answer, chunk), cache_control

    def index(self, client: BackendClient, answer: Any, keys: list[str]) -> dict[str, Any]:
        """An answer laid out by key (the contract's checks: a body of the wrong
        shape is the backend's BACKEND_BAD_RESPONSE)."""
        if self.answer == "map":
            if not isinstance(answer, dict):
                raise _bad(client, "a body that is not an object")
            return {str(k): v for k, v in answer.items()}
        items = _objects(client, answer)
        if self.group_by is not None:
            grouped: dict[str, list[Any]] = {key: [] for key in keys}
            for item in items:
                owner = item.get(self.group_by)
                if isinstance(owner, str | int) and str(owner) in grouped:
                    grouped[str(owner)].append(item)
            return grouped
        found: list[Any] = list(map(dict.get, items, repeat(self.by)))
        kinds = {*map(type, found)}
        if kinds <= {str}:  # (the usual answer: every key checked at once, no call each)
            return dict(zip(found, items, strict=True))
        if kinds <= {str, int}:
            return dict(zip(map(str, found), items, strict=True))
        out: dict[str, Any] = {}
        for item in items:
            key = item.get(self.by)
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise _bad(client, f"an item that has no {self.by}")
            out[str(key)] = item
        return out


def _bad(client: BackendClient, what: str) -> BackendBadResponse:
    return BackendBadResponse(client.service, f"answered with {what}")


def _objects(client: BackendClient, answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, list):
        raise _bad(client, "a body that is not a list")
    if {*map(type, answer)} - {dict} and not all(isinstance(item, dict) for item in answer):
        raise _bad(client, "a list item that is not an object")
    return answer


Keep = Callable[[Hashable, Any, "str | None"], None]


async def _by_chunks(binding: Rest, client: BackendClient, keys: list[str],
                     scope: CallScope, keep: Keep | None,
                     caller: str | None = None) -> dict[Hashable, Slot]:
    """Batched calls for `keys`; a key that cannot travel in a comma list, or a
    lone key the backend can be asked for by path, goes alone."""
    unique = dict.fromkeys(keys)
    unique.pop("", None)
    wanted = list(unique)
    alone: list[str] = []
    if binding.batch == "comma" and "," in "".join(wanted):
        alone = [k for k in wanted if "," in k]
    if binding.one is not None and len(wanted) == 1 and wanted[0] not in DOT_SEGMENTS \
            and not binding.grouped:
        alone = wanted
    listed = [k for k in wanted if k not in alone] if alone else wanted
    calls: list[tuple[list[str], Awaitable[tuple[dict[str, Any], str | None]]]] = []
    for key in alone:
        calls.append(([key], _alone(binding, client, key, scope)))
    calls += [(chunk, binding.many_call(client, chunk, scope))
              for chunk in list_chunks(listed, client.max_batch_size)]
    found: dict[Hashable, Slot] = {}
    store = client.stale
    outcomes = await _outcomes([call for _, call in calls])
    for (chunk, _), outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            for key in chunk:
                found[key] = outcome if store is None else \
                    store.recall(binding.label, key, outcome, caller)
        else:
            answered, cache_control = outcome
            if store is not None:
                store.remember(binding.label, answered, caller)
            found.update(answered)
            if keep is not None:
                for key in chunk:
                    keep(key, answered.get(key), cache_control)
    return found


async def _outcomes(calls: list[Awaitable[Any]]) -> list[Any]:
    """Each call's result or exception, as `gather(..., return_exceptions=True)`
    gives them; a single call (the usual batch) is awaited without a task."""
    if len(calls) != 1:
        return [framed_out(outcome) if isinstance(outcome, BaseException) else outcome
                for outcome in await asyncio.gather(*calls, return_exceptions=True)]
    try:
        return [await calls[0]]
    except Exception as exc:
        return [framed_out(exc)]


async def _alone(binding: Rest, client: BackendClient, key: str,
                 scope: CallScope) -> tuple[dict[str, Any], str | None]:
    if binding.one is None or key in DOT_SEGMENTS:  # ask for it in a list of one
        return await binding.many_call(client, [key], scope)
    value, cache_control = await binding._one(client, key, scope)
    return {key: value}, cache_control


async def _per_key(keys: Sequence[Hashable], fetch: Callable[[Hashable], Awaitable[Any]], *,
                   stale: tuple[Any, str], keep: Keep | None,
                   caller: str | None = None) -> dict[Hashable, Slot]:
    """One call per distinct key (the backend cannot batch), all concurrent."""
    store, namespace = stale
    outcomes = await _outcomes([fetch(key) for key in keys])
    slots: dict[Hashable, Slot] = {}
    for key, outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            slots[key] = outcome if store is None else \
                store.recall(namespace, key, outcome, caller)
        else:
            value, cache_control = outcome
            if store is not None and value is not None:
                store.remember(namespace, {key: value}, caller)
            if keep is not None:
                keep(key, value, cache_control)
            slots[key] = value
    return slots
