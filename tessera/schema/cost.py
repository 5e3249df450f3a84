"""Cost: what an operation could ask of the backends, estimated before it runs.

    model = CostModel.of(strawberry_schema, assumed_list_size=10)
    model.estimate(document, operation, variables)      # an int, compared with max_cost

Every object, and every scalar field with a resolver of its own (`stock`,
`inStock`, `averageRating`: each a backend load), costs 1 for each time it can
appear in the answer; plain scalars cost nothing. A list field holds as many
objects as its size: the length of `ids`, the `limit` (or its default), else
`limits.assumed_list_size`. So `products(ids: [100 ids]) { name stock }` costs
100 x (1 + 1) = 200, and `user(id: "7") { orders(limit: 20) { items { product
{ name } } } }` costs 1 + 20 x (1 + 10 x (1 + 1)) = 421.

Every spread counts, so a fragment spread twice where execution would merge it
counts twice: the estimate is an upper bound. Fragments are costed once each
and scaled (the cost is linear in the multiplier), so a document that spreads
fragments exponentially is costed in linear time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    value_from_ast_untyped,
)
from strawberry.types.base import StrawberryObjectDefinition


def _is_list(kind: GraphQLOutputType) -> bool:
    while isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


@dataclass
class CostModel:
    root: GraphQLObjectType
    types: dict[str, GraphQLObjectType]
    resolved: frozenset[tuple[str, str]]  # (type, field) scalars with their own resolver
    assumed_list_size: int

    @classmethod
    def of(cls, schema: strawberry.Schema, *, assumed_list_size: int) -> CostModel:
        graphql_schema = schema._schema
        types = {name: kind for name, kind in graphql_schema.type_map.items()
                 if isinstance(kind, GraphQLObjectType) and not name.startswith("__")}
        resolved = set()
        for name in types:
            definition = schema.get_type_by_name(name)
            if isinstance(definition, StrawberryObjectDefinition):
                for f in definition.fields:
                    if f.base_resolver is not None:
                        resolved.add((name, schema.config.name_converter.get_graphql_name(f)))
        root = graphql_schema.query_type
        assert root is not None
        return cls(root, types, frozenset(resolved), assumed_list_size)

    def estimate(self, document: DocumentNode, operation: OperationDefinitionNode,
                 variables: dict[str, Any]) -> int:
        fragments = {d.name.value: d for d in document.definitions
                     if isinstance(d, FragmentDefinitionNode)}
        return _Walk(self, fragments, variables).selection(operation.selection_set, self.root)


@dataclass
class _Walk:
    model: CostModel
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    memo: dict[str, int] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def selection(self, node: SelectionSetNode | None, parent: GraphQLObjectType) -> int:
        if node is None:
            return 0
        total = 0
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                total += self.field(sel, parent)
            elif isinstance(sel, InlineFragmentNode):
                condition = sel.type_condition
                kind = self.model.types.get(condition.name.value, parent) if condition \
                    else parent
                total += self.selection(sel.selection_set, kind)
            elif isinstance(sel, FragmentSpreadNode):
                total += self.fragment(sel.name.value)
        return total

    def field(self, node: FieldNode, parent: GraphQLObjectType) -> int:
        name = node.name.value
        definition = parent.fields.get(name)
        if definition is None or name.startswith("__"):
            return 0  # introspection, or unknown (validation reports it)
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType):
            return 1 if (parent.name, name) in self.model.resolved else 0
        size = self.list_size(node, definition.args) if _is_list(definition.type) else 1
        return size * (1 + self.selection(node.selection_set, named))

    def fragment(self, name: str) -> int:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return 0  # unknown or cyclic: validation reports it
        self.active.add(name)
        kind = self.model.types.get(definition.type_condition.name.value)
        cost = 0 if kind is None else self.selection(definition.selection_set, kind)
        self.active.discard(name)
        self.memo[name] = cost
        return cost

    def list_size(self, node: FieldNode, args: dict[str, Any]) -> int:
        given = {arg.name.value: arg.value for arg in node.arguments or ()}
        if "ids" in given:
            ids = value_from_ast_untyped(given["ids"], self.variables)
            return len(ids) if isinstance(ids, list) else 1
        if "limit" in given or "limit" in args:
            limit = value_from_ast_untyped(given["limit"], self.variables) \
                if "limit" in given else args["limit"].default_value
            return limit if isinstance(limit, int) and limit > 0 else 1
        return self.model.assumed_list_size
