"""`tessera schema-diff OLD NEW`: what a schema change breaks, for a team's CI.

Breaking changes (graphql-core's `find_breaking_changes`: a field removed, a type
changed, an argument made required) make it exit 1; dangerous ones
(`find_dangerous_changes`: an enum value or an optional argument added, a
default changed) are listed without failing.

    $ tessera export-schema --config tessera.toml > new.graphql
    $ tessera schema-diff schema.graphql new.graphql
"""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLError, build_schema, find_breaking_changes, find_dangerous_changes

from ..errors import ConfigError


def diff(old_sdl: str, new_sdl: str) -> tuple[list[str], list[str]]:
    """(breaking, dangerous) changes, each `TYPE: description`."""
    old, new = build_schema(old_sdl), build_schema(new_sdl)
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(old, new)]
    dangerous = [f"{c.type.name}: {c.description}" for c in find_dangerous_changes(old, new)]
    return breaking, dangerous


def diff_files(old_path: str, new_path: str) -> tuple[str, bool]:
    texts = []
    for path in (old_path, new_path):
        try:
            texts.append(Path(path).read_text("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("", f"cannot read {path}: {exc}") from None
    try:
        breaking, dangerous = diff(*texts)
    except GraphQLError as exc:
        raise ConfigError("", f"not a schema: {exc.message}") from None
    lines = [f"BREAKING {change}" for change in breaking]
    lines += [f"dangerous {change}" for change in dangerous]
    lines.append(f"{len(breaking)} breaking, {len(dangerous)} dangerous change(s)")
    return "\n".join(lines), bool(breaking)
