"""graphql-core's executor with a short way through fields that need no resolver.

    schema.execution_context_class = execution_class(schema)

graphql-core runs every field through the same steps: a `Path`, a
`GraphQLResolveInfo` of fourteen parts, the argument check, the resolver
(Strawberry's wrapper: an `Info`, argument conversion, field extensions, then
the function) and `complete_value`'s chain of type checks. Most fields of a
gateway's answer need none of it:

- a plain leaf field (no resolver, a scalar or enum: `Product.name`) is
  `getattr(parent, python_name)` then the type's own `coerce_output_value`,
  exactly what that chain ends in;
- a linked field keyed by its parent (`Item.product`, `Product.stock`) whose load
  already finished (prefetched with the parent, `compose.lookahead`) is that
  load's value through `Link.finish`: inline for a scalar, handed to
  graphql-core's `complete_value` for an object or list, when nothing selected
  below it would be prefetched by its resolver;
- an object or list field the record holds itself (no resolver: `Order.items`)
  is `getattr(parent, python_name)`, completed the same way.

An object, or a list of objects, whose selected fields are all read in place,
down any depth (`products(ids:) { name price stock }`, `posts { id title user {
name } }`, an order with its user and items once their loads settled), is
answered from a plan made once per selection and compiled to one function
(`tessera.schema.plans`): per object one dict, a plain field read in place,
without graphql-core's per-item `Path`, `complete_value` chain and
`execute_fields`. It is all or nothing: if any value would not simply be
read, the whole object or list is completed graphql-core's way (readers have no
side effects).

Which fields each object of a selection executes (graphql-core's
`collect_subfields`, per request) depends only on the document, unless it has
directives (`@skip`/`@include` read the variables, `@defer` makes delivery
groups) or fragment arguments: for a document without them it is collected once
and kept with the document (`collected`, bounded like the parse cache), not once
per request.

Anything else takes graphql-core's own path, unchanged: fields with arguments,
`__typename` outside a plan, loads not finished, failed or stale, and every
value where the short way could differ (an attribute that is missing or
raises, an exception as a value, null for a non-null field, a value the type
cannot coerce, a record `finish` refuses): graphql-core (and the resolver)
then report it at its path as they always did. The short way is off
altogether while a schema extension hooks resolvers (middleware) or a custom
default resolver is configured.
`tests/test_execution.py` runs queries both ways and compares the answers.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import strawberry
from graphql import (
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    Undefined,
    assert_valid_schema,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    visit,
)
from graphql.execution import Executor, default_field_resolver, default_type_resolver
from graphql.execution.collect_fields import CollectedFields, collect_subfields
from graphql.language import BREAK, Visitor
from graphql.pyutils import Path
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import StrawberryList, StrawberryOptional

from ..compose.fields import NOTHING, link_of
from ..compose.lookahead import needs_prefetch
from ..lru import LRU
from .plans import (
    SLOW,
    Below,
    Compiled,
    Entry,
    Plan,
    Reader,
    compile_plan,
    constant,
    loaded,
    plain,
)
from .variables import Prepared, prepared, quick_variables

DEFINITION = "strawberry-definition"  # where Strawberry keeps a GraphQLField's own field
KEPT_OPERATIONS = 1000  # operations whose collected fields are kept (the parse cache's size)


@dataclass(frozen=True)
class Settled:
    """A linked field of object or list type, read from its finished load; then
    completed by graphql-core (when nothing below it needs prefetching)."""

    read: Reader
    field: GraphQLField
    target: type | None  # the Strawberry object type it holds, if any
    # the GraphQL object type of a field holding one object that needs no
    # is_type_of check: its value's subfields are executed directly
    direct: GraphQLObjectType | None = None


def readers(schema: GraphQLSchema) -> dict[str, dict[str, Reader | Settled]]:
    """Per object type name, the fields that can be read in place, by GraphQL name:
    plain leaf fields, linked fields keyed by their parent (`Link.settled_reader`:
    scalars inline, objects and lists as `Settled`), and a record's own objects
    and lists (as `Settled`)."""
    found: dict[str, dict[str, Reader | Settled]] = {}
    for name, kind in schema.type_map.items():
        if not is_object_type(kind) or name.startswith("__"):
            continue
        assert isinstance(kind, GraphQLObjectType)
        fields: dict[str, Reader | Settled] = {}
        for field_name, field in kind.fields.items():
            definition = (field.extensions or {}).get(DEFINITION)
            if definition is None or field.args:
                continue
            inner = field.type.of_type if is_non_null_type(field.type) else field.type
            nullable = not is_non_null_type(field.type)
            spec = link_of(definition)
            read = spec.settled_reader() if spec is not None else None
            if is_leaf_type(inner):
                if getattr(field.resolve, "_is_default", False):
                    fields[field_name] = plain(definition.python_name, inner, nullable)
                elif read is not None:
                    fields[field_name] = loaded(read, inner, nullable)
            else:
                direct = inner if is_object_type(inner) and inner.is_type_of is None else None
                if read is not None and spec is not None:
                    fields[field_name] = Settled(read, field, spec.target, direct)
                elif getattr(field.resolve, "_is_default", False):  # a record's own data
                    fields[field_name] = Settled(_attribute(definition.python_name), field,
                                                 None, direct)
        if fields:
            found[name] = fields
    return found


def execution_class(schema: Any) -> type[StrawberryGraphQLCoreExecutionContext]:
    """The execution context class for a built Strawberry schema (whose linked
    fields' resolvers it makes lean first: see `lean_links`)."""
    lean_links(schema)
    found = readers(schema._schema) if schema.config.default_resolver is getattr else {}
    return type("TesseraExecution", (Execution,),
                {"readers": found, "collected": LRU(KEPT_OPERATIONS),
                 "documents": LRU(KEPT_OPERATIONS)})


_PLAIN_ARGS = (strawberry.ID, str, int, float, bool)


def lean_links(schema: Any) -> int:
    """Give each linked field whose Strawberry wrapper would do nothing but call it
    a resolver that calls it directly: the same function with the same Info and
    the same keyword arguments, without the wrapper's layers (argument
    conversion, the field-extension chain, exception handlers) that have nothing
    to do for it. Eligible: a link field with no field extension (permissions are
    one), no exception handler, and only arguments of the built-in scalars or
    lists of them (which Strawberry passes on as they are; lists are copied, as
    it does). Returns how many were made lean."""
    converter = getattr(schema, "schema_converter", None)
    handlers = getattr(converter, "_get_field_exception_handlers", None)
    if handlers is None:
        return 0
    lean = 0
    for kind in schema._schema.type_map.values():
        if not is_object_type(kind):
            continue
        for field in kind.fields.values():
            definition: Any = (field.extensions or {}).get(DEFINITION)
            if definition is None or link_of(definition) is None or definition.extensions \
                    or handlers(definition) or definition.base_resolver is None:
                continue
            names = _plain_arguments(schema, definition)
            if names is not None and field.resolve is not None:
                lean_resolve = _lean(definition, names, schema.config.info_class)
                lean_resolve.strawberry = field.resolve  # type: ignore[attr-defined]
                field.resolve = lean_resolve  # (the wrapper kept: tests compare both)
                lean += 1
    return lean


def _plain_arguments(schema: Any, definition: Any) -> dict[str, tuple[str, bool]] | None:
    """GraphQL argument name -> (Python name, is a list), or None if any argument is
    not a built-in scalar or a list of one."""
    names: dict[str, tuple[str, bool]] = {}
    for argument in definition.arguments:
        kind, many = _unwrapped(argument.type), False
        if isinstance(kind, StrawberryList):
            kind, many = _unwrapped(kind.of_type), True
        if kind not in _PLAIN_ARGS:
            return None
        names[schema.config.name_converter.from_argument(argument)] = \
            (argument.python_name, many)
    return names


def _unwrapped(kind: Any) -> Any:
    return kind.of_type if isinstance(kind, StrawberryOptional) else kind


def _lean(definition: Any, names: dict[str, tuple[str, bool]],
          info_class: Any) -> Callable[..., Any]:
    function = definition.base_resolver.wrapped_func

    def resolve(source: Any, info: Any, **kwargs: Any) -> Any:
        arguments = {}
        for name, value in kwargs.items():
            python_name, many = names[name]
            arguments[python_name] = list(value) if many and value is not None else value
        return function(source, info_class(_raw_info=info, _field=definition), **arguments)
    return resolve


def _weak_helpers(executor: Executor[Any]) -> GraphQLResolveInfoHelpers:
    """graphql-core's helpers for resolvers (`info.async_helpers`), reaching the
    executor weakly. Its own hold the executor's bound methods, and the executor
    holds them: a reference cycle that keeps a whole request (its context,
    loaders, records and answer) alive until the cyclic garbage collector runs,
    and that collector's passes were a fifth of the gateway's CPU under load."""
    this = weakref.ref(executor)

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        live = this()
        assert live is not None  # alive while its resolvers run
        return live.gather_async_work(values)

    def track(values: Sequence[Any]) -> None:
        live = this()
        assert live is not None
        live.track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)


def _kept(store: LRU[Any, tuple[Any, Any]], key: Any, owner: Any,
          make: Callable[[], Any]) -> Any:
    """What `store` keeps for `owner` under `key` (an id: checked to be still this
    owner's, as an id the LRU forgot can be reused), made by `make` at its first use."""
    kept = store.get(key)
    if kept is None or kept[0] is not owner:
        kept = (owner, make())
        store.put(key, kept)
    return kept[1]


class Execution(StrawberryGraphQLCoreExecutionContext):
    readers: ClassVar[dict[str, dict[str, Reader | Settled]]] = {}
    # id(operation) -> (the operation, (its fragments, what it keeps per selection by
    # ("fields" or "plan", type, ids of the field nodes), or None when collecting
    # depends on the request))
    collected: ClassVar[LRU[int, tuple[Any, Any]]] = LRU(KEPT_OPERATIONS)
    # (id(document), operation name) -> (the document, what executing it needs that
    # the document alone decides: `variables.prepared`)
    documents: ClassVar[LRU[tuple[int, str | None], tuple[Any, Any]]] = LRU(KEPT_OPERATIONS)

    @classmethod
    def build(cls, schema: GraphQLSchema, document: DocumentNode, root_value: Any = None,
              context_value: Any = None, raw_variable_values: dict[str, Any] | None = None,
              operation_name: str | None = None, field_resolver: Any = None,
              type_resolver: Any = None, subscribe_field_resolver: Any = None,
              max_coercion_errors: int = 50, enable_early_execution: bool = False,
              middleware: Any = None, is_awaitable: Any = None, is_async_iterable: Any = None,
              hide_suggestions: bool = False, abort_signal: Any = None, hooks: Any = None,
              **kwargs: Any) -> list[GraphQLError] | Executor[Any]:
        """graphql-core's, with what the document alone decides (its operation and
        fragments) found once per document, and the variables taken as they are
        where coercing would not change them (`variables.quick_variables`). Else,
        and with middleware, graphql-core's own build, errors and all."""
        ready: Prepared | None = None if middleware is not None else _kept(
            cls.documents, (id(document), operation_name), document,
            lambda: prepared(schema, document, operation_name))
        values = None if ready is None else \
            quick_variables(ready.variables, raw_variable_values or {})
        if ready is None or values is None:
            return super().build(
                schema, document, root_value, context_value, raw_variable_values,
                operation_name, field_resolver, type_resolver, subscribe_field_resolver,
                max_coercion_errors, enable_early_execution, middleware, is_awaitable,
                is_async_iterable, hide_suggestions=hide_suggestions, abort_signal=abort_signal,
                hooks=hooks, **kwargs)
        assert_valid_schema(schema)
        return cls(schema, ready.fragment_definitions, ready.fragments, root_value,
                   context_value, ready.operation, values,
                   field_resolver or default_field_resolver,
                   type_resolver or default_type_resolver,
                   subscribe_field_resolver or default_field_resolver,
                   enable_early_execution, None, is_awaitable, is_async_iterable,
                   hide_suggestions=hide_suggestions, abort_signal=abort_signal, hooks=hooks,
                   **kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept = self._kept_collections()
        # per request, by (what, type, id of the field list): (the list, what is kept)
        self._memo: dict[tuple[str, Any, int], tuple[Any, Any]] = {}
        self.async_helpers = _weak_helpers(self)
        # per selection of a Settled field: (the selection, whether it needs a prefetch)
        self._below: dict[int, tuple[Any, bool]] = {}
        # the request's batcher, told of each object executed (see loaders.batching)
        loaders = getattr(self.context_value, "loaders", None)
        batcher = getattr(loaders, "batcher", None)
        self._worked: Callable[[], None] | None = batcher.worked if batcher else None

    def _kept_collections(self) -> dict[Any, Any] | None:
        """This operation's store of collected subfields, made at its first run;
        None when collecting depends on the request (see the module's notes)."""
        operation, fragments = self.operation, self.fragment_definitions
        # (the fragments are kept alive with it: the store is keyed by their nodes' ids)
        found: tuple[Any, dict[Any, Any] | None] = _kept(
            self.collected, id(operation), operation,
            lambda: (fragments, {} if fixed_selections(operation, fragments) else None))
        return found[1]

    def collect_subfields(self, return_type: GraphQLObjectType,
                          field_details_list: Any) -> CollectedFields:
        """graphql-core's, taken from the operation's store when its selections do
        not depend on the request."""
        if self._kept is None:
            return super().collect_subfields(return_type, field_details_list)
        collected: CollectedFields = self._kept_for(
            "fields", return_type, field_details_list,
            lambda: collect_subfields(self.schema, self.fragments, self.variable_values,
                                      self.operation, return_type, field_details_list,
                                      self.hide_suggestions))
        return collected

    def _kept_for(self, what: str, kind: Any, field_details_list: Any,
                  make: Callable[[], Any]) -> Any:
        """What this operation keeps for `kind` selected by these fields (its
        collected fields, its plan): looked up once per request by the list's
        identity (as graphql-core memoizes collected fields), then in the store by
        the field nodes' ids, made by `make` at the document's first run."""
        assert self._kept is not None
        key = (what, kind, id(field_details_list))
        found = self._memo.get(key)
        if found is not None:
            return found[1]
        nodes = (what, kind, tuple([id(details.node) for details in field_details_list]))
        value = self._kept.get(nodes, SLOW)
        if value is SLOW:
            value = self._kept[nodes] = make()
        self._memo[key] = (field_details_list, value)  # (the list kept: its id stays its)
        return value

    def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any,
                       path: Path | None, grouped_field_set: Any,
                       position_context: Any) -> Any:
        if self._worked is not None:
            self._worked()
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
                if read is None:
                    result = self.execute_field(parent_type, source_value, field_details_list,
                                                Path(path, response_name, parent_type.name),
                                                position_context)
                elif isinstance(read, Settled):
                    value = (read.read(source_value, context)
                             if not self._needs_prefetch(read, field_details_list)
                             else NOTHING)
                    field_path = Path(path, response_name, parent_type.name)
                    result = (self.execute_field(parent_type, source_value, field_details_list,
                                                 field_path, position_context)
                              if value is NOTHING else
                              self._complete(read, parent_type, field_details_list,
                                             field_path, value, position_context))
                else:
                    result = read(source_value, context)
                    if result is not SLOW:  # a leaf's value: never awaitable
                        results[response_name] = result
                        continue
                    result = self.execute_field(
                        parent_type, source_value, field_details_list,
                        Path(path, response_name, parent_type.name), position_context)
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

    def complete_list_item_value(self, item: Any, complete_results: list[Any],
                                 item_type: Any, field_details_list: Any, info: Any,
                                 item_path: Path, position_context: Any) -> bool:
        """graphql-core's, with an object item of a type read here executed directly
        (complete_value's chain of type checks ends there for an object); anything
        else, or an item that is not of its type, goes graphql-core's way."""
        kind = item_type.of_type if is_non_null_type(item_type) else item_type
        if (item is None or not is_object_type(kind) or kind.name not in self.readers
                or isinstance(item, Exception) or self.is_awaitable(item)
                or (kind.is_type_of is not None and kind.is_type_of(item, info) is not True)):
            return super().complete_list_item_value(item, complete_results, item_type,
                                                    field_details_list, info, item_path,
                                                    position_context)
        try:
            completed = self.collect_and_execute_subfields(kind, field_details_list,
                                                           item_path, item, position_context)
        except Exception as raw_error:
            self.handle_field_error(raw_error, item_type, field_details_list, item_path)
            complete_results.append(None)
            return False
        if self.is_awaitable(completed):
            complete_results.append(self._await_completed(completed, item_type,
                                                          field_details_list, item_path))
            return True
        complete_results.append(completed)
        return False

    def complete_iterable_value(self, item_type: Any, field_details_list: Any, info: Any,
                                path: Path, items: Any, position_context: Any) -> Any:
        """A list of objects whose selected fields are all read in place (leaves,
        settled links and a record's own objects, down any depth) is answered row
        by row from a plan made once per selection, without graphql-core's per item
        and per field steps; if any value of the list would not simply be read
        (see `plans`), the whole list takes graphql-core's way instead (reading is
        side-effect free: nothing is reported twice)."""
        plan = self._kept_plan(item_type, field_details_list)
        if plan is not None and type(items) is list:
            rows = plan.rows(items, self.context_value, self.is_awaitable)
            if rows is not None:
                if self._worked is not None:
                    self._worked()
                return rows
        return super().complete_iterable_value(item_type, field_details_list, info, path,
                                               items, position_context)

    def collect_and_execute_subfields(self, return_type: GraphQLObjectType,
                                      field_details_list: Any, path: Path, result: Any,
                                      position_context: Any) -> Any:
        """One object whose selected fields are all read in place is answered by its
        plan too (an order with its user and items, once their loads settled);
        otherwise, or if any value would not simply be read, graphql-core's."""
        plan = self._kept_plan(return_type, field_details_list)
        if plan is not None:
            row = plan.row(result, self.context_value, self.is_awaitable)
            if row is not None:
                if self._worked is not None:
                    self._worked()
                return row
        return super().collect_and_execute_subfields(return_type, field_details_list, path,
                                                     result, position_context)

    def _kept_plan(self, kind: Any, field_details_list: Any) -> Compiled | None:
        """The plan for values of `kind` (an object type, or a list's item type)
        selected by these fields, or None (a document with directives has none)."""
        if self._kept is None:
            return None
        middleware = self.middleware_manager
        if middleware is not None and middleware.middlewares:
            return None
        compiled: Compiled | None = self._kept_for("plan", kind, field_details_list,
                                                   lambda: self._compiled(kind,
                                                                          field_details_list))
        return compiled

    def _compiled(self, kind: Any, field_details_list: Any) -> Compiled | None:
        plan = self._plan(kind, field_details_list)
        return None if plan is None else compile_plan(plan)

    def _plan(self, kind: Any, field_details_list: Any) -> Plan | None:
        """(nullable, the object type's entries) for values of `kind` (an object
        type, maybe non-null), or None where any selected field needs more than a
        read: arguments, a resolver, a load not made by its parent, a fragment
        that is deferred, an abstract type."""
        nullable = not is_non_null_type(kind)
        if not nullable:
            kind = kind.of_type
        if not is_object_type(kind) or kind.is_type_of is not None:
            return None
        readers = self.readers.get(kind.name)
        if readers is None:
            return None
        grouped, new_defer_usages, *_ = self.collect_subfields(kind, field_details_list)
        if new_defer_usages:
            return None
        entries: list[Entry] = []
        for response_name, details in grouped.items():
            name = details[0].node.name.value
            if name == "__typename":
                entries.append((response_name, constant(kind.name), None))
                continue
            read = readers.get(name)
            if read is None:
                return None
            if not isinstance(read, Settled):
                entries.append((response_name, read, None))
                continue
            if self._needs_prefetch(read, details):
                return None
            below = _below(read.field.type, self._plan, details)
            if below is None:
                return None
            entries.append((response_name, read.read, below))
        return nullable, tuple(entries)

    def _needs_prefetch(self, read: Settled, field_details_list: Any) -> bool:
        """Would the field's resolver prefetch for what is selected below it? Then it
        must run (once per selection of the document, kept for this request)."""
        if read.target is None:
            return False
        known = self._below.get(id(field_details_list))
        if known is None:
            nodes = [details.node for details in field_details_list]
            known = self._below[id(field_details_list)] = (
                field_details_list,
                needs_prefetch(read.target, nodes, self.fragment_definitions))
        return known[1]

    def _complete(self, read: Settled, parent_type: GraphQLObjectType,
                  field_details_list: Any, path: Path, value: Any,
                  position_context: Any) -> Any:
        """graphql-core's execute_field after its resolver returned `value` (for one
        object, complete_value's chain ends in its subfields: gone to directly)."""
        field = read.field
        return_type = field.type
        try:
            if (read.direct is not None and value is not None
                    and not isinstance(value, Exception) and not self.is_awaitable(value)):
                completed = self.collect_and_execute_subfields(
                    read.direct, field_details_list, path, value, position_context)
            else:
                info = self.build_resolve_info(field, [d.node for d in field_details_list],
                                               parent_type, path)
                completed = self.complete_value(return_type, field_details_list, info, path,
                                                value, position_context)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._await_completed(completed, return_type, field_details_list, path)
        return completed

    async def _await_completed(self, completed: Any, return_type: Any,
                               field_details_list: Any, path: Path) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None


class _Varies(Visitor):
    """Finds what makes field collection depend on the request: a directive
    (@skip/@include read variables, @defer makes delivery groups) or a fragment
    argument."""

    found = False

    def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
        self.found = True
        return BREAK

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> Any:
        if getattr(node, "arguments", None):
            self.found = True
            return BREAK
        return None

    def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: Any) -> Any:
        if node.variable_definitions:
            self.found = True
            return BREAK
        return None


def fixed_selections(operation: Any, fragments: dict[str, Any]) -> bool:
    """Are the fields this operation executes the same for every request (no
    directive or fragment argument in it or its document's fragments)?"""
    for node in (operation, *fragments.values()):
        varies = _Varies()
        visit(node, varies)
        if varies.found:
            return False
    return True


def _attribute(attr: str) -> Reader:
    """An object or list held by the parent itself (no resolver): read in place,
    or NOTHING when reading fails (graphql-core then reports it)."""
    def read(source: Any, context: Any) -> Any:
        try:
            return getattr(source, attr)
        except Exception:
            return NOTHING
    return read


def _below(field_type: Any, plan_of: Callable[[Any, Any], Plan | None],
           details: Any) -> Below | None:
    """A Settled field's completion: an object, or a list of objects (one level of
    list), by their plan; None for anything else."""
    nullable = not is_non_null_type(field_type)
    inner = field_type if nullable else field_type.of_type
    if is_list_type(inner):
        plan = plan_of(inner.of_type, details)
        return None if plan is None else (nullable, True, plan)
    plan = plan_of(field_type, details)
    return None if plan is None else (nullable, False, plan)


async def _gather(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
    if len(awaitable_fields) == 1:
        field = awaitable_fields[0]
        results[field] = await results[field]
    else:
        awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
        results.update(zip(awaitable_fields, awaited, strict=True))
    return results
