"""graphql-core's executor with a short way through plain leaf fields.

    schema.execution_context_class = execution_class(schema)

Most fields of an answer are plain: a Strawberry field without a resolver whose
value is an attribute of its parent, of a scalar or enum type (`Product.name`,
`Order.total`). graphql-core runs every field through the same steps: a `Path`,
a `GraphQLResolveInfo` of fourteen parts, the argument check, the resolver
(Strawberry's attribute getter) and `complete_value`'s chain of type checks; for
100 products with three fields that was most of the request's CPU. Here a plain
leaf field is read and coerced directly: `getattr(parent, python_name)` then the
type's own `coerce_output_value`, exactly what that chain ends in.

Anything else takes graphql-core's own path, unchanged: fields with resolvers
or arguments, objects and lists, `__typename`, and, for a plain field, every
case where the short way could differ: an attribute that is missing or raises,
a value that is an exception, null for a non-null field, or a value the type
cannot coerce (graphql-core then reports the error at its path as it always
did). The short way is off altogether while a schema extension hooks
resolvers (middleware) or a custom default resolver is configured.
`tests/test_execution.py` compares both on generated queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.pyutils import Path
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from ..compose.fields import NOTHING, link_of

DEFINITION = "strawberry-definition"  # where Strawberry keeps a GraphQLField's own field

# reads a field of a parent: (parent, context) -> its coerced value, or _SLOW
Reader = Callable[[Any, Any], Any]


def readers(schema: GraphQLSchema) -> dict[str, dict[str, Reader]]:
    """Per object type name, the fields that can be read in place, by GraphQL name:
    plain leaf fields, and linked scalar fields (`Link.settled_reader`)."""
    found: dict[str, dict[str, Reader]] = {}
    for name, kind in schema.type_map.items():
        if not is_object_type(kind) or name.startswith("__"):
            continue
        assert isinstance(kind, GraphQLObjectType)
        fields: dict[str, Reader] = {}
        for field_name, field in kind.fields.items():
            definition = (field.extensions or {}).get(DEFINITION)
            inner = field.type.of_type if is_non_null_type(field.type) else field.type
            if definition is None or field.args or not is_leaf_type(inner):
                continue
            nullable = not is_non_null_type(field.type)
            if getattr(field.resolve, "_is_default", False):
                fields[field_name] = _plain(definition.python_name,
                                            inner.coerce_output_value, nullable)
                continue
            spec = link_of(definition)
            read = spec.settled_reader() if spec is not None else None
            if read is not None:
                fields[field_name] = _settled(read, inner.coerce_output_value, nullable)
        if fields:
            found[name] = fields
    return found


def execution_class(schema: Any) -> type[StrawberryGraphQLCoreExecutionContext]:
    """The execution context class for a built Strawberry schema."""
    found = readers(schema._schema) if schema.config.default_resolver is getattr else {}
    return type("TesseraExecution", (Execution,), {"readers": found})


class Execution(StrawberryGraphQLCoreExecutionContext):
    readers: ClassVar[dict[str, dict[str, Reader]]] = {}

    def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any,
                       path: Path | None, grouped_field_set: Any,
                       position_context: Any) -> Any:
        readers = self.readers.get(parent_type.name)
        middleware = self.middleware_manager
        if readers is None or (middleware is not None and middleware.middlewares):
            return super().execute_fields(parent_type, source_value, path,
                                          grouped_field_set, position_context)
        # graphql-core's execute_fields, with the readable fields read in place
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        context = self.context_value
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                read = readers.get(field_details_list[0].node.name.value)
                if read is not None:
                    value = read(source_value, context)
                    if value is not _SLOW:
                        results[response_name] = value
                        continue
                result = self.execute_field(parent_type, source_value, field_details_list,
                                            Path(path, response_name, parent_type.name),
                                            position_context)
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[f] for f in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _gather(results, awaitable_fields)


_SLOW: Any = object()


def _plain(attr: str, coerce: Callable[[Any], Any], nullable: bool) -> Reader:
    def read(source: Any, context: Any) -> Any:
        try:
            value = getattr(source, attr)
        except Exception:
            return _SLOW
        return _coerced(value, coerce, nullable)
    return read


def _settled(load: Reader, coerce: Callable[[Any], Any], nullable: bool) -> Reader:
    def read(source: Any, context: Any) -> Any:
        value = load(source, context)
        return _SLOW if value is NOTHING else _coerced(value, coerce, nullable)
    return read


def _coerced(value: Any, coerce: Callable[[Any], Any], nullable: bool) -> Any:
    """graphql-core's complete_value for a leaf, or _SLOW where it would not simply
    succeed (so that graphql-core itself reports the error)."""
    if value is None:
        return None if nullable else _SLOW
    if isinstance(value, Exception):
        return _SLOW
    try:
        coerced = coerce(value)
    except Exception:
        return _SLOW
    return _SLOW if coerced is None or coerced is Undefined else coerced


async def _gather(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results
