"""Cost: what an operation could ask of the backends, estimated before it runs.

    model = CostModel.of(strawberry_schema, graph, assumed_list_size=10)
    model.estimate(document, operation, variables)      # an int, compared with max_cost

Every object, and every scalar field with a resolver of its own (in the shop
`stock`, `inStock`, `averageRating`: each a backend load), costs 1 for each time
it can appear in the answer; plain scalars cost nothing. A list field holds as
many objects as its declaration says (`tessera.compose.link`): the number of
keys in its `keys=Arg(...)` argument, the value of an argument declared with
`size=True` (or its default), the link's or its binding's `list_size`, else
`limits.assumed_list_size`. In the shop `products(ids: [100 ids]) { name stock }`
costs 100 x (1 + 1) = 200, and `user(id: "7") { orders(limit: 20) { items {
product { name } } } }` costs 1 + 20 x (1 + 10 x (1 + 1)) = 421.

The same typed walk finds the arguments the limits check (`arguments`): key
lists (`limits.max_ids`) and ranged values (`Arg(range=...)`), wherever the
graph declares them, whatever they are called.

Every spread counts, so a fragment spread twice where execution would merge it
counts twice: the estimate is an upper bound. Fragments are costed once each and
scaled (the cost is linear in the multiplier), so a document that spreads
fragments exponentially is costed in linear time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    ValueNode,
    get_named_type,
    value_from_ast_untyped,
)
from strawberry.types.base import StrawberryObjectDefinition

if TYPE_CHECKING:
    from ..compose.graph import Graph


@dataclass(frozen=True)
class Rule:
    """What the declarations say about one field: how many items its list holds,
    and which of its arguments the limits check."""

    size_of: str | None = None  # "ids": the list is as long as this argument
    size_arg: str | None = None  # "limit": the list holds this argument's value
    size: int | None = None  # a fixed list size (link or binding list_size)
    ids: tuple[str, ...] = ()  # key-list arguments (limits.max_ids)
    ranges: tuple[tuple[str, int, int], ...] = ()  # (argument, low, high)


def _is_list(kind: GraphQLOutputType) -> bool:
    while isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


def rules_of(graph: Graph) -> dict[tuple[str, str], Rule]:
    rules: dict[tuple[str, str], Rule] = {}
    for lf in graph.linked_fields():
        spec = lf.link
        key_arg = spec.key_arg
        size_arg = next((n for n, a in spec.args.items() if a.size), None)
        rules[(lf.type_name, lf.field_name)] = Rule(
            size_of=key_arg if spec.many else None, size_arg=size_arg,
            size=spec.list_size or spec.binding.list_size,
            ids=(key_arg,) if spec.many and key_arg else (),
            ranges=tuple((n, *a.range) for n, a in spec.args.items() if a.range))
    return rules


@dataclass
class CostModel:
    root: GraphQLObjectType
    types: dict[str, GraphQLObjectType]
    resolved: frozenset[tuple[str, str]]  # (type, field) scalars with their own resolver
    rules: dict[tuple[str, str], Rule]
    assumed_list_size: int

    @classmethod
    def of(cls, schema: strawberry.Schema, graph: Graph, *,
           assumed_list_size: int) -> CostModel:
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
        return cls(root, types, frozenset(resolved), rules_of(graph), assumed_list_size)

    def estimate(self, document: DocumentNode, operation: OperationDefinitionNode,
                 variables: dict[str, Any]) -> int:
        return self._walk(document, variables).selection(operation.selection_set, self.root)

    def arguments(self, document: DocumentNode, operation: OperationDefinitionNode
                  ) -> tuple[tuple[str, str, ValueNode, Rule], ...]:
        """(field, argument, value node, rule) for every argument a limit checks."""
        walk = self._walk(document, {}, collect=True)
        walk.selection(operation.selection_set, self.root)
        return tuple(walk.found)

    def _walk(self, document: DocumentNode, variables: dict[str, Any], *,
              collect: bool = False) -> _Walk:
        fragments = {d.name.value: d for d in document.definitions
                     if isinstance(d, FragmentDefinitionNode)}
        return _Walk(self, fragments, variables, collect=collect)


@dataclass
class _Walk:
    model: CostModel
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    collect: bool = False
    memo: dict[str, int] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    found: list[tuple[str, str, ValueNode, Rule]] = field(default_factory=list)

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
        rule = self.model.rules.get((parent.name, name))
        if self.collect and rule is not None:
            for arg in node.arguments or ():
                if arg.name.value in rule.ids or arg.name.value == rule.size_arg or any(
                        arg.name.value == r[0] for r in rule.ranges):
                    self.found.append((name, arg.name.value, arg.value, rule))
        named = get_named_type(definition.type)
        if not isinstance(named, GraphQLObjectType):
            return 1 if (parent.name, name) in self.model.resolved else 0
        size = self.list_size(node, definition.args, rule) if _is_list(definition.type) else 1
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

    def list_size(self, node: FieldNode, args: dict[str, Any], rule: Rule | None) -> int:
        if rule is None:
            return self.model.assumed_list_size
        given = {arg.name.value: arg.value for arg in node.arguments or ()}
        if rule.size_of is not None and rule.size_of in given:
            ids = value_from_ast_untyped(given[rule.size_of], self.variables)
            return len(ids) if isinstance(ids, list) else 1
        if rule.size_arg is not None:
            value = value_from_ast_untyped(given[rule.size_arg], self.variables) \
                if rule.size_arg in given else args[rule.size_arg].default_value
            return value if isinstance(value, int) and value > 0 else 1
        return rule.size or self.model.assumed_list_size
