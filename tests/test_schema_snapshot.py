"""schema.graphql is the committed contract; the code must match it."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    BreakingChangeType,
    GraphQLObjectType,
    find_breaking_changes,
    print_schema,
)
from graphql import build_schema as parse_sdl

from tessera.schema import build_schema

SNAPSHOT = Path(__file__).resolve().parent.parent / "schema.graphql"
FIX = "if the change is deliberate, run `tessera export-schema > schema.graphql`"


def breaking(old_sdl: str, new_sdl: str) -> list[str]:
    return [f"{c.type.name}: {c.description}"
            for c in find_breaking_changes(parse_sdl(old_sdl), parse_sdl(new_sdl))]


def test_code_schema_equals_the_snapshot() -> None:
    code = build_schema().as_str().strip()
    assert code == SNAPSHOT.read_text().strip(), f"schema.graphql is stale; {FIX}"


def test_no_breaking_change_against_the_snapshot() -> None:
    changes = breaking(SNAPSHOT.read_text(), build_schema().as_str())
    assert changes == [], f"breaking schema changes: {changes}; {FIX}"


def test_the_breaking_check_catches_a_removed_field() -> None:
    old = undescribed(SNAPSHOT.read_text())
    new = old.replace("  inStock: Boolean\n", "", 1)
    assert new != old
    changes = find_breaking_changes(parse_sdl(old), parse_sdl(new))
    assert [c.type for c in changes] == [BreakingChangeType.FIELD_REMOVED]


def undescribed(sdl: str) -> str:
    """The SDL with every description removed (how the shape alone reads)."""
    schema = parse_sdl(sdl)
    for named in schema.type_map.values():
        if named.name.startswith("__"):
            continue
        named.description = None
        for field in getattr(named, "fields", {}).values():
            field.description = None
            for arg in getattr(field, "args", {}).values():
                arg.description = None
    return print_schema(schema)


def test_every_type_field_and_argument_is_described() -> None:
    schema = parse_sdl(SNAPSHOT.read_text())
    missing = []
    for named in schema.type_map.values():
        if named.name.startswith("__") or not isinstance(named, GraphQLObjectType):
            continue
        missing += [named.name] if not named.description else []
        for name, field in named.fields.items():
            missing += [f"{named.name}.{name}"] if not field.description else []
            missing += [f"{named.name}.{name}({arg})" for arg, value in field.args.items()
                        if not value.description]
    assert missing == []


def test_snapshot_has_every_spec_root_field() -> None:
    sdl = undescribed(SNAPSHOT.read_text())
    for line in ("order(id: ID!): Order", "orders(ids: [ID!]!): [Order]!",
                 "dashboard(userId: ID!): Dashboard!", "orders(limit: Int! = 10): [Order!]"):
        assert line in sdl
