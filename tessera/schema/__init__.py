"""The executable schema of a graph: its Strawberry types, limits and error policy.

    schema = build_schema(settings, graph)
    result = await schema.execute(query, context_value=new_context(backends, {}))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any, Final, cast

import strawberry
import strawberry.federation
from graphql import DocumentNode, GraphQLError, execute, get_operation_ast
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import DisableIntrospection, ParserCache, ValidationCache
from strawberry.federation.schema import FederationAny
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.base import get_object_definition
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

from ..compose.federation import federate
from ..compose.graph import Graph, graph_for
from ..config import Settings
from .cost import CostModel, Rule
from .errors import format_errors, is_deliberate
from .execution import execution_class
from .limits import LimitState, QueryLimits
from .report import TesseraReport, report_results

__all__ = ["build_schema", "format_errors"]

log = logging.getLogger("tessera.graphql")

CACHED_DOCUMENTS = 1000
FEDERATION_VERSION: Final = "2.5"


class _Tessera:
    """What Tessera's schemas add to Strawberry's: deliberate errors logged in one
    line, and documents seen before run straight through graphql-core.

    A query text that has passed parsing, the token limit and validation once
    (`LimitState.ready`) is executed without Strawberry's per-request extension
    machinery (an extension runner, four hook context managers, the parser and
    validation caches hashing the document: ~60 us per request), doing exactly
    what those hooks would: the same limit check, graphql-core's execute with the
    same execution class, the same error processing and `extensions`. Anything
    else (a new text, an operation that cannot be chosen or is not allowed, a
    limit broken) takes Strawberry's own path, which answers it as it always has.
    """

    limits: LimitState
    completeness = False

    async def execute(self, query: str | None, variable_values: dict[str, Any] | None = None,
                      context_value: Any | None = None, root_value: Any | None = None,
                      operation_name: str | None = None,
                      allowed_operation_types: Iterable[OperationType] | None = None,
                      operation_extensions: dict[str, Any] | None = None) -> ExecutionResult:
        document = self.limits.ready.get(query) if query is not None else None
        if document is not None and root_value is None:
            result = await self._execute_ready(query, document, variable_values,
                                               context_value, operation_name,
                                               allowed_operation_types, operation_extensions)
            if result is not None:
                return result
        answer: ExecutionResult = await super().execute(  # type: ignore[misc]
            query, variable_values, context_value, root_value, operation_name,
            allowed_operation_types, operation_extensions)
        return answer

    async def _execute_ready(self, query: str | None, document: DocumentNode,
                             variables: dict[str, Any] | None, context: Any,
                             operation_name: str | None,
                             allowed: Iterable[OperationType] | None,
                             operation_extensions: dict[str, Any] | None
                             ) -> ExecutionResult | None:
        schema = cast(strawberry.Schema, self)
        operation = get_operation_ast(document, operation_name)
        if operation is None or OperationType(operation.operation.value) not in (
                allowed if allowed is not None else DEFAULT_ALLOWED_OPERATION_TYPES):
            return None
        name = operation_name if operation_name is not None else \
            operation.name.value if operation.name is not None else None
        try:
            cost = self.limits.check(schema._schema, query, document, operation, name,
                                     variables, context)
        except GraphQLError:
            return None  # Strawberry's path reports it, with its extensions
        result = await await_maybe(execute(
            schema._schema, document, variable_values=variables, context_value=context,
            operation_name=name, is_awaitable=cast(Any, optimized_is_awaitable),
            operation_extensions=operation_extensions,
            **execution_context_class_kwargs(schema.execution_context_class)))
        if result.errors:
            schema._process_errors(result.errors)
        extensions = self.limits.results(cost, operation_extensions)
        extensions.update(report_results(context, self.completeness))
        return ExecutionResult(data=result.data, errors=result.errors, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # Deliberate errors (a backend down, a limit hit) are expected traffic:
        # one line each. Unexpected ones are logged with traceback when masked.
        for error in errors:
            if is_deliberate(error):
                log.info("graphql error at %s: %s", error.path, error.message)


class TesseraSchema(_Tessera, strawberry.Schema):
    pass


class TesseraSubgraph(_Tessera, strawberry.federation.Schema):
    """The graph as an Apollo Federation 2 subgraph (`[graph] federation = true`).
    A representation that names no entity of this graph, or lacks its key, is that
    item's BAD_USER_INPUT error (Strawberry would fail the whole field, masked)."""

    entity_keys: dict[str, str] = {}  # entity type name -> its key field

    # The annotations are read by Strawberry to build `_entities`: they stay its own.
    def entities_resolver(self, info: Info,
                          representations: list[FederationAny]) -> list[FederationAny]:
        results: list[Any] = [None] * len(representations)
        good: list[int] = []
        for index, representation in enumerate(representations):
            problem = _representation_problem(representation, self.entity_keys)
            if problem is None:
                good.append(index)
            else:
                results[index] = GraphQLError(problem, extensions={"code": "BAD_USER_INPUT"})
        resolved = super().entities_resolver(info, [representations[i] for i in good])
        for index, result in zip(good, resolved, strict=True):
            results[index] = result
        return cast(list[FederationAny], results)


def _representation_problem(representation: Any, keys: dict[str, str]) -> str | None:
    if not isinstance(representation, dict):
        return "A representation must be an object with __typename and its key."
    name = representation.get("__typename")
    if name not in keys:
        return (f"{str(name)[:60]!r} is not an entity of this subgraph "
                f"(entities: {', '.join(sorted(keys))}).")
    key = representation.get(keys[name])
    if isinstance(key, bool) or not isinstance(key, str | int):
        return f"A {name} representation needs its key '{keys[name]}' (a string or number)."
    return None


def build_schema(settings: Settings | None = None, graph: Graph | None = None
                 ) -> strawberry.Schema:
    """The schema of `graph` (else the one the settings name: the shop by default)."""
    settings = settings or Settings()
    graph = graph or graph_for(settings)
    limits = LimitState(settings.limits)
    extensions: list[Any] = [partial(QueryLimits, limits),
                             partial(TesseraReport, settings.server.completeness_report)]
    if not settings.server.introspection:
        extensions.append(DisableIntrospection)
    # Clients send the same few documents over and over: parse and validate each
    # once (bounded LRU, shared by the process). ValidationCache keys on the
    # document object, which ParserCache makes the same for the same text.
    extensions += [partial(ParserCache, maxsize=CACHED_DOCUMENTS),
                   partial(ValidationCache, maxsize=CACHED_DOCUMENTS)]
    if settings.graph.federation:
        graph, entities = federate(graph)
        subgraph = TesseraSubgraph(query=graph.query, types=list(graph.types),
                                   extensions=extensions, federation_version=FEDERATION_VERSION)
        subgraph.entity_keys = {get_object_definition(kind, strict=True).name: key
                                for kind, (_, key) in entities.items()}
        schema: strawberry.Schema = subgraph
    else:
        schema = TesseraSchema(query=graph.query, types=list(graph.types),
                               extensions=extensions)
    schema.execution_context_class = execution_class(schema)
    tessera = cast(_Tessera, schema)
    tessera.limits, tessera.completeness = limits, settings.server.completeness_report
    limits.model = CostModel.of(schema, graph,
                                assumed_list_size=settings.limits.assumed_list_size)
    if settings.graph.federation:  # representations count against max_ids and the cost
        limits.model.rules[("Query", "_entities")] = Rule(size_of="representations",
                                                          ids=("representations",))
    return schema


