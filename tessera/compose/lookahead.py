"""Look one level ahead, so the objects a resolver returns resolve without awaiting.

graphql-core completes a list whose items have async fields by gathering one
task per item; for `products(ids: [100 ids]) { stock }` that is 100 tasks for
one inventory call, most of the request's CPU. Instead, a linked field that
returns objects first starts the loads their selected linked fields will need
(`prefetch`), awaits them together (the same hop those fields would have taken),
and those fields then read the settled loads synchronously. A field
whose load was not prefetched still returns an awaitable, so the answer never
depends on the lookahead; only its cost does.

What to prefetch is derived from the declarations (`link` fields of the returned
type, and of the types of its selected object-valued data fields, one level
down). A parent prefetches only when it can cover every linked field selected on
its children (a field with arguments cannot be prefetched); otherwise it
prefetches nothing, so no field ever starts later than it would have without
the lookahead. When the children's keys are the keys the parent asked for (a
product's `stock` is keyed by the product id asked for), their loads start
together with the parent's own (`early_plans`): one hop instead of two. When
they are keyed by a field of the parent's records (`Post.user` by `user_id`, read
from the record's `userId`), their loads start from the records as they arrive
(`record_plans`), and the parent objects are built while that call is out, not
before it leaves (100 posts: ~0.08 ms off the critical path at one connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FloatValueNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    value_from_ast_untyped,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition

from ..loaders import wait_all
from ..resilience import Stale
from .records import field_reader

if TYPE_CHECKING:
    from .fields import Link

Plan = tuple["Link", list[Hashable]]
GRAPHQL_NAMES = StrawberryConfig().name_converter


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


def selected(info: Info, *path: str) -> set[str]:
    """The names of the fields selected under this field (then under `path`);
    computed once per field of the document and request, not once per item."""
    raw = info._raw_info
    memo: dict[Any, set[str]] = info.context.memo
    key = (id(raw.field_nodes), path)
    found = memo.get(key)
    if found is None:
        sets = [node.selection_set for node in raw.field_nodes]
        for name in path:
            sets = [f.selection_set for f in _children(sets, raw.fragments)
                    if f.name.value == name]
        found = memo[key] = {f.name.value for f in _children(sets, raw.fragments)}
    return found


@cache
def links_of(kind: type) -> dict[str, Link]:
    """A type's linked fields by GraphQL name."""
    from .fields import link_of

    definition = get_object_definition(kind, strict=True)
    out: dict[str, Link] = {}
    for f in definition.fields:
        spec = link_of(f)
        if spec is not None:
            out[GRAPHQL_NAMES.get_graphql_name(f)] = spec
    return out


@cache
def nested_of(kind: type) -> dict[str, tuple[str, type]]:
    """A type's data fields holding objects with links: GraphQL name -> (attribute, type)."""
    definition = get_object_definition(kind, strict=True)
    out: dict[str, tuple[str, type]] = {}
    for f in definition.fields:
        if f.base_resolver is not None:
            continue
        target = object_type(f.type)
        if target is not None and links_of(target):
            out[GRAPHQL_NAMES.get_graphql_name(f)] = (f.python_name, target)
    return out


def needs_prefetch(kind: type, nodes: Sequence[FieldNode], fragments: dict[str, Any]) -> bool:
    """Would objects of `kind` selected by `nodes` prefetch anything for their
    children (a linked field, or an object-valued field holding linked ones)?"""
    links, nested = links_of(kind), nested_of(kind)
    return any(f.name.value in links or f.name.value in nested
               for f in _children([node.selection_set for node in nodes], fragments))


def object_type(kind: Any) -> type | None:
    """The Strawberry object type under optional/list wrappers, if it is one."""
    while isinstance(kind, StrawberryOptional | StrawberryList):
        kind = kind.of_type
    return kind if isinstance(kind, type) and get_object_definition(kind) else None


def prefetch_plans(info: Info, spec: Link, results: Sequence[Any], *,
                   skip: Sequence[Plan] = ()) -> list[Plan]:
    """What the selected linked fields of these results (and of their selected
    object-valued fields, one level down) will load."""
    kind = spec.target
    if kind is None or not info.context.loaders.caching:
        return []
    done = {id(link) for link, _ in skip}
    subjects = [r for r in _flat(results) if r is not None and not isinstance(r, Exception)]
    plans: list[Plan] = []
    if not _plan(info, kind, selected(info), subjects, (), done, plans):
        return []
    return plans


def _plan(info: Info, kind: type, fields: set[str], subjects: list[Any], path: tuple[str, ...],
          done: set[int], plans: list[Plan]) -> bool:
    links = links_of(kind)
    nested = nested_of(kind) if not path else {}
    for name in fields:
        link = links.get(name)
        if link is not None:
            if not link.prefetchable:
                return False
            if id(link) not in done:
                plans.append((link, link.parent_keys(subjects)))
        elif name in nested:
            attr, target = nested[name]
            inner = [item for s in subjects for item in _flat([getattr(s, attr)])
                     if item is not None]
            if not _plan(info, target, selected(info, name), inner, (*path, name), done,
                         plans):
                return False
    return True


def record_plans(info: Info, spec: Link, values: Sequence[Any], *,
                 skip: Sequence[Plan] = ()) -> list[Plan] | None:
    """`prefetch_plans` read from the loaded records themselves, before they are
    built (so the loads can leave while the objects are made): the selected linked
    fields of the returned type keyed by a record field of their parent (`user_id`,
    filled from `userId`), each key as the built object would hold it. None where
    that does not cover everything `prefetch_plans` would plan (a nested object's
    links, a key given as a function, a `then=`, a value that is not records, a key
    that would not build): the objects are then built first, as before."""
    kind = spec.target
    if kind is None or spec.then is not None or not info.context.loaders.caching:
        return None
    records = _flat(values)
    done = {id(link) for link, _ in skip}
    links, nested = links_of(kind), nested_of(kind)
    plans: list[Plan] = []
    for name in selected(info):
        link = links.get(name)
        if link is None:
            if name in nested:
                return None
            continue
        attr = link.key_attr
        if not link.prefetchable or attr is None:
            return None
        if id(link) in done:
            continue
        found = field_reader(kind, spec.binding.backend, attr)
        keys = None if found is None else _record_keys(link, records, *found)
        if keys is None:
            return None
        plans.append((link, keys))
    return plans


def _record_keys(link: Link, records: list[Any], field: str, check: Callable[[Any], Any],
                 exact: Any, widen: Any) -> list[Hashable] | None:
    """The loader keys `link` takes from these records' `field` (None where one is
    not a record or its value would not build)."""
    try:
        raw = [r.get(field) for r in records if r is not None]
    except AttributeError:  # an item that is not a record (or a failed load's error)
        return None
    key = link.keyed[1]
    if not link.many and key is str and exact is str:  # an ID or str key, as usual
        keys: list[Any] = [v if type(v) is str else widen(v) if type(v) is int and widen
                           else None for v in raw]
        if None not in keys:
            return keys
    keys = []
    for value in raw:
        if type(value) is not exact:
            if widen is not None and type(value) is int:
                value = widen(value)  # (a numeric id: as the builder does)
            else:
                try:
                    value = check(value)
                except Exception:
                    return None
        if value is None:
            continue
        if not link.many:
            keys.append(key(value))
        elif type(value) is list:
            keys += [key(k) for k in value if k is not None]
        else:
            return None
    return keys


def early_plans(info: Info, spec: Link, keys: Sequence[str]) -> list[Plan]:
    """Loads that can start with the parent's own: its children's linked fields
    keyed by the very keys the parent is loaded by. A child field with arguments
    (`User.orders(limit:)`) starts too when its arguments can be read from the
    document and the variables here: one load per distinct set of arguments."""
    binding = spec.binding
    kind = spec.target
    if (kind is None or binding.grouped or binding.answer != "entity"
            or not info.context.loaders.caching):
        return []
    fields = selected(info)
    links = links_of(kind)
    chosen: list[tuple[Link, list[dict[str, Any]]]] = []
    for name in fields:
        link = links.get(name)
        if link is None:
            continue
        if link.key_arg is not None:
            return []
        argument_sets = _argument_sets(info, name, link) if link.args else [link.constants]
        if argument_sets is None:
            return []
        chosen.append((link, argument_sets))
    present = [k for k in keys if k]
    return [(link, [key for values in argument_sets
                    for key in link.binding.keys_of(present, values)])
            for link, argument_sets in chosen if link.key_attr == binding.by and not link.many]


_LITERALS = (IntValueNode, StringValueNode, BooleanValueNode, FloatValueNode)


def _argument_sets(info: Info, name: str, link: Link) -> list[dict[str, Any]] | None:
    """The values a linked field's resolver will get for its declared arguments,
    for each selection of it under this field (`constants` included), read from
    the document and the variables; None where one is not a plain literal or
    variable of a scalar value (the field then loads in its own hop). Read once
    per field of the document and request, not once per parent."""
    memo: dict[Any, Any] = info.context.memo
    key = ("arguments", id(info._raw_info.field_nodes), name)
    if key not in memo:
        memo[key] = _read_argument_sets(info, name, link)
    found: list[dict[str, Any]] | None = memo[key]
    return found


def _read_argument_sets(info: Info, name: str, link: Link) -> list[dict[str, Any]] | None:
    from .fields import NOTHING

    raw = info._raw_info
    given_variables: Any = raw.variable_values  # Strawberry passes the coerced dict
    variables: dict[str, Any] = given_variables if isinstance(given_variables, dict) else {}
    sets: list[dict[str, Any]] = []
    nodes = [f for f in _children([n.selection_set for n in raw.field_nodes], raw.fragments)
             if f.name.value == name]
    for node in nodes:
        given = {a.name.value: a.value for a in node.arguments or ()}
        values = dict(link.constants)
        for arg_name, arg in link.args.items():
            value_node = given.get(GRAPHQL_NAMES.apply_naming_config(arg_name))
            if value_node is None:
                if arg.default is NOTHING:
                    return None
                value = arg.default
            elif isinstance(value_node, VariableNode):
                if value_node.name.value not in variables:
                    return None
                value = variables[value_node.name.value]
            elif isinstance(value_node, _LITERALS):
                value = value_from_ast_untyped(value_node)
            else:
                return None
            if not isinstance(value, str | int | float | bool):
                return None
            values[arg_name] = value
        if values not in sets:
            sets.append(values)
    return sets or None


def _flat(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(value)
        else:
            out.append(value)
    return out


def start(info: Info, plans: Sequence[Plan]) -> list[asyncio.Future[Any]]:
    """Start loading these keys (failures stay in the loaders, for each field): the
    futures of the batches they wait for, each once."""
    loaders = info.context.loaders
    waits = [wait for link, keys in plans for wait in loaders[link.binding].want(keys)]
    return list(dict.fromkeys(waits)) if len(waits) > 1 else waits


async def prefetch(info: Info, plans: Sequence[Plan]) -> None:
    """Load these keys together and wait for them."""
    await wait_all(start(info, plans))


def fresh(info: Info, value: Any, index: int | None = None) -> Any:
    """A loaded value as it is; a `Stale` one unwrapped and reported at this field's
    path (`extensions.tessera.stale`), so nobody mistakes it for fresh data."""
    if not isinstance(value, Stale):
        return value
    path = info.path.as_list() + ([] if index is None else [index])
    info.context.scope.report.served_stale(path, value.service, value.age_s)
    return value.value
