"""Query limits, each refused before any backend call, each with its own code.

    TOO_MANY_TOKENS   counted while lexing, before parsing         ([limits] max_tokens)
    QUERY_TOO_DEEP    field nesting; introspection fields excluded ([limits] max_depth)
    TOO_MANY_ALIASES  aliased fields, fragments counted per use    ([limits] max_aliases)
    TOO_MANY_IDS      items in a key-list argument (`link(keys=Arg(...))`)  ([limits] max_ids)
    BAD_USER_INPUT    an argument outside its declared range (`Arg(range=(1, 100))`)
    QUERY_TOO_COSTLY  the estimated cost (see cost.py)            ([limits] max_cost)

The shape checks run after validation and before execution, when variable
values are known. Fragments are measured once each and reused, so a document
that spreads fragments exponentially costs linear work to measure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_operation_ast,
    value_from_ast_untyped,
)
from graphql.error import GraphQLSyntaxError
from graphql.execution.values import get_variable_values
from graphql.language import Lexer, Source, TokenKind
from strawberry.extensions import SchemaExtension

from ..config import LimitSettings
from ..context import Context
from ..lru import LRU
from .cost import CostModel, Rule
from .variables import Variable, quick_variables, variables_of

T = TypeVar("T")


def _reject(code: str, message: str, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def count_tokens(query: str, stop_after: int) -> int:
    """Lexical tokens in `query`, counting no further than `stop_after` + 1."""
    lexer = Lexer(Source(query))
    count = 0
    try:
        while lexer.advance().kind is not TokenKind.EOF:
            count += 1
            if count > stop_after:
                break
    except GraphQLSyntaxError:
        pass  # the parser reports it properly
    return count


@dataclass
class _Shape:
    depth: int = 0
    aliases: int = 0


class _Measure:
    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {d.name.value: d for d in document.definitions
                          if isinstance(d, FragmentDefinitionNode)}
        self._memo: dict[str, _Shape] = {}

    def selection(self, node: SelectionSetNode | None, seen: frozenset[str]) -> _Shape:
        shape = _Shape()
        if node is None:
            return shape
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                inner = self.selection(sel.selection_set, seen)
                if sel.name.value.startswith("__"):  # introspection: no depth, but
                    shape.aliases += inner.aliases + (1 if sel.alias else 0)  # aliases
                    continue
                shape.depth = max(shape.depth, 1 + inner.depth)
                shape.aliases += inner.aliases + (1 if sel.alias else 0)
                continue
            if isinstance(sel, InlineFragmentNode):
                inner = self.selection(sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode):
                inner = self.fragment(sel, seen)
            else:
                continue
            shape.depth = max(shape.depth, inner.depth)
            shape.aliases += inner.aliases
        return shape

    def fragment(self, spread: FragmentSpreadNode, seen: frozenset[str]) -> _Shape:
        name = spread.name.value
        if name in self._memo:
            return self._memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in seen:  # validation reports these
            return _Shape()
        shape = self.selection(definition.selection_set, seen | {name})
        self._memo[name] = shape
        return shape


def _coerced(schema: GraphQLSchema, operation: OperationDefinitionNode,
             given: dict[str, Any] | None, analysis: Analysis) -> dict[str, Any] | None:
    """The variables, with those a range or a list size reads (`analysis.coerce`) as
    graphql-core will execute with them (`1000.0` for an Int is 1000, defaults filled
    in), or None when they cannot be coerced. Values that coercing would not change
    are taken as they are (`variables.quick_variables`, as execution does). Only
    those variables are coerced (a key list is only counted, and coercing 500 ids on
    every request would cost more than the check)."""
    raw = dict(given or {})
    if not analysis.coerce:
        return raw
    if analysis.quick is not None:
        quick = quick_variables(analysis.quick, raw)
        if quick is not None:
            return {**raw, **quick.coerced}
    wanted = [d for d in operation.variable_definitions or ()
              if d.variable.name.value in analysis.coerce]
    values = get_variable_values(schema, wanted, raw, max_errors=1)
    return None if isinstance(values, list) else {**raw, **values.coerced}


def _no_operation(document: DocumentNode, name: str | None) -> GraphQLError:
    """graphql-core's request errors for a document whose operation is ambiguous."""
    if name is not None:
        return _reject("BAD_REQUEST", f"Unknown operation named '{name}'.")
    count = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
    if count == 0:
        return _reject("BAD_REQUEST", "The document has no operation.")
    return _reject("BAD_REQUEST", f"The document has {count} operations: send "
                   "'operationName' to choose one.")


@dataclass(frozen=True)
class Analysis:
    """What the limits need of one operation that its variables cannot change."""

    depth: int
    aliases: int
    arguments: tuple[tuple[str, str, ValueNode, Rule], ...]  # (field, argument, value, rule)
    cost: int | None  # None when it depends on the variables
    coerce: frozenset[str]  # variables a range check or a list size reads
    quick: tuple[Variable, ...] | None  # those variables, for `quick_variables`


def analyse(schema: GraphQLSchema, document: DocumentNode,
            operation: OperationDefinitionNode, model: CostModel) -> Analysis:
    shape = _Measure(document).selection(operation.selection_set, frozenset())
    arguments = model.arguments(document, operation)
    # The estimate reads variables only for list sizes (a key list's length, a
    # size argument's value): without such a variable it is the same for every
    # request (`query($id: ID!) { order(id: $id) ... }`), so it is made once here.
    sizes = [value for _, name, value, rule in arguments if name in (rule.size_of, rule.size_arg)]
    varies = any(_variables_in(value) for value in sizes)
    cost = None if varies else model.estimate(document, operation, {})
    coerce = frozenset(node.name.value for _, name, value, rule in arguments
                       if name not in rule.ids
                       for node in _variables_in(value))
    quick = variables_of(schema, [d for d in operation.variable_definitions or ()
                                  if d.variable.name.value in coerce])
    return Analysis(shape.depth, shape.aliases, arguments, cost, coerce, quick)


def _variables_in(value: ValueNode) -> list[VariableNode]:
    if isinstance(value, VariableNode):
        return [value]
    if isinstance(value, ListValueNode):
        return [v for item in value.values for v in _variables_in(item)]
    if isinstance(value, ObjectValueNode):
        return [v for f in value.fields for v in _variables_in(f.value)]
    return []


def check_operation(analysis: Analysis, values: dict[str, Any],
                    limits: LimitSettings) -> None:
    """Raise the GraphQLError for the first limit the operation breaks; `values`
    are the operation's variables, defaults filled in."""
    if analysis.depth > limits.max_depth:
        raise _reject("QUERY_TOO_DEEP", f"Query depth {analysis.depth} exceeds the limit of "
                      f"{limits.max_depth}.")
    if analysis.aliases > limits.max_aliases:
        raise _reject("TOO_MANY_ALIASES", f"Query uses {analysis.aliases} aliases; the limit "
                      f"is {limits.max_aliases}.")
    for field, name, node, rule in analysis.arguments:
        value = value_from_ast_untyped(node, values)
        if name in rule.ids and isinstance(value, list) and len(value) > limits.max_ids:
            raise _reject("TOO_MANY_IDS", f"'{field}' was given {len(value)} "
                          f"ids; the limit is {limits.max_ids}.")
        for arg, low, high in rule.ranges:
            if name == arg and isinstance(value, int) and not low <= value <= high:
                raise _reject("BAD_USER_INPUT", f"'{name}' must be between {low} and "
                              f"{high} (got {value}).")


class _Memo:
    """Per-document results, keyed by the query text (which determines the
    document), in a bounded LRU. Long texts are not kept: they are rare, and a
    key must not pin megabytes."""

    MAX_ENTRIES = 1000
    MAX_KEY_CHARS = 8192

    def __init__(self) -> None:
        self._entries: LRU[tuple[Any, ...], Any] = LRU(self.MAX_ENTRIES)

    def get(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        if key[0] is None or len(key[0]) > self.MAX_KEY_CHARS:
            return make()
        value: T | None = self._entries.get(key)
        if value is None:
            value = make()
            self._entries.put(key, value)
        return value


class LimitState:
    """What the limits keep per schema: per-document memos, the documents that have
    passed parsing, the token limit and validation (`ready`, by query text), and the
    cost model (set by `build_schema` once the schema exists)."""

    def __init__(self, limits: LimitSettings) -> None:
        self.limits = limits
        self.tokens = _Memo()
        self.analyses = _Memo()
        self.ready: LRU[str, DocumentNode] = LRU(_Memo.MAX_ENTRIES)
        self.model: CostModel | None = None

    def remember(self, query: str | None, document: DocumentNode) -> None:
        """`query` parsed into `document`, within the token limit, and validated."""
        if query is not None and len(query) <= _Memo.MAX_KEY_CHARS:
            self.ready.put(query, document)

    def check(self, schema: GraphQLSchema, query: str | None, document: DocumentNode,
              operation: OperationDefinitionNode, operation_name: str | None,
              variables: dict[str, Any] | None, context: Any) -> int | None:
        """Raise the GraphQLError for the first limit the operation breaks; else its
        estimated cost (None with variables graphql-core will refuse)."""
        if operation.name is not None and isinstance(context, Context):
            context.scope.report.operation = operation.name.value
        model = self.model
        assert model is not None  # set by build_schema
        analysis = self.analyses.get((query, operation_name),
                                     lambda: analyse(schema, document, operation, model))
        values = _coerced(schema, operation, variables, analysis)
        if values is None:
            return None  # bad variables: graphql-core reports them, before any call
        check_operation(analysis, values, self.limits)
        cost = analysis.cost if analysis.cost is not None \
            else model.estimate(document, operation, values)
        if cost > self.limits.max_cost:
            raise _reject("QUERY_TOO_COSTLY", f"Query cost {cost} exceeds the limit of "
                          f"{self.limits.max_cost}.", cost=cost,
                          max_cost=self.limits.max_cost)
        return cost

    def results(self, cost: int | None, operation_extensions: dict[str, Any] | None
                ) -> dict[str, Any]:
        """`extensions.cost` for a client that sent `extensions: {"cost": true}`."""
        if cost is None or not (operation_extensions or {}).get("cost"):
            return {}
        return {"cost": {"estimated": cost, "max": self.limits.max_cost}}


class QueryLimits(SchemaExtension):
    """Strawberry extension applying `[limits]`; made per request by the schema.
    A client that sends `extensions: {"cost": true}` gets the estimate back in
    `extensions.cost`."""

    def __init__(self, state: LimitState) -> None:
        self.state = state
        self.limits = state.limits
        self.cost: int | None = None

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None:
            stop = self.limits.max_tokens
            tokens = self.state.tokens.get((query, stop), lambda: count_tokens(query, stop))
            if tokens > self.limits.max_tokens:
                raise _reject("TOO_MANY_TOKENS", "The document has more than "
                              f"{self.limits.max_tokens} tokens.")
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            # Strawberry's `operation_name` falls back to the first operation's name;
            # graphql-core's rule (and the spec's) is that several operations without
            # a name given is a request error, so read the name the client sent.
            given = getattr(context, "_provided_operation_name", context.operation_name)
            operation = get_operation_ast(document, given)
            if operation is None:
                raise _no_operation(document, given)
            self._check(document, operation)
        yield

    def _check(self, document: DocumentNode, operation: OperationDefinitionNode) -> None:
        context = self.execution_context
        self.cost = self.state.check(context.schema._schema, context.query, document,
                                     operation, context.operation_name, context.variables,
                                     context.context)
        self.state.remember(context.query, document)

    def get_results(self) -> dict[str, Any]:
        return self.state.results(self.cost, self.execution_context.operation_extensions)
