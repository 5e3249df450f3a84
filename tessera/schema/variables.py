"""A request's variables, taken as they are where graphql-core would keep them so.

    ready = prepared(schema, document, operation_name)   # once per document
    values = quick_variables(ready.variables, {"ids": ["1", "2"]})  # VariableValues | None

graphql-core coerces each variable value through `coerce_input_value`, item by
item, with a depth check first: for `products(ids: $ids)` with 100 ids that is
~8 Python calls per id, ~140 µs a request here (the query's whole CPU is ~1 ms),
before the first backend call leaves. For the usual variable shapes the
coercion changes nothing: a built-in scalar (`ID`, `String`, `Int`, `Float`,
`Boolean`), or a list of one, whose values are already of the exact Python type
that scalar gives back (a `str` for ID and String, a 32-bit `int`, a finite
`float`, a `bool`; `None` where the type allows it). Those are taken as they
are (a list copied, as graphql-core copies it), checked with C-level set and
min/max operations rather than a call per item.

Anything else answers None, and graphql-core coerces the whole request its own
way, reporting what is wrong as it always does: a variable missing or with a
default, a value to convert (`1` for an ID, `2.0` for an Int), a single value
for a list type, an input object, an enum, a custom scalar, a value that does
not fit. `tests/test_variables.py` compares the two on generated values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from math import isfinite
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
    VariableDefinitionNode,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource

__all__ = ["Prepared", "prepared", "quick_variables", "variables_of"]

GRAPHQL_MIN_INT, GRAPHQL_MAX_INT = -(2 ** 31), 2 ** 31 - 1
SLOW: Any = object()  # an acceptor's answer for a value graphql-core must coerce

# takes a value as graphql-core would coerce it, or answers SLOW
Acceptor = Callable[[Any], Any]
# a variable: its name, signature, acceptor (None: always graphql-core's way), and
# whether it may be left out (nullable, no default)
Variable = tuple[str, GraphQLVariableSignature, Acceptor | None, bool]


class Prepared(NamedTuple):
    """What executing `operation` of a document needs that the document alone decides."""

    operation: OperationDefinitionNode
    fragment_definitions: dict[str, FragmentDefinitionNode]
    fragments: dict[str, FragmentDetails]
    variables: tuple[Variable, ...]


def prepared(schema: GraphQLSchema, document: DocumentNode,
             operation_name: str | None) -> Prepared | None:
    """The operation graphql-core's `Executor.build` would pick, its fragments and
    variables; None where build would answer errors (no operation or several
    without a name, a variable of a type that is not an input) or fragments take
    variables (build's own way handles those)."""
    operation: OperationDefinitionNode | None = None
    fragment_definitions: dict[str, FragmentDefinitionNode] = {}
    fragments: dict[str, FragmentDetails] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if operation_name is None:
                if operation is not None:
                    return None
                operation = definition
            elif definition.name and definition.name.value == operation_name:
                operation = definition
        elif isinstance(definition, FragmentDefinitionNode):
            if definition.variable_definitions:
                return None
            fragment_definitions[definition.name.value] = definition
            fragments[definition.name.value] = FragmentDetails(definition)
    if operation is None:
        return None
    variables = variables_of(schema, operation.variable_definitions or ())
    if variables is None:
        return None
    return Prepared(operation, fragment_definitions, fragments, variables)


def variables_of(schema: GraphQLSchema, definitions: Iterable[VariableDefinitionNode]
                 ) -> tuple[Variable, ...] | None:
    """These variable definitions, for `quick_variables`; None where one is not of an
    input type (graphql-core reports it)."""
    variables: list[Variable] = []
    for node in definitions:
        signature = get_variable_signature(schema, node)
        if isinstance(signature, GraphQLError):
            return None
        optional = signature.default is None and not is_non_null_type(signature.type)
        variables.append((signature.name, signature, _acceptor(signature.type), optional))
    return tuple(variables)


def quick_variables(variables: Sequence[Variable], inputs: dict[str, Any]
                    ) -> VariableValues | None:
    """graphql-core's coerced variables, where every value is taken as it is;
    else None."""
    sources: dict[str, VariableValueSource] = {}
    coerced: dict[str, Any] = {}
    for name, signature, accept, optional in variables:
        value = inputs.get(name, Undefined)
        if value is Undefined:
            if not optional:
                return None  # a default to fill in, or a missing non-null value
            sources[name] = VariableValueSource(signature)
            continue
        if accept is None:
            return None
        taken = accept(value)
        if taken is SLOW:
            return None
        sources[name] = VariableValueSource(signature, value)
        coerced[name] = taken
    return VariableValues(sources, coerced)


def _strings(values: Sequence[Any]) -> bool:
    return {*map(type, values)} <= {str}


def _booleans(values: Sequence[Any]) -> bool:
    return {*map(type, values)} <= {bool}


def _ints(values: Sequence[Any]) -> bool:
    return {*map(type, values)} <= {int} and (
        not values or (min(values) >= GRAPHQL_MIN_INT and max(values) <= GRAPHQL_MAX_INT))


def _floats(values: Sequence[Any]) -> bool:
    return {*map(type, values)} <= {float} and all(map(isfinite, values))


# a built-in scalar -> whether values are all of the exact type it gives back unchanged
_UNCHANGED: dict[Any, Callable[[Sequence[Any]], bool]] = {
    GraphQLID: _strings, GraphQLString: _strings, GraphQLBoolean: _booleans,
    GraphQLInt: _ints, GraphQLFloat: _floats}


def _acceptor(kind: Any) -> Acceptor | None:
    """How a value of this input type is taken as it is (None: never)."""
    nullable = not is_non_null_type(kind)
    inner = kind if nullable else kind.of_type
    if is_list_type(inner):
        item = inner.of_type
        items_nullable = not is_non_null_type(item)
        unchanged = _UNCHANGED.get(item if items_nullable else item.of_type)
        if unchanged is None:
            return None

        def accept_list(value: Any) -> Any:
            if value is None:
                return None if nullable else SLOW
            if type(value) is not list:
                return SLOW  # (a single value: graphql-core makes it a list of one)
            present = [v for v in value if v is not None] if items_nullable else value
            return list(value) if unchanged(present) else SLOW
        return accept_list
    found = _UNCHANGED.get(inner)
    if found is None:
        return None
    unchanged_one = found

    def accept(value: Any) -> Any:
        if value is None:
            return None if nullable else SLOW
        return value if unchanged_one((value,)) else SLOW
    return accept
