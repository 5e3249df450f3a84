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

from typing import TYPE_CHECKING

from .graph import iter_paths

if TYPE_CHECKING:
    from ..gateway import Gateway


def n_plus_one(gateway: Gateway) -> list[tuple[str, str, bool]]:
    """(path, binding label, accepted) for every field path called once per item."""
    found: dict[str, tuple[str, str, bool]] = {}
    for path, lf, under_list in iter_paths(gateway.graph):
        binding = lf.link.binding
        if under_list and binding.batch == "none" and lf.link.key_arg is None:
            found.setdefault(path, (path, binding.label, binding.per_key_ok))
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
    paths = n_plus_one(gateway)
    failing = [p for p in paths if not p[2]]
    for path, label, accepted in paths:
        verdict = "accepted (per_key_ok)" if accepted else "N+1"
        lines.append(f"{verdict}: {path} calls {label} once per parent item")
    if not paths:
        lines.append("ok: no N+1 path")
    elif not failing:
        lines.append(f"ok: {len(paths)} per-item path(s), all accepted")
    else:
        lines.append(f"FAILED: {len(failing)} N+1 path(s); give the binding a batch form "
                     "(batch='comma' or 'repeat') or mark it per_key_ok=True")
    return "\n".join(lines), bool(failing)
