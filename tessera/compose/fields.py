"""`link`: a Strawberry field whose value comes from a REST binding, declared once.

    @strawberry.type
    class Order:
        id: strawberry.ID
        user_id: strawberry.Private[str | None] = None
        user: User | None = link(users, key="user_id")               # one key from the parent
        products: list[Product | None] = link(products, keys=distinct_product_ids)

    @strawberry.type
    class Query:
        order: Order | None = link(orders, key=Arg("id"))            # the key is an argument
        orders: list[Order | None] = link(orders, keys=Arg("ids"))   # a list of keys
        # extra arguments fill the binding's other {placeholders}:
        #   link(orders_by_user, key="id", args={"limit": Arg(int, default=10, range=(1, 100),
        #                                                      size=True)})

The field's annotation says what it returns: records become that Strawberry type
(`tessera.compose.records`); `then=` turns the loaded value into something else
first (`then=lambda level: level > 0`). From the declaration Tessera derives the
resolver, the per-request loader it uses (batched and de-duplicated with every
other field on the same binding), the same-hop prefetch of what the returned
objects' selected fields need, nullable partial failure (the field is null, with
an error carrying the backend's `service` and `code`), stale answers, the cost
estimate and the limits on its arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import operator
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, cast

import strawberry
from strawberry.types import Info
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition

from ..errors import BackendBadResponse
from ..loaders import wait_all
from ..resilience import Stale
from .binding import Rest
from .lookahead import early_plans, fresh, prefetch, prefetch_plans, record_plans, start
from .records import builder, exact_type, scalar_check

NOTHING: Any = object()
LINK = "tessera.link"  # the StrawberryField metadata key holding a field's Link


@dataclass(frozen=True)
class Arg:
    """A GraphQL argument of a linked field.

    `Arg("id")` / `Arg("ids")` as `key=` / `keys=`: the key(s) come from this
    argument (ID! / [ID!]!, checked against `limits.max_ids`). In `args=`:
    `Arg(int, default=10, range=(1, 100), size=True)` fills the binding's
    `{placeholder}` of that name; `range` is enforced before any call
    (BAD_USER_INPUT), `size=True` tells the cost limit that the field returns
    that many items."""

    name_or_type: Any = None
    default: Any = NOTHING
    description: str | None = None
    range: tuple[int, int] | None = None
    size: bool = False


@dataclass
class Link:
    """What one linked field declared (kept as the field's metadata)."""

    binding: Rest
    key: str | Callable[[Any], Any] | Arg | None
    keys: str | Callable[[Any], Iterable[Any]] | Arg | None
    args: dict[str, Arg]
    constants: dict[str, Any]
    then: Callable[[Any], Any] | None
    list_size: int | None
    field: Any = None  # the StrawberryField, once made
    _finish: Callable[[Any], Any] | None = None
    _build: Callable[[Any], Any] | None = None
    _target: Any = NOTHING
    # (the parent's key or keys, a key as the loader's), once asked for
    _keyed: tuple[Callable[[Any], Any], Callable[[Any], Hashable]] | None = None

    @property
    def target(self) -> type | None:
        """The Strawberry object type this field returns (None for a scalar), once."""
        if self._target is NOTHING:
            from .lookahead import object_type

            self._target = object_type(self.field.type)
        found: type | None = self._target
        return found

    @property
    def many(self) -> bool:
        return self.keys is not None

    @property
    def key_arg(self) -> str | None:
        chosen = self.keys if self.many else self.key
        return chosen.name_or_type if isinstance(chosen, Arg) else None

    @property
    def key_attr(self) -> str | None:
        """The parent attribute holding the key, when declared by name."""
        chosen = self.keys if self.many else self.key
        return chosen if isinstance(chosen, str) else None

    @property
    def prefetchable(self) -> bool:
        """Can a parent start this field's load? Not when it takes arguments."""
        return not self.args and self.key_arg is None

    def of_parent(self, parent: Any) -> Any:
        """The key (or keys) this field takes from its parent object."""
        return self.keyed[0](parent)

    @property
    def keyed(self) -> tuple[Callable[[Any], Any], Callable[[Any], Hashable]]:
        """(parent -> its key or keys, a key -> the loader's key), made once: an
        attribute getter or the declared function; `str` when the path has no
        other placeholder (`Rest.key_of`)."""
        if self._keyed is None:
            chosen = self.keys if self.many else self.key
            of = chosen
            if isinstance(chosen, str):  # (attrgetter reads "a.b" as a path: getattr does not)
                of = operator.attrgetter(chosen) if "." not in chosen else \
                    (lambda parent: getattr(parent, chosen))
            binding, constants = self.binding, self.constants
            key: Callable[[Any], Hashable] = str if not binding.placeholders else \
                (lambda value: binding.key_of(value, constants))
            self._keyed = (cast(Callable[[Any], Any], of), key)
        return self._keyed

    def parent_keys(self, parents: Iterable[Any]) -> list[Hashable]:
        """The loader keys this field will load for these parents (for a prefetch)."""
        of, key = self.keyed
        if self.many:
            return [key(v) for parent in parents for v in (of(parent) or ()) if v is not None]
        return [key(v) for v in map(of, parents) if v is not None]

    def settled_reader(self) -> Callable[[Any, Any], Any] | None:
        """For a field the executor may read without its resolver (keyed by its parent,
        no arguments): `read(parent, context)`, the field's value when every load it
        needs has already finished (prefetched with the parent), else NOTHING,
        meaning the resolver must run (not loaded yet, failed, stale, or a value
        `finish` refuses: the resolver then reports it properly). What the value's
        own selected fields need is the executor's to check (`lookahead.needs_prefetch`).
        An object is built from its record once per request and load: every parent
        holding that key reads the same object (records are read-only; `then` is a
        function of the record)."""
        if not self.prefetchable:
            return None
        binding, finish, many = self.binding, self.finisher, self.many
        me, objects = id(self), self.target is not None
        of, loader_key = self.keyed

        def value_of(context: Any, memo: dict[Any, Any], raw: Any) -> Any:
            key = loader_key(raw)
            if objects:  # built once per load and request (100 posts, 10 authors): a
                # load that settled stays so for the request (a loader drops only
                # the keys of a batch that failed as a whole, and neither a failure
                # nor a stale answer is kept here), so its key alone finds it again
                found = memo.get((me, key), NOTHING)
                if found is not NOTHING:
                    return found
            value = _loaded(context.loaders[binding], key)
            if value is NOTHING:
                return NOTHING
            value = finish(value)
            if objects:
                memo[(me, key)] = value
            return value

        if not many and not objects and self.then is None:
            build = self.builder

            def scalar_of(loader: Any, got: Any) -> Any:
                # value_of and finish in one, without the memo (a stock count for each
                # of 100 products: nothing to share)
                value = _loaded(loader, loader_key(got))
                return value if value is NOTHING or value is None else build(value)

            def read_scalar(parent: Any, context: Any) -> Any:
                try:
                    got = of(parent)
                    return None if got is None else scalar_of(context.loaders[binding], got)
                except Exception:
                    return NOTHING

            column = _column(of, lambda context: partial(scalar_of, context.loaders[binding]),
                             lambda: None)
            exact = exact_type(_strip(self.field.type))  # int for an Int, str for an ID
            if exact is None or loader_key is not str:
                read_scalar.column = column  # type: ignore[attr-defined]
                return read_scalar
            as_loaded = frozenset({exact, type(None)})

            def scalar_column(parents: list[Any], context: Any) -> list[Any] | None:
                # a column of string keys whose loads all settled with values of the
                # scalar's usual JSON type (or null): those values, as scalar_of
                # would give each (a stock count for each of 100 products)
                try:
                    raws = list(map(of, parents))
                except Exception:
                    return None
                if {*map(type, raws)} == _STR:
                    found: list[Any] = context.loaders[binding].settled_all(raws, NOTHING)
                    if {*map(type, found)} <= as_loaded:
                        return found
                return column(parents, context)

            read_scalar.column = scalar_column  # type: ignore[attr-defined]
            return read_scalar

        def read(parent: Any, context: Any) -> Any:
            try:
                got = of(parent)
                if not many:
                    return finish(None) if got is None else \
                        value_of(context, context.memo, got)
                memo = context.memo
                values = [value_of(context, memo, key) for key in got or ()]
                return NOTHING if any(v is NOTHING for v in values) else values
            except Exception:
                return NOTHING

        if not many:
            read.column = _column(  # type: ignore[attr-defined]
                of, lambda context: partial(value_of, context, context.memo),
                lambda: finish(None))
        return read

    def finish(self, value: Any) -> Any:
        """A loaded value (records) as the field's type."""
        return self.finisher(value)

    @property
    def finisher(self) -> Callable[[Any], Any]:
        """`finish` as one function, made at first use (the type is known by then)."""
        if self._finish is None:
            self._finish = _finisher(self)
        return self._finish

    @property
    def builder(self) -> Callable[[Any], Any]:
        """A loaded value, not None, as the field's type without `then` (what `finish`
        ends in), made at first use."""
        if self._build is None:
            self._build = _builder(self)
        return self._build


def link(binding: Rest, *, key: str | Callable[[Any], Any] | Arg | None = None,
         keys: str | Callable[[Any], Iterable[Any]] | Arg | None = None,
         args: dict[str, Arg | Any] | None = None, then: Callable[[Any], Any] | None = None,
         list_size: int | None = None, description: str | None = None,
         deprecation_reason: str | None = None) -> Any:
    """A field loaded through `binding`. Give exactly one of `key` (one key: a parent
    attribute name, a function of the parent, or an `Arg`) and `keys` (a list of
    keys, the field returns a list in that order); neither for a binding with a
    fixed path (the whole collection)."""
    if key is None and keys is None and binding.fixed:
        key = _whole
    if (key is None) == (keys is None):
        raise ValueError(f"link({binding.label}): give exactly one of key= and keys=")
    given = dict(args or {})
    declared = {n: a for n, a in given.items() if isinstance(a, Arg)}
    constants = {n: v for n, v in given.items() if not isinstance(v, Arg)}
    missing = set(binding.placeholders) - set(given)
    if missing:
        raise ValueError(f"link({binding.label}): the path needs {sorted(missing)}: give "
                         "them in args=")
    spec = Link(binding, key, keys, declared, constants, then, list_size)
    made = strawberry.field(resolver=_resolver(spec), description=description,
                            deprecation_reason=deprecation_reason, metadata={LINK: spec})
    spec.field = made
    return made


def _whole(parent: Any) -> str:
    return "*"  # the one key of a fixed-path binding


def link_of(strawberry_field: Any) -> Link | None:
    metadata = getattr(strawberry_field, "metadata", None) or {}
    found: Link | None = metadata.get(LINK)
    return found


def _resolver(spec: Link) -> Callable[..., Any]:
    def resolve(root: Any, info: Info, **kwargs: Any) -> Any:
        return _resolve(spec, root, info, kwargs)

    params = [inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("info", inspect.Parameter.KEYWORD_ONLY, annotation=Info)]
    chosen = spec.keys if spec.many else spec.key
    if isinstance(chosen, Arg):
        kind = list[strawberry.ID] if spec.many else strawberry.ID
        params.append(_parameter(chosen.name_or_type, Arg(kind, chosen.default,
                                                          chosen.description)))
    params += [_parameter(name, arg) for name, arg in spec.args.items()]
    resolve.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return resolve


def _parameter(name: str, arg: Arg) -> inspect.Parameter:
    annotation: Any = arg.name_or_type
    if arg.description:
        annotation = Annotated[annotation, strawberry.argument(description=arg.description)]
    default = inspect.Parameter.empty if arg.default is NOTHING else arg.default
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=default)


_KEY_TYPES = frozenset({str, type(None)})
_STR = frozenset({str})
_UNREAD = (BaseException, Stale)  # a settled load a reader leaves to the resolver
_RECORDS = frozenset({dict, type(None)})  # loaded values built without a look at each first


def _loaded(loader: Any, key: Hashable) -> Any:
    """The value of the loader's finished load for `key`; NOTHING where there is none
    to read as it is (not finished, failed, cancelled, or a stale answer, which the
    resolver reports)."""
    value = loader.settled(key, NOTHING)
    return NOTHING if isinstance(value, _UNREAD) else value


def _column(of: Callable[[Any], Any], value_for: Callable[[Any], Callable[[Any], Any]],
            none: Callable[[], Any]) -> Callable[[list[Any], Any], list[Any] | None]:
    """A settled reader's `column(parents, context)`: its value for each parent at
    once (a compiled plan reads a list's linked field so, not once per item), each
    distinct key's value found once; None where that is not simply so (a parent
    or key that is not plain, a read that fails), and each parent is then read on
    its own, as before. Keys other than strings go that way too: `1` and `True`
    are one dict key but two loader keys."""
    def column(parents: list[Any], context: Any) -> list[Any] | None:
        try:
            raws = list(map(of, parents))
            if not {*map(type, raws)} <= _KEY_TYPES:
                return None
            values = dict.fromkeys(raws)
            value_of = value_for(context)
            for raw in values:
                values[raw] = value_of(raw) if raw is not None else none()
        except Exception:
            return None
        return list(map(values.__getitem__, raws))
    return column


def _resolve(spec: Link, root: Any, info: Info, kwargs: dict[str, Any]) -> Any:
    values = {**spec.constants, **{n: kwargs[n] for n in spec.args}} if spec.args \
        else spec.constants
    arg = spec.key_arg
    got = kwargs[arg] if arg is not None else spec.of_parent(root)
    loader = info.context.loaders[spec.binding]
    if spec.many:
        got = got or ()
        return _many(spec, info, loader, spec.binding.keys_of(got, values), list(map(str, got)))
    if got is None:
        return spec.finish(None)
    key = spec.binding.key_of(got, values)
    found = loader.settled(key, NOTHING)
    if found is NOTHING:
        return _one(spec, info, loader, key, str(got))
    if isinstance(found, BaseException):
        raise found
    result = spec.finish(fresh(info, found))
    if spec.target is None:  # a scalar: nothing below it to prefetch
        return result
    plans = prefetch_plans(info, spec, [result])
    return result if not plans else _then(prefetch(info, plans), result)


async def _then(pending: Any, result: Any) -> Any:
    await pending
    return result


async def _one(spec: Link, info: Info, loader: Any, key: Hashable, raw: str) -> Any:
    early = early_plans(info, spec, [raw])
    wait = loader.want_one(key)
    waits = start(info, early) if early else []
    if wait is not None:
        waits.append(wait)
    if waits:
        await wait_all(waits)
    value = loader.value(key)
    if isinstance(value, BaseException):
        raise value
    value = fresh(info, value)
    ahead = await _sent(info, spec, [value], early)
    result = spec.finish(value)
    await _children(info, spec, [result], early, ahead)
    return result


async def _many(spec: Link, info: Info, loader: Any, keys: list[Hashable],
                raw: list[str]) -> list[Any]:
    waits = loader.want(keys)
    early = early_plans(info, spec, raw)
    if early:
        waits += start(info, early)
    if waits:
        await wait_all(waits)
    values = loader.values(keys)
    plain = {*map(type, values)} <= _RECORDS  # no exception, no stale answer
    if not plain:
        values = [fresh(info, value, index) if isinstance(value, Stale) else value
                  for index, value in enumerate(values)]
    ahead = await _sent(info, spec, values, early)
    results = _finished(spec, values, plain)
    await _children(info, spec, results, early, ahead)
    return results


def _finished(spec: Link, values: list[Any], plain: bool) -> list[Any]:
    """Each loaded value as the field's item: an exception stays one (graphql-core
    nulls that item and reports it at its path), and so does a record the backend
    got wrong (that item only). Records alone (`plain`) are built in one pass, item
    by item only when one of them is refused (building has no side effects)."""
    finish = spec.finisher
    if plain:
        try:
            if spec.then is not None:  # (which may make something of a null too)
                return list(map(finish, values))
            build = spec.builder
            return [None if value is None else build(value) for value in values]
        except Exception:  # noqa: S110 - each item is built again below, on its own
            pass
    results: list[Any] = []
    append = results.append
    for value in values:
        if isinstance(value, Exception):
            append(value)
            continue
        try:
            append(finish(value))
        except Exception as exc:
            append(exc)
    return results


async def _sent(info: Info, spec: Link, values: list[Any],
                early: list[Any]) -> list[asyncio.Future[Any]] | None:
    """The prefetch of what these loaded records' selected children need, started
    from the records themselves (`record_plans`) and given the loop pass in which
    the request's batches are dispatched, so its calls are out while the records
    are built: its loads, or None when it must be planned from the built objects."""
    plans = record_plans(info, spec, values, skip=early)
    if not plans:
        return None if plans is None else []
    loads = start(info, plans)
    if loads:
        await asyncio.sleep(0)  # the batcher's tick, queued by these loads, runs first
    return loads


async def _children(info: Info, spec: Link, results: list[Any], early: list[Any],
                    ahead: list[asyncio.Future[Any]] | None) -> None:
    """Wait for what the results' selected children need: the loads `_sent` started
    from their records, else those planned from the built objects."""
    if ahead is None:
        plans = prefetch_plans(info, spec, results, skip=early)
        if plans:
            await prefetch(info, plans)
    elif ahead:
        await wait_all(ahead)


def _builder(spec: Link) -> Callable[[Any], Any]:
    """Loaded records -> the field's Strawberry types (or checked scalars)."""
    kind = spec.field.type
    if spec.many:  # each key's value is built alone
        kind = _strip(kind)
        if isinstance(kind, StrawberryList):
            kind = kind.of_type
    return _build_for(_strip(kind), spec.binding.backend)


def _finisher(spec: Link) -> Callable[[Any], Any]:
    """Loaded value -> the field's value: `then`, then records into Strawberry types."""
    build = spec.builder
    then = spec.then

    def finish(value: Any) -> Any:
        if then is not None:
            value = then(value)
        return None if value is None else build(value)

    return finish


def _strip(kind: Any) -> Any:
    return kind.of_type if isinstance(kind, StrawberryOptional) else kind


def _build_for(kind: Any, service: str) -> Callable[[Any], Any]:
    if isinstance(kind, StrawberryList):
        item = _build_for(_strip(kind.of_type), service)
        return lambda values: [None if v is None else item(v) for v in values]
    if isinstance(kind, type) and get_object_definition(kind) is not None:
        return builder(kind, service)
    return _scalar(kind, service)


_SCALAR_NAMES = {strawberry.ID: "an ID", str: "a String", int: "an Int", float: "a Float",
                 bool: "a Boolean"}  # as a client reads the field's type


def _scalar(kind: Any, service: str) -> Callable[[Any], Any]:
    named = _SCALAR_NAMES.get(kind) or f"a {getattr(kind, '__name__', kind)}"

    def wrong() -> BackendBadResponse:
        return BackendBadResponse(service, f"sent a value that is not {named}")
    return scalar_check(kind, wrong) or (lambda value: value)
