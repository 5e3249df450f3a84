"""Tessera as an Apollo Federation 2 subgraph (`[graph] federation = true`).

    federated, entities = federate(graph)       # a private copy, keys added

An entity is a type some linked field loads by key from a binding that answers
objects by a field of theirs (`Rest(..., by="id")`, not grouped): in the shop
Order, User and Product. Each gets `@key(fields: "<that field>")` and a
`resolve_reference` that goes through the same per-request loader as every
other field, so `_entities` with N representations of a type costs one batched
call per type (split at `max_batch_size`), de-duplicated with everything else
the request loads. A representation whose entity the backend does not have is
null with no error; one whose backend failed is null with an error carrying
`service` and `code` at its path (`_entities.3`), and the others still resolve.
The graph given is not changed: the keys go on a private copy of its module.
"""

from __future__ import annotations

from typing import Any

from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.types.base import get_object_definition

from .binding import Rest
from .graph import Graph
from .lookahead import GRAPHQL_NAMES, fresh
from .records import builder


def entities_of(graph: Graph) -> dict[type, tuple[Rest, str]]:
    """Each entity type, with the binding that loads it by key and the key's
    GraphQL field name."""
    found: dict[type, tuple[Rest, str]] = {}
    for lf in graph.linked_fields():
        binding, kind = lf.link.binding, lf.link.target
        if kind is None or kind in found or binding.answer != "entity" or binding.grouped \
                or binding.fixed:
            continue
        definition = get_object_definition(kind, strict=True)
        for f in definition.fields:
            metadata: dict[str, Any] = dict(f.metadata or {})
            source = metadata.get("tessera.source", f.python_name)
            if f.base_resolver is None and source == binding.by:
                found[kind] = (binding, GRAPHQL_NAMES.get_graphql_name(f))
                break
    return found


def federate(graph: Graph) -> tuple[Graph, dict[type, tuple[Rest, str]]]:
    """A copy of `graph` whose entities carry `@key` and resolve references."""
    copied = graph.copy()
    entities = entities_of(copied)
    for kind, (binding, key_field) in entities.items():
        definition = get_object_definition(kind, strict=True)
        definition.directives = [*(definition.directives or ()), Key(fields=FieldSet(key_field))]
        kind.resolve_reference = _reference_resolver(kind, binding, key_field)  # type: ignore[attr-defined]
    return copied, entities


def _reference_resolver(kind: type, binding: Rest, key_field: str) -> Any:
    build = builder(kind, binding.backend)

    def resolve_reference(info: Any, **representation: Any) -> Any:
        key = representation.get(key_field)
        if key is None:
            return None
        loader = info.context.loaders[binding]
        pending = loader.load(binding.key_of(key, {}))

        async def entity() -> Any:
            value = fresh(info, await pending)
            return None if value is None else build(value)

        return entity()

    return staticmethod(resolve_reference)
