"""schema.graphql is the committed contract; the code must match it."""

from __future__ import annotations

from pathlib import Path

from graphql import BreakingChangeType, find_breaking_changes
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
    old = SNAPSHOT.read_text()
    new = old.replace("  inStock: Boolean\n", "", 1)
    assert new != old
    changes = find_breaking_changes(parse_sdl(old), parse_sdl(new))
    assert [c.type for c in changes] == [BreakingChangeType.FIELD_REMOVED]


def test_snapshot_has_every_spec_root_field() -> None:
    sdl = SNAPSHOT.read_text()
    for line in ("order(id: ID!): Order", "orders(ids: [ID!]!): [Order]!",
                 "dashboard(userId: ID!): Dashboard!", "orders(limit: Int! = 10): [Order!]"):
        assert line in sdl
