"""Look one level ahead, so the objects a resolver returns resolve without awaiting.

graphql-core completes a list whose items have async fields by gathering one
task per item; for `products(ids: [100 ids]) { stock }` that is 100 tasks and
100 coroutines for one inventory call, most of the request's CPU. Instead, a
resolver that returns objects first starts the loads their selected fields will
need (`prefetch`), awaits them together (the same hop those fields would have
taken), and the fields then read the settled loader future synchronously
(`linked`). A field whose load was not prefetched still returns an awaitable,
so the answer never depends on the lookahead; only its cost does.

A parent prefetches only when it can cover every linked field selected on its
children (`Links` lists them per type); otherwise it prefetches nothing, so no
field ever starts later than it would have without the lookahead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, cast

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from strawberry.types import Info

from ..context import Context
from ..loaders import settled
from ..resilience import Stale

T = TypeVar("T")
Ctx = Info[Context, None]

# A type's linked fields: GraphQL field name -> (loader name, keys of one subject),
# or None for a linked field that cannot be prefetched (it takes arguments).
Links = dict[str, tuple[str, Callable[[Any], Iterable[Any]]] | None]


def _children(sets: Iterable[SelectionSetNode | None], fragments: dict[str, Any],
              seen: set[str] | None = None) -> Iterator[FieldNode]:
    """The field nodes directly under `sets`, through fragments."""
    seen = set() if seen is None else seen
    for selection_set in sets:
        for sel in selection_set.selections if selection_set is not None else ():
            if isinstance(sel, FieldNode):
                yield sel
            elif isinstance(sel, InlineFragmentNode):
                yield from _children([sel.selection_set], fragments, seen)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                seen.add(sel.name.value)
                fragment = fragments.get(sel.name.value)
                if fragment is not None:
                    yield from _children([fragment.selection_set], fragments, seen)


def selected(info: Ctx, *path: str) -> set[str]:
    """The names of the fields selected under this field (then under `path`)."""
    raw = info._raw_info
    sets = [node.selection_set for node in raw.field_nodes]
    for name in path:
        sets = [f.selection_set for f in _children(sets, raw.fragments) if f.name.value == name]
    return {f.name.value for f in _children(sets, raw.fragments)}


async def prefetch(info: Ctx, plans: Sequence[tuple[Links, set[str], Iterable[Any]]]) -> None:
    """Load, together, what the `fields` of these subjects will need.

    Each plan is (the subjects' Links, the fields selected on them, the subjects).
    Nothing is loaded when a selected field cannot be prefetched, or when the
    loaders do not cache (the naive benchmark baseline)."""
    loaders = info.context.loaders
    if not loaders.caching:
        return
    wanted: list[tuple[str, Callable[[Any], Iterable[Any]], Iterable[Any]]] = []
    for links, fields, subjects in plans:
        for name in fields:
            if name not in links:
                continue  # a plain field
            link = links[name]
            if link is None:
                return
            wanted.append((*link, subjects))
    futures = [getattr(loaders, loader).load(key)
               for loader, keys, subjects in wanted
               for subject in subjects if subject is not None and not isinstance(subject, Exception)
               for key in keys(subject) if key is not None]
    if futures:
        await asyncio.gather(*futures, return_exceptions=True)


def fresh(info: Ctx, value: Any, index: int | None = None) -> Any:
    """A loaded value as it is; a `Stale` one unwrapped and reported at this field's
    path (`extensions.tessera.stale`), so nobody mistakes it for fresh data."""
    if not isinstance(value, Stale):
        return value
    path = info.path.as_list() + ([] if index is None else [index])
    info.context.scope.report.served_stale(path, value.service, value.age_s)
    return value.value


def linked(info: Ctx, loader: Any, key: Any, finish: Callable[[Any], T]) -> T:
    """A linked field's value: at once when its load has settled (prefetched by a
    parent), else an awaitable of it, which graphql-core awaits like any resolver's
    (typed as the value so the resolver's annotation stays its GraphQL type).
    A failed load raises here, at this field's path."""
    if key is None:
        return finish(None)
    future = settled(loader, key)
    if future is None:
        return cast(T, _later(info, loader, key, finish))
    return finish(fresh(info, future.result()))


async def _later(info: Ctx, loader: Any, key: Any, finish: Callable[[Any], T]) -> T:
    return finish(fresh(info, await loader.load(key)))
