"""Backend records (JSON objects) into Strawberry objects, checked on the way.

    build = builder(Order, service="orders")
    order = build({"id": 42, "status": "SHIPPED", "items": [...], "user_id": "7"})

Every data field of the type (a field with no resolver, `strawberry.Private`
ones included) is read from the record key of the same name, or of the name
given with `source(...)`. Its annotation is checked: `ID` takes a string or a
number (as a string), `str`, `int` (not a bool), `float` (an int too), `bool`,
`X | None` (null or missing is None), `list[X]`, and nested Strawberry types
(built the same way). A record that does not fit is the backend's
BACKEND_BAD_RESPONSE on the field that asked for it, never a crash.

    @strawberry.type
    class Post:
        user_id: strawberry.Private[str] = source("userId")
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Union

import strawberry
from strawberry.types.base import get_object_definition

from ..errors import BackendBadResponse

Build = Callable[[Any], Any]
_SOURCE = "tessera.source"
_MISSING = object()


def source(key: str, **options: Any) -> Any:
    """A data field read from record key `key` (a `strawberry.field` otherwise)."""
    if options.pop("private", False):
        return dataclasses.field(metadata={_SOURCE: key}, **options)
    metadata = {**options.pop("metadata", {}), _SOURCE: key}
    return strawberry.field(metadata=metadata, **options)


_builders: dict[tuple[type, str], Build] = {}


def builder(cls: type, service: str) -> Build:
    """The (cached) function that makes a `cls` from one record of `service`."""
    made = _builders.get((cls, service))
    if made is None:
        made = _builders[(cls, service)] = _object_builder(cls, service)
    return made


def _object_builder(cls: type, service: str) -> Build:
    readers = _readers(cls, service)
    if _plain_init(cls, {reader[0] for reader in readers}):
        # The dataclass __init__ would only assign these fields: fill the instance's
        # __dict__ directly (a record per item of every list an answer holds).
        return _plain_builder(cls, service, readers)

    def build_by_init(record: Any) -> Any:
        if not isinstance(record, dict):
            raise BackendBadResponse(service, f"sent a {cls.__name__} that is not an object")
        return cls(**{name: check(record.get(key)) for name, key, check, _ in readers})

    return build_by_init


def field_reader(cls: type, service: str, attr: str) -> tuple[str, Build, Any, Any] | None:
    """How `builder(cls, service)` fills data field `attr`, to read it from a record
    without building the object: (the record key, the check, the type a value is
    held as it is, the builtin an exact int is given to (`str` for an ID) or None).
    `check(record.get(key))` is the value the built object holds (or raises where
    building would). None when `attr` is not a data field."""
    return _field_readers(cls, service).get(attr)


@cache
def _field_readers(cls: type, service: str) -> dict[str, tuple[str, Build, Any, Any]]:
    return {name: (key, check, _EXACT.get(annotation), _WIDENERS.get(annotation))
            for name, key, check, annotation in _readers(cls, service)}


@cache
def _readers(cls: type, service: str) -> tuple[tuple[str, str, Build, Any], ...]:
    """Per data field: (its name, its record key, its check, its annotation
    unwrapped); made once per type and service, for its builder and `field_reader`."""
    hints = typing.get_type_hints(cls, globalns=vars(sys.modules[cls.__module__]),
                                  include_extras=True)
    resolved = _resolved_fields(cls)
    readers: list[tuple[str, str, Build, Any]] = []
    for f in dataclasses.fields(cls):
        if f.name in resolved or f.name not in hints:
            continue
        key = f.metadata.get(_SOURCE, f.name) if f.metadata else f.name
        readers.append((f.name, key, _checker(hints[f.name], service, key),
                        _unwrap(hints[f.name])[0]))
    return tuple(readers)


def _plain_builder(cls: type, service: str,
                   readers: tuple[tuple[str, str, Build, Any], ...]) -> Build:
    """The builder as one generated function, as dataclasses makes __init__: per
    field, the record's value, kept as it is when it has its scalar's usual JSON
    type; an int made a str for an ID and a float for a Float in place (numeric
    ids are common: two calls per field saved); anything else given to the
    field's check (which converts it or refuses it)."""
    names: dict[str, Any] = {"new": object.__new__, "cls": cls, "BackendBadResponse":
                             BackendBadResponse, "service": service,
                             "refused": f"sent a {cls.__name__} that is not an object"}
    lines = ["def build(record):",
             "    if type(record) is not dict and not isinstance(record, dict):",
             "        raise BackendBadResponse(service, refused)",
             "    get = record.get"]
    for index, (_, key, check, annotation) in enumerate(readers):
        names[f"key{index}"], names[f"check{index}"] = key, check
        lines.append(f"    v{index} = get(key{index})")
        kind = _EXACT.get(annotation)
        if kind is not None:
            names[f"kind{index}"] = kind
            lines.append(f"    if type(v{index}) is not kind{index}:")
            widened = _WIDENED.get(annotation)
            taken = f"{widened}(v{index}) if type(v{index}) is int else " if widened else ""
            lines.append(f"        v{index} = {taken}check{index}(v{index})")
        else:
            lines.append(f"    v{index} = check{index}(v{index})")
    filled = ", ".join(f"{reader[0]!r}: v{index}" for index, reader in enumerate(readers))
    lines += ["    made = new(cls)", f"    made.__dict__.update({{{filled}}})", "    return made"]
    exec("\n".join(lines), names)  # noqa: S102 - names and keys are passed as values
    built: Build = names["build"]
    return built


def _plain_init(cls: type, filled: set[str]) -> bool:
    """Is `cls(**fields)` the same as setting `filled` in a new instance's __dict__?
    A dataclass whose generated __init__ takes exactly those fields, with no
    __post_init__, no slots and no __setattr__ of its own (frozen included)."""
    params = getattr(cls, "__dataclass_params__", None)
    init_fields = {f.name for f in dataclasses.fields(cls) if f.init}
    return (params is not None and params.init and not params.frozen
            and not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__")
            and vars(object)["__setattr__"] is getattr(cls, "__setattr__", None)
            and init_fields == filled
            and getattr(getattr(vars(cls).get("__init__"), "__code__", None), "co_filename",
                        "") == "<string>")


def _resolved_fields(cls: type) -> set[str]:
    definition = get_object_definition(cls, strict=True)
    return {f.python_name for f in definition.fields if f.base_resolver is not None}


def _checker(annotation: Any, service: str, key: str) -> Callable[[Any], Any]:
    """A function checking (and converting) one record value for `annotation`."""
    annotation, optional = _unwrap(annotation)

    def wrong() -> BackendBadResponse:
        return BackendBadResponse(service, f"sent a record whose '{key}' is missing or wrong")

    inner = scalar_check(annotation, wrong) or _structured(annotation, service, key, wrong)
    exact = _EXACT.get(annotation)
    if exact is not None:  # a scalar: its usual JSON type passes in one step
        def check_scalar(value: Any) -> Any:
            if type(value) is exact:
                return value
            if value is None:
                if optional:
                    return None
                raise wrong()
            return inner(value)
        return check_scalar

    def check(value: Any) -> Any:
        if value is None:
            if optional:
                return None
            raise wrong()
        return inner(value)

    return check


# the type a JSON value of each scalar annotation usually has, accepted as it is
_EXACT: dict[Any, type] = {strawberry.ID: str, str: str, int: int, float: float, bool: bool}
# an exact int (never a bool) is accepted for these, converted by this builtin
_WIDENERS: dict[Any, Any] = {strawberry.ID: str, float: float}
_WIDENED: dict[Any, str] = {kind: to.__name__ for kind, to in _WIDENERS.items()}  # in source


def _structured(annotation: Any, service: str, key: str,
                wrong: Callable[[], Exception]) -> Callable[[Any], Any]:
    """The check of a list, a nested Strawberry type, or (unchecked) anything else."""
    if typing.get_origin(annotation) is list:
        item = _checker(typing.get_args(annotation)[0], service, key)

        def each(v: Any) -> Any:
            if not isinstance(v, list):
                raise wrong()
            return [item(x) for x in v]
        return each
    if get_object_definition(annotation) is not None:
        nested = builder(annotation, service)

        def build(v: Any) -> Any:
            if not isinstance(v, dict):
                raise wrong()
            return nested(v)
        return build
    return lambda v: v  # a type Tessera does not check (an enum, a custom scalar)


def exact_type(kind: Any) -> type | None:
    """The type of the values a scalar's check passes as they are (`str` for an ID),
    None for a type that is not one of the checked scalars."""
    return _EXACT.get(kind)


def scalar_check(kind: Any, wrong: Callable[[], Exception]) -> Callable[[Any], Any] | None:
    """The check (and conversion) of one value for a scalar type: `ID` takes a string
    or a number (as a string), `float` an int too, `int` never a bool; None for a
    type that is not one of these."""
    if kind is strawberry.ID:
        def check_id(v: Any) -> Any:
            if type(v) is str:
                return v
            if isinstance(v, bool) or not isinstance(v, str | int):
                raise wrong()
            return str(v)  # strawberry.ID is str at run time
        return check_id
    if kind is float:
        def check_float(v: Any) -> Any:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise wrong()
            return float(v)
        return check_float
    if kind in (str, int, bool):
        def check(v: Any) -> Any:
            if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
                raise wrong()
            return v
        return check
    return None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without Private/Annotated/Optional, whether None is allowed)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            inner, _ = _unwrap(args[0])
            return inner, optional
    return annotation, False


def records_of(cls: type, service: str, values: Any) -> list[Any]:
    """A list of records as `cls` objects (in a `then=` that needs them typed)."""
    if not isinstance(values, list):
        raise BackendBadResponse(service, "answered with a body that is not a list")
    build = builder(cls, service)
    return [build(value) for value in values]
