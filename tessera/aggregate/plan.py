"""Plans: a route's config turned into a checked dependency graph. Pure: no I/O.

    plan = build_plan("/api/orders/*/details", aggregation)
    plan.steps["users"].source        # Source(request="orders", path=("user_id",))

A plan is built for every route at start, so a bad route stops start-up with a
message naming the route and the key: an unknown source, a cycle, a duplicate
request name, a placeholder that no wildcard or source can fill, a malformed
template.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

from ..config import Aggregation, BackendRequest
from ..errors import ConfigError

_PLACEHOLDER = string.Formatter()
_REF = re.compile(r"^\$\.([A-Za-z_][A-Za-z0-9_]*)((?:\.[^.]+)*)$")


@dataclass(frozen=True)
class Source:
    request: str
    path: tuple[str, ...]

    @property
    def is_list(self) -> bool:
        return "*" in self.path


@dataclass(frozen=True)
class Step:
    name: str
    service: str
    template: str
    placeholders: tuple[str, ...]
    source: Source | None
    fallback: Any
    has_fallback: bool


@dataclass(frozen=True)
class Ref:
    """`$.name.a.*.b` in a response template."""

    request: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class RoutePlan:
    pattern: str
    wildcards: int
    timeout_ms: int
    strategy: str
    steps: dict[str, Step] = field(default_factory=dict)
    root: str | None = None
    template: Any = None
    wildcard_names: tuple[str, ...] = ()
    operation: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    # request name -> the paths the route reads from its answer (by later requests'
    # sources and by the response template); an answer they cannot be read from
    # is a bad response of that backend
    reads: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)

    def dependents(self, name: str) -> list[str]:
        return [s.name for s in self.steps.values() if s.source and s.source.request == name]


def _key(pattern: str, rest: str) -> str:
    return f'aggregations."{pattern}"{rest}'


def placeholders(template: str) -> tuple[str, ...]:
    """The `{name}` placeholders of a template; anything else in braces (a format
    spec, a conversion, an index) is refused, so that filling it cannot fail later.

    >>> placeholders("/orders/{order_id}?x={x}")
    ('order_id', 'x')
    """
    names = []
    for _, name, spec, conversion in _PLACEHOLDER.parse(template):
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise ValueError(f"'{{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}}' is not a plain {{name}}")
        names.append(name)
    return tuple(dict.fromkeys(names))


def _step(pattern: str, index: int, request: BackendRequest) -> Step:
    where = _key(pattern, f".backend_requests[{index}]")
    try:
        names = placeholders(request.path_template)
        request.path_template.format_map({name: "x" for name in names})
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"{where}.path_template", f"bad template: {exc}; placeholders "
                          "are plain names, e.g. /orders/{order_id}") from None
    source = None
    if request.source is not None:
        head, _, rest = request.source.partition(".")
        if not head or not rest:
            raise ConfigError(f"{where}.source", "must be 'request.path' (e.g. orders.user_id)")
        source = Source(head, tuple(rest.split(".")))
        if source.is_list and names:
            raise ConfigError(f"{where}.path_template", "a list source is sent as ?ids=...; "
                              "the template must have no placeholder")
        if not source.is_list and len(names) != 1:
            raise ConfigError(f"{where}.path_template", "a request with a source needs "
                              "exactly one placeholder for the value it reads")
    return Step(request.key, request.service, request.path_template, names, source,
                request.fallback, request.has_fallback)


def _parse_template(pattern: str, value: Any, names: set[str], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _parse_template(pattern, v, names, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, str) and value.startswith("$"):
        match = _REF.match(value)
        if not match:
            raise ConfigError(where, f"'{value}' is not $.name or $.name.path")
        ref = Ref(match.group(1), tuple(p for p in match.group(2).split(".") if p))
        if ref.request not in names:
            raise ConfigError(where, f"'{value}' names no request of this route "
                              f"(requests: {', '.join(sorted(names))})")
        return ref
    return value


def _check_acyclic(pattern: str, steps: dict[str, Step]) -> None:
    for name in steps:
        seen = [name]
        current = steps[name]
        while current.source is not None:
            if current.source.request in seen:
                cycle = " -> ".join([*seen, current.source.request])
                raise ConfigError(_key(pattern, ".backend_requests"), f"cycle: {cycle}")
            seen.append(current.source.request)
            current = steps[current.source.request]


def build_plan(pattern: str, agg: Aggregation) -> RoutePlan:
    if not pattern.startswith("/"):
        raise ConfigError(_key(pattern, ""), "a route pattern must start with /")
    wildcards = pattern.split("/").count("*")
    if any("*" in part and part != "*" for part in pattern.split("/")):
        raise ConfigError(_key(pattern, ""), "'*' must be a whole path segment")
    if agg.operation is not None:
        if agg.backend_requests:
            raise ConfigError(_key(pattern, ""), "give either operation or backend_requests")
        for name, value in agg.variables.items():
            if isinstance(value, str) and re.fullmatch(r"\$\d+", value) and \
                    not 1 <= int(value[1:]) <= wildcards:
                raise ConfigError(_key(pattern, f".variables.{name}"),
                                  f"'{value}' but the route has {wildcards} wildcard(s)")
        return RoutePlan(pattern, wildcards, agg.timeout_ms, agg.failure_strategy,
                         operation=agg.operation, variables=dict(agg.variables))
    if not agg.backend_requests:
        raise ConfigError(_key(pattern, ""), "needs backend_requests or an operation")
    steps: dict[str, Step] = {}
    for index, request in enumerate(agg.backend_requests):
        step = _step(pattern, index, request)
        if step.name in steps:
            raise ConfigError(_key(pattern, f".backend_requests[{index}]"),
                              f"two requests are named '{step.name}'; give one a 'name'")
        steps[step.name] = step
    for index, step in enumerate(steps.values()):
        if step.source is not None and step.source.request not in steps:
            raise ConfigError(_key(pattern, f".backend_requests[{index}].source"),
                              f"'{step.source.request}' is not a request of this route")
    _check_acyclic(pattern, steps)
    bound: list[str] = []
    for index, step in enumerate(steps.values()):
        if step.source is None:
            bound.extend(n for n in step.placeholders if n not in bound)
            if len(bound) > wildcards:
                raise ConfigError(_key(pattern, f".backend_requests[{index}].path_template"),
                                  f"placeholder '{bound[-1]}' has no wildcard or source to "
                                  f"fill it (the route has {wildcards} wildcard(s))")
    template = _parse_template(pattern, agg.response_template, set(steps),
                               _key(pattern, ".response_template"))
    first = next(iter(steps.values()))
    return RoutePlan(pattern, wildcards, agg.timeout_ms, agg.failure_strategy, steps,
                     root=first.name if first.source is None else None, template=template,
                     wildcard_names=tuple(bound), reads=_reads(steps, template))


def _refs(template: Any) -> list[Ref]:
    if isinstance(template, dict):
        return [ref for value in template.values() for ref in _refs(value)]
    return [template] if isinstance(template, Ref) else []


def _reads(steps: dict[str, Step], template: Any) -> dict[str, tuple[tuple[str, ...], ...]]:
    reads: dict[str, list[tuple[str, ...]]] = {}
    for step in steps.values():
        if step.source is not None:
            reads.setdefault(step.source.request, []).append(step.source.path)
    for ref in _refs(template):
        if ref.path:
            reads.setdefault(ref.request, []).append(ref.path)
    return {name: tuple(dict.fromkeys(paths)) for name, paths in reads.items()}
