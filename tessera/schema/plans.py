"""A plan of fields read in place, compiled to one Python function per selection.

    compiled = compile_plan((False, (("id", read_id, None), ("title", read_title, None))))
    compiled.rows(posts, context, is_awaitable)  # [{"id": ..., "title": ...}, ...] or None
    compiled.row(post, context, is_awaitable)  # {"id": ..., "title": ...} or None

`tessera.schema.execution` answers an object, or a list of objects, whose
selected fields are all read in place from a plan: per field a reader, and per
object or list field the plan of what is selected below it. Walking that plan
per value (a loop over its entries, a call per reader, a tuple unpacked per
field) cost about as much again as the reading itself: on the blog's N+1 query
(100 posts, each with its author) it was most of the work after the last
backend answer, on the request's critical path. So each plan is turned, once
per document, into the source of one function, with a plain field's read
written out in place (`source.name`; the value as it is when the scalar would
give it back unchanged: a string for String and ID, a bool, an int in 32 bits,
a finite float; else the scalar's coercion) and an object below read into its
dict in the same function; a list of objects below gets a function of its own.
What is not a plain field (a linked field, a record's own object) is still its
reader's call.

Each function answers as graphql-core's completion would, or `None` (the whole
value then goes graphql-core's way, which reports what is wrong at its path)
wherever a value is not simply read: a reader that fails or returns `SLOW`,
null for a non-null field or item, an exception or awaitable as a value, a list
that is not a list, a load not finished (`NOTHING`). An object is known to be
neither an exception nor awaitable by its type once graphql-core's own checks
passed for a value of that type and the type alone decides them (`_ordinary`).
`tests/test_execution.py` compares the answers with graphql-core's.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLBoolean, GraphQLFloat, GraphQLID, GraphQLInt, GraphQLString, Undefined

from ..compose.fields import NOTHING

# reads a field of a parent: (parent, context) -> its coerced value, or SLOW
Reader = Callable[[Any, Any], Any]
IsAwaitable = Callable[[Any], bool]

SLOW: Any = object()  # a reader's answer for a value graphql-core must complete

# A plan for objects of one selection: (nullable, entries); an entry is (response
# name, reader, None) for a leaf, or (response name, the Settled field's read,
# Below) for an object or a list of objects read in place.
Entry = tuple[str, Reader, "Below | None"]
Plan = tuple[bool, tuple[Entry, ...]]
# how a Settled field's value is completed: (nullable, is a list, the plan of its
# objects (or of the list's items))
Below = tuple[bool, bool, Plan]


@dataclass(frozen=True)
class Leaf:
    """What a leaf field's reader does, for a compiled plan to do in place: take the
    value from `source` (a plain field's attribute name, or a linked scalar's read
    of its finished load, NOTHING when there is none); a value meeting `as_is` (a
    condition on `{v}`) is the answer as it is, anything else goes through `coerce`
    (see `coerced`)."""

    source: str | Reader
    as_is: str | None
    coerce: Callable[[Any], Any]
    nullable: bool


@dataclass(frozen=True)
class Constant:
    value: Any


class Compiled:
    """A plan's functions: `row(source, context, is_awaitable)` answers one object,
    `rows(items, context, is_awaitable)` a list of them; each None where the value
    must go graphql-core's way. Each is generated at its first call (a selection is
    answered as one object or as a list, rarely both)."""

    __slots__ = ("plan", "_row", "_rows")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._row: Callable[[Any, Any, IsAwaitable], dict[str, Any] | None] | None = None
        self._rows: Callable[[list[Any], Any, IsAwaitable], list[Any] | None] | None = None

    def row(self, source: Any, context: Any, is_awaitable: IsAwaitable) -> dict[str, Any] | None:
        if self._row is None:
            self._row = generated(self.plan, many=False)
        return self._row(source, context, is_awaitable)

    def rows(self, items: list[Any], context: Any, is_awaitable: IsAwaitable
             ) -> list[Any] | None:
        if self._rows is None:
            self._rows = generated(self.plan, many=True)
        return self._rows(items, context, is_awaitable)


def plain(attr: str, kind: Any, nullable: bool) -> Reader:
    """The reader of a plain leaf field (no resolver), as graphql-core completes it:
    `getattr(parent, attr)`, then the scalar's coercion unless the value is of the
    type the scalar gives back unchanged."""
    coerce = kind.coerce_output_value
    same = next((as_is for scalar, as_is, _ in _AS_IS if scalar is kind), None)

    def read(source: Any, context: Any) -> Any:
        try:
            value = getattr(source, attr)
        except Exception:
            return SLOW
        if type(value) is same:
            return value
        return coerced(value, coerce, nullable)
    read.inline = _leaf(attr, kind, nullable)  # type: ignore[attr-defined]
    return read


def loaded(load: Reader, kind: Any, nullable: bool) -> Reader:
    """The reader of a linked field of a scalar type keyed by its parent: the value
    of its finished load (`Link.settled_reader`) as a plain field's, or SLOW when
    the load has not simply finished."""
    coerce = kind.coerce_output_value

    def read(source: Any, context: Any) -> Any:
        value = load(source, context)
        return SLOW if value is NOTHING else coerced(value, coerce, nullable)
    read.inline = _leaf(load, kind, nullable)  # type: ignore[attr-defined]
    return read


def _leaf(source: str | Reader, kind: Any, nullable: bool) -> Leaf:
    condition = next((test for scalar, _, test in _AS_IS if scalar is kind), None)
    return Leaf(source, condition, kind.coerce_output_value, nullable)


# The built-in scalars; the type of the values each gives back as they are (for a
# reader: strings and booleans), and the condition under which it does (for a
# compiled plan: also an int in 32 bits, a finite float; graphql-core's
# serialize_int and serialize_float answer those unchanged).
_AS_IS: tuple[tuple[Any, type | None, str], ...] = (
    (GraphQLString, str, "type({v}) is str"), (GraphQLID, str, "type({v}) is str"),
    (GraphQLBoolean, bool, "type({v}) is bool"),
    (GraphQLInt, None, "type({v}) is int and -2147483648 <= {v} <= 2147483647"),
    (GraphQLFloat, None, "type({v}) is float and -INF < {v} < INF"))


def constant(value: Any) -> Reader:
    def read(source: Any, context: Any) -> Any:
        return value
    read.inline = Constant(value)  # type: ignore[attr-defined]
    return read


def coerced(value: Any, coerce: Callable[[Any], Any], nullable: bool) -> Any:
    """graphql-core's complete_value for a leaf, or SLOW where it would not simply
    succeed (so that graphql-core itself reports the error)."""
    if value is None:
        return None if nullable else SLOW
    if isinstance(value, Exception):
        return SLOW
    try:
        out = coerce(value)
    except Exception:
        return SLOW
    return SLOW if out is None or out is Undefined else out


# Types whose values were found neither exceptions nor awaitable, where the type
# alone decides it (see _ordinary); bounded, as types can be made at run time.
ORDINARY: set[type] = {list, dict, str, int, float, bool}
MAX_ORDINARY = 1000


def odd(value: Any, is_awaitable: IsAwaitable) -> bool:
    """Is this object value an exception or awaitable (graphql-core's checks)? A type
    that passes them is remembered in ORDINARY when the type alone decides."""
    if isinstance(value, Exception) or is_awaitable(value):
        return True
    kind = type(value)
    if len(ORDINARY) < MAX_ORDINARY and _ordinary(kind):
        ORDINARY.add(kind)
    return False


def _ordinary(kind: type) -> bool:
    """Does the type decide graphql-core's checks for all its values? Not when its
    attribute lookup is its own (`__getattr__`, `__getattribute__`, a `__class__`
    of its own): then `hasattr(value, "__await__")` or `isinstance` may answer per
    value. (An attribute named `__await__` set on one instance is not looked for:
    Python's `await` does not look there either.)"""
    return (not issubclass(kind, BaseException) and not hasattr(kind, "__await__")
            and not hasattr(kind, "__getattr__")
            and kind.__getattribute__ is object.__getattribute__
            and all("__class__" not in vars(base) for base in kind.__mro__[:-1]))


# A plan reading more fields than this (nested objects counted each time they are
# written out) is not compiled: its values go graphql-core's way. Generating costs
# about as much per field as parsing and validating its document did, once per
# document; this bounds it for documents whose fragments multiply their fields.
MAX_FIELDS = 512


def compile_plan(plan: Plan) -> Compiled | None:
    """The plan, to be answered by generated functions (see the module's notes); None
    for a plan over MAX_FIELDS."""
    return Compiled(plan) if _size(plan) <= MAX_FIELDS else None


def _size(plan: Plan) -> int:
    return sum(1 if below is None else 1 + _size(below[2]) for _, _, below in plan[1])


def generated(plan: Plan, *, many: bool) -> Callable[..., Any]:
    """The source of the plan's row (or rows) function, compiled."""
    writer = _Writer()
    writer.function("answer", plan, many=many)
    source = "\n".join(writer.lines) + "\n"
    names: dict[str, Any] = dict(writer.constants)
    exec(compile(source, "<tessera plan>", "exec"), names)  # noqa: S102 - our own source
    answer: Callable[..., Any] = names["answer"]
    return answer


def _load_of(read: Reader, below: Below | None) -> Reader | None:
    """The settled reader behind an entry: the read of an object below, or the load
    a linked scalar leaf reads its value from; None for a field read in place."""
    if below is not None:
        return read
    inline = getattr(read, "inline", None)
    return inline.source if isinstance(inline, Leaf) and not isinstance(inline.source, str) \
        else None


class _Writer:
    """Writes the source of a plan's functions; every value the code uses (readers,
    coercions, response names) is a named constant of the module it runs in."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {"SLOW": SLOW, "NOTHING": NOTHING,
                                          "ORDINARY": ORDINARY, "odd": odd,
                                          "coerced": coerced, "INF": math.inf}
        self._counter = 0
        self._lists: dict[int, str] = {}  # id(plan) -> the name of its rows function

    def name(self, prefix: str, value: Any) -> str:
        self._counter += 1
        named = f"{prefix}{self._counter}"
        self.constants[named] = value
        return named

    def function(self, name: str, plan: Plan, *, many: bool) -> None:
        nullable, entries = plan
        columns = self._columns(entries) if many else {}
        row_lines, result = self._row(entries, "s0", depth=0, given=columns)
        if many:
            null_item = ["append(None)", "continue"] if nullable else ["return None"]
            values = "".join(f", v0_{index}" for index in columns)  # as _row names them
            lists = "".join(f", k{index}" for index in columns)
            loop = f"for s0{values} in zip(items{lists}):" if columns else "for s0 in items:"
            body = [*self._column_lines(columns), "out = []", "append = out.append",
                    loop,
                    "    if s0 is None:", *("        " + line for line in null_item),
                    "    if type(s0) not in ORDINARY and odd(s0, is_awaitable):",
                    "        return None",
                    *("    " + line for line in row_lines),
                    f"    append({result})", "return out"]
            self.lines.append(f"def {name}(items, context, is_awaitable):")
        else:
            body = [*row_lines, f"return {result}"]
            self.lines.append(f"def {name}(s0, context, is_awaitable):")
        self.lines += ["    " + line for line in body]

    @staticmethod
    def _columns(entries: tuple[Entry, ...]) -> dict[int, Reader]:
        """The entries of a list's items read for the whole list at once: linked
        fields whose settled reader has a `column` (that reader, by entry index)."""
        loads = {index: _load_of(read, below) for index, (_, read, below) in enumerate(entries)}
        return {index: load for index, load in loads.items()
                if load is not None and hasattr(load, "column")}

    def _column_lines(self, columns: dict[int, Reader]) -> list[str]:
        """Lines reading each column (`k<index>`: a value per item), item by item
        where the column cannot be read at once."""
        lines: list[str] = []
        for index, load in columns.items():
            column = self.name("K", load.column)  # type: ignore[attr-defined]
            lines += [f"k{index} = {column}(items, context)", f"if k{index} is None:",
                      f"    k{index} = [{self.name('R', load)}(s, context) for s in items]"]
        return lines

    def _row(self, entries: tuple[Entry, ...], source: str, depth: int,
             given: dict[int, Reader] | None = None) -> tuple[list[str], str]:
        """Lines reading one object's fields from `source` into a dict; the dict's
        expression. The entries in `given` have been read already (columns)."""
        lines: list[str] = []
        parts: list[str] = []
        for index, (response_name, read, below) in enumerate(entries):
            value = f"v{depth}_{index}"
            read_already = given is not None and index in given
            parts.append(f"{response_name!r}: {value}")  # a GraphQL name: [_A-Za-z0-9]
            inline = getattr(read, "inline", None)
            if below is None and isinstance(inline, Constant):
                lines.append(f"{value} = {self.name('C', inline.value)}")
            elif below is None and isinstance(inline, Leaf):
                lines += self._leaf(inline, source, value, read_already)
            elif below is None:
                lines += [f"{value} = {self.name('R', read)}({source}, context)",
                          f"if {value} is SLOW:", "    return None"]
            else:
                lines += self._below(read, below, source, value, depth, read_already)
        return lines, "{" + ", ".join(parts) + "}"

    def _leaf(self, leaf: Leaf, source: str, value: str, read_already: bool) -> list[str]:
        """Lines taking a leaf's value from `source` (or as read already), left as
        it is where the scalar would leave it, else coerced."""
        attr = leaf.source
        if isinstance(attr, str):
            access = (f"{source}.{attr}" if attr.isidentifier()
                      and not keyword.iskeyword(attr) and not attr.startswith("__") else
                      f"getattr({source}, {self.name('A', attr)})")
            lines = ["try:", f"    {value} = {access}", "except Exception:", "    return None"]
        else:
            lines = [] if read_already else [f"{value} = {self.name('L', attr)}({source}, context)"]
            lines += [f"if {value} is NOTHING:", "    return None"]
        coerce = [f"{value} = coerced({value}, {self.name('F', leaf.coerce)}, "
                  f"{leaf.nullable})", f"if {value} is SLOW:", "    return None"]
        if leaf.as_is is None:
            return lines + coerce
        return lines + [f"if not ({leaf.as_is.format(v=value)}):",
                        *("    " + line for line in coerce)]

    def _below(self, read: Reader, below: Below, source: str, value: str,
               depth: int, read_already: bool) -> list[str]:
        nullable, many, plan = below
        lines = [] if read_already else [f"{value} = {self.name('R', read)}({source}, context)"]
        lines += [f"if {value} is None:",
                 "    pass" if nullable else "    return None",
                 f"elif {value} is NOTHING or (type({value}) not in ORDINARY "
                 f"and odd({value}, is_awaitable)):",
                 "    return None"]
        if many:
            rows = self._lists.get(id(plan), "")
            if not rows:
                self._counter += 1
                rows = self._lists[id(plan)] = f"rows{self._counter}"
                self.function(rows, plan, many=True)
            lines += [f"elif type({value}) is not list:", "    return None", "else:",
                      f"    {value} = {rows}({value}, context, is_awaitable)",
                      f"    if {value} is None:", "        return None"]
        else:
            inner = f"s{depth + 1}"
            row_lines, result = self._row(plan[1], inner, depth + 1)
            lines += ["else:", f"    {inner} = {value}"]
            lines += ["    " + line for line in row_lines]
            lines.append(f"    {value} = {result}")
        return lines
