"""A graph: the Query root of Strawberry types with linked fields, plus what serving
it needs (default REST routes, embedded demo services).

    graph = Graph(query=Query, routes=ROUTES, demo=fixtures(Path(__file__).parent / "data"))

A graph module (`[graph] module = "myservices.graph"`, or a file path relative
to the config file) defines `graph`, a `Graph`. `load_graph(...)` imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp
from strawberry.annotation import StrawberryAnnotation
from strawberry.types.base import get_object_definition

from ..config import Aggregation, Settings
from ..errors import ConfigError
from .binding import Rest
from .fields import Link, link_of
from .lookahead import GRAPHQL_NAMES, object_type


@dataclass(frozen=True)
class Demo:
    """Embedded demo services: their backend names, and a function making one ASGI
    app per name (called once, when a backend without a url is first needed)."""

    names: tuple[str, ...]
    make: Callable[[], Mapping[str, ASGIApp]]

    def __add__(self, other: Demo) -> Demo:
        """Both sets of services (a later one wins a shared name)."""
        return Demo(tuple(dict.fromkeys(self.names + other.names)),
                    lambda: {**self.make(), **other.make()})


@dataclass(frozen=True)
class LinkedField:
    """One linked field of the graph, where it is."""

    type_name: str
    field_name: str
    link: Link

    @property
    def path(self) -> str:
        return f"{self.type_name}.{self.field_name}"


@dataclass
class Graph:
    """What Tessera serves: `query` (the root Strawberry type), `types` it cannot
    reach by itself, `routes` (default REST aggregation routes, the config's
    `aggregations` form) and `demo` (a function giving one ASGI app per backend
    name, served in-process for backends the config gives no url)."""

    query: type
    types: tuple[type, ...] = ()
    routes: Mapping[str, Any] = field(default_factory=dict)
    demo: Demo | None = None
    name: str = "graph"

    def object_types(self) -> list[type]:
        """Every Strawberry object type reachable from the root (and `types`)."""
        seen: dict[type, None] = {}
        stack = [self.query, *self.types]
        while stack:
            kind = stack.pop()
            if kind in seen:
                continue
            seen[kind] = None
            definition = get_object_definition(kind, strict=True)
            for f in definition.fields:
                target = object_type(f.type)
                if target is not None and target not in seen:
                    stack.append(target)
        return list(seen)

    def linked_fields(self) -> list[LinkedField]:
        out = []
        for kind in self.object_types():
            definition = get_object_definition(kind, strict=True)
            for f in definition.fields:
                spec = link_of(f)
                if spec is not None:
                    name = GRAPHQL_NAMES.get_graphql_name(f)
                    out.append(LinkedField(definition.name, name, spec))
        return out

    def bindings(self) -> list[Rest]:
        return list({id(lf.link.binding): lf.link.binding
                     for lf in self.linked_fields()}.values())

    def named_bindings(self) -> dict[str, Rest]:
        """Bindings by name, for `loaders.NAME` in plain resolvers."""
        out: dict[str, Rest] = {}
        for binding in self.bindings():
            if binding.name is not None:
                out[binding.name] = binding
        return out

    def backends(self) -> list[str]:
        """The backends the graph's declarations call, in first-use order."""
        return list(dict.fromkeys(b.backend for b in self.bindings()))

    def extend(self, type_name: str, *, name: str | None = None, demo: Demo | None = None,
               routes: Mapping[str, Any] | None = None, **fields: tuple[Any, Any]) -> Graph:
        """This graph with more fields on one of its types, for a graph of your own
        built on it: `shop.extend("Order", shipments=(list[Shipment] | None,
        link(SHIPMENTS, key="id")), demo=shop.demo + fixtures(...))`.

        The original is untouched: its module is loaded again as a private copy,
        and the fields are added to the copy's type."""
        found = self.copy()
        kind = next((k for k in found.object_types()
                     if get_object_definition(k, strict=True).name == type_name), None)
        if kind is None:
            raise ValueError(f"the graph '{self.name}' has no type {type_name}")
        definition = get_object_definition(kind, strict=True)
        taken = {f.python_name for f in definition.fields}
        for python_name, (annotation, made) in fields.items():
            if python_name in taken:
                raise ValueError(f"{type_name}.{python_name} exists already")
            made.python_name = python_name
            made.origin = kind
            made.type_annotation = StrawberryAnnotation(annotation)
            definition.fields.append(made)
        return Graph(query=found.query, types=found.types,
                     routes=dict(found.routes) if routes is None else routes,
                     demo=demo or found.demo, name=name or found.name)

    def copy(self) -> Graph:
        """The same graph from a private copy of its module: new classes, which can
        be changed (more fields, federation keys) without touching this graph."""
        copied: Graph = _private_copy(self.query.__module__).graph
        return Graph(query=copied.query, types=copied.types, routes=copied.routes,
                     demo=copied.demo, name=copied.name)

    def demo_services(self) -> Mapping[str, ASGIApp]:
        return dict(self.demo.make()) if self.demo is not None else {}

    @property
    def demo_names(self) -> tuple[str, ...]:
        return self.demo.names if self.demo is not None else ()


def routes_for(settings: Settings, graph: Graph) -> dict[str, Aggregation]:
    """The REST routes served: the config's `aggregations`, else the graph's own."""
    if settings.aggregations is not None:
        return dict(settings.aggregations)
    try:
        return {pattern: Aggregation.model_validate(spec) for pattern, spec in
                graph.routes.items()}
    except ValueError as exc:
        raise ConfigError("graph.routes", f"the graph's routes are invalid: {exc}") from None


def backend_names(settings: Settings, graph: Graph,
                  routes: Mapping[str, Aggregation]) -> list[str]:
    """Every backend a client is needed for, graph's first (in first-use order)."""
    used = [*graph.backends(), *(r.service for agg in routes.values()
                                 for r in agg.backend_requests), *settings.backends]
    return list(dict.fromkeys(used))


def check_backends(settings: Settings, graph: Graph,
                   routes: Mapping[str, Aggregation]) -> None:
    """Every backend the graph or a route calls is configured with a url, or served
    by the graph's embedded demo; else a ConfigError naming both."""
    for name in backend_names(settings, graph, routes):
        if settings.url(name) is not None or name in graph.demo_names:
            continue
        users = [f"the graph '{graph.name}'"] if name in graph.backends() else []
        users += [f"route {pattern}" for pattern, agg in routes.items()
                  if any(r.service == name for r in agg.backend_requests)]
        who = " and ".join(users) if users else "the config"
        raise ConfigError(f"backends.{name}", f"{who} calls backend '{name}', which has no "
                          f"url and no demo service; add [backends.{name}] url = \"http://...\"")


_copies = 0


def _private_copy(module_name: str) -> Any:
    """A fresh execution of a graph module: new classes, not shared with the original."""
    global _copies
    original = sys.modules[module_name]
    location = getattr(original, "__file__", None)
    if location is None:
        raise ValueError(f"cannot copy {module_name}: it has no file")
    _copies += 1
    package = module_name.rpartition(".")[0]
    name = f"{package + '.' if package else ''}_copy{_copies}_{module_name.rpartition('.')[2]}"
    spec = importlib.util.spec_from_file_location(name, location)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    sys.modules[name] = copy
    spec.loader.exec_module(copy)
    return copy


def graph_for(settings: Settings) -> Graph:
    return load_graph(settings.graph.module)


def load_graph(module: str | None, *, relative_to: Path | None = None,
               key: str = "graph.module") -> Graph:
    """The `graph` of a module (a dotted name, or a .py file path, relative to the
    config file's folder); the shop when `module` is None."""
    if module is None:
        module = "tessera.shop.graph"
    try:
        loaded = _import(module, relative_to)
    except ConfigError:
        raise
    except Exception as exc:  # the user's module failed while importing
        raise ConfigError(key, f"cannot import {module!r}: {type(exc).__name__}: {exc}") \
            from exc
    found = getattr(loaded, "graph", None)
    if not isinstance(found, Graph):
        raise ConfigError(key, f"{module!r} must define `graph = tessera.compose.Graph(...)`")
    return found


def _import(module: str, relative_to: Path | None) -> Any:
    if module.endswith(".py") or "/" in module:
        path = Path(module)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        if not path.is_file():
            raise ConfigError("graph.module", f"file not found: {path}")
        name = f"tessera_graph_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        sys.path.insert(0, str(path.parent))  # the module's own imports beside it
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[name]
            raise
        finally:
            sys.path.remove(str(path.parent))
        return loaded
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ConfigError("graph.module", f"no module named {module!r}") from None
        raise


def iter_paths(graph: Graph, max_depth: int = 6) -> Iterator[tuple[str, LinkedField, bool]]:
    """(path from the root, linked field, reached under a list) for every linked
    field, each type entered once per path (cycles are cut)."""
    links = {(lf.type_name, lf.field_name): lf for lf in graph.linked_fields()}

    def walk(kind: type, path: str, under_list: bool, visiting: tuple[type, ...]
             ) -> Iterator[tuple[str, LinkedField, bool]]:
        if len(visiting) > max_depth:
            return
        definition = get_object_definition(kind, strict=True)
        for f in definition.fields:
            name = GRAPHQL_NAMES.get_graphql_name(f)
            here = f"{path}.{name}" if path else name
            lf = links.get((definition.name, name))
            if lf is not None:
                yield here, lf, under_list
            target = object_type(f.type)
            if target is not None and target not in visiting:
                listed = under_list or _is_list(f.type)
                yield from walk(target, here, listed, (*visiting, target))

    yield from walk(graph.query, "", False, (graph.query,))


def _is_list(kind: Any) -> bool:
    from strawberry.types.base import StrawberryList, StrawberryOptional

    while isinstance(kind, StrawberryOptional):
        kind = kind.of_type
    return isinstance(kind, StrawberryList)
