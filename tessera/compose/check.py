"""`tessera check`: the graph's declarations against the config, and its N+1 paths.

A linked field whose binding has no batch form (`batch="none"`) calls its backend
once per key; reached under a list (`users(ids) { orders }`), that is once per
parent item: an N+1 path. Each such path is listed; the check fails (exit 1)
unless the binding says the backend cannot batch and that is accepted
(`per_key_ok=True`), which is listed too. Backends are checked at build time
(`Gateway.build`): a declaration naming a backend the config lacks stops there.

    $ tessera check --config examples/blog/tessera.toml
    graph 'blog': 3 bindings over 3 backends (posts, users, comments)
    ok: no N+1 path
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING

from .graph import iter_paths

if TYPE_CHECKING:
    from ..gateway import Gateway


@dataclass
class PerItem:
    """A linked field that some query path reaches under a list, whose binding
    cannot batch: it calls its backend once per parent item there."""

    field: str  # Type.field
    binding: str
    accepted: bool
    paths: list[str] = dc_field(default_factory=list)  # shortest first


def n_plus_one(gateway: Gateway) -> list[PerItem]:
    found: dict[str, PerItem] = {}
    for path, lf, under_list in iter_paths(gateway.graph):
        binding = lf.link.binding
        if under_list and binding.batch == "none" and lf.link.key_arg is None:
            entry = found.setdefault(lf.path, PerItem(lf.path, binding.label,
                                                      binding.per_key_ok))
            entry.paths.append(path)
    for entry in found.values():
        entry.paths.sort(key=lambda p: (p.count("."), p))
    return list(found.values())


def report(gateway: Gateway) -> tuple[str, bool]:
    """The check's text, and whether it failed."""
    graph = gateway.graph
    bindings = graph.bindings()
    lines = [f"graph '{graph.name}': {len(bindings)} bindings over "
             f"{len(graph.backends())} backends ({', '.join(graph.backends())}); "
             f"{len(graph.linked_fields())} linked fields"]
    for name in gateway.backends:
        url = gateway.settings.url(name)
        lines.append(f"  backend {name}: {url or 'embedded demo'}")
    found = n_plus_one(gateway)
    failing = [entry for entry in found if not entry.accepted]
    for entry in found:
        verdict = "accepted (per_key_ok)" if entry.accepted else "N+1"
        more = f" (and {len(entry.paths) - 1} more paths)" if len(entry.paths) > 1 else ""
        lines.append(f"{verdict}: {entry.field} calls {entry.binding} once per parent item, "
                     f"e.g. {{ {_query(entry.paths[0])} }}{more}")
    if not found:
        lines.append("ok: no N+1 path")
    elif not failing:
        lines.append(f"ok: {len(found)} per-item field(s), all accepted")
    else:
        lines.append(f"FAILED: {len(failing)} field(s) with N+1 paths; give the binding a "
                     "batch form (batch='comma' or 'repeat') or mark it per_key_ok=True")
    return "\n".join(lines), bool(failing)


def _query(path: str) -> str:
    """`users.orders` as a selection: `users { orders }`."""
    parts = path.split(".")
    return " { ".join(parts) + " }" * (len(parts) - 1)
