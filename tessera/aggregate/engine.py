"""Runs a RoutePlan: each request starts once what it reads from has answered.

    result = await run_plan(plan, ["123"], backends, scope, strategy="partial")
    result.status, result.body, result.partial      # 200, {...}, ["users"]

Every request is a task that first awaits the task it reads from, so
independent requests run together and the route takes its critical path.
Failures never raise out of a step: each step ends in an `Outcome`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..backends import MISSING, BackendClient, Backends, CallScope
from ..backends.urls import Unaddressable, fill, key_list, list_chunks, segment
from ..errors import BackendBadResponse, BackendError, InputError
from ..resilience import Stale
from .plan import Ref, RoutePlan, Step

STATUS_FOR = {"BACKEND_TIMEOUT": 504}


@dataclass(frozen=True)
class Outcome:
    value: Any = None
    code: str | None = None  # set when the request failed
    status: int | None = None
    fallback: bool = False  # failed, and its fallback value stands in
    missing: bool = False  # the backend answered 404

    @property
    def failed(self) -> bool:
        return self.code is not None and not self.fallback


@dataclass
class RouteResult:
    status: int
    body: Any
    partial: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)  # backend calls per service


def extract(value: Any, path: tuple[str, ...]) -> Any:
    """Follow a dot path; `*` maps the rest of the path over a list."""
    for i, part in enumerate(path):
        if part == "*":
            return [extract(v, path[i + 1:]) for v in value] if isinstance(value, list) else None
        value = value.get(part) if isinstance(value, dict) else None
    return value


def readable(value: Any, path: tuple[str, ...]) -> bool:
    """Can `extract(value, path)` follow `path` through `value`? A missing key or
    null is readable (it reads as null); a string where an object is expected, or
    an object where a list is expected, is not.

    >>> readable({"a": [{"b": 1}]}, ("a", "*", "b")), readable(["x"], ("user_id",))
    (True, False)
    """
    for i, part in enumerate(path):
        if value is None:
            return True
        if part == "*":
            return isinstance(value, list) and all(readable(v, path[i + 1:]) for v in value)
        if not isinstance(value, dict):
            return False
        value = value.get(part)
    return True


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _flatten(item)]
    return [] if value is None else [value]


Get = Callable[..., Awaitable[Any]]


async def _get_list(get: Get, client: BackendClient, template: str,
                    ids: list[str]) -> list[Any]:
    listable = [i for i in ids if "," not in i]
    calls = [get(client, key_list(template, "ids", chunk))
             for chunk in list_chunks(listable, client.max_batch_size)]
    calls += [get(client, f"{template.partition('?')[0]}/{segment(i)}", missing_ok=True)
              for i in ids if "," in i]
    out: list[Any] = []
    for answer in await asyncio.gather(*calls):
        if isinstance(answer, list):
            out.extend(answer)
        elif isinstance(answer, dict):
            out.append(answer)
        elif answer is not MISSING:
            raise BackendBadResponse(client.service, "answered a list request with "
                                     "neither a list nor an object")
    return out


class _Run:
    def __init__(self, plan: RoutePlan, wildcards: list[str], backends: Backends,
                 scope: CallScope, down: frozenset[str]) -> None:
        self.plan = plan
        self.bound = dict(zip(plan.wildcard_names, wildcards, strict=False))
        self.backends = backends
        self.scope = scope
        self.down = down
        self.tasks: dict[str, asyncio.Task[Outcome]] = {}
        self.stale: set[str] = set()  # services that answered from the stale store

    async def get(self, client: BackendClient, path: str, *, missing_ok: bool = False) -> Any:
        """One backend call, kept for stale-if-error, or answered from what was kept."""
        store = client.stale
        try:
            answer = await client.get_json(path, scope=self.scope, missing_ok=missing_ok)
        except BackendError as exc:
            caller = self.scope.headers.get("authorization")
            kept = exc if store is None else store.recall("route", path, exc, caller)
            if isinstance(kept, Stale):
                self.stale.add(client.service)
                return kept.value
            raise
        if store is not None and answer is not MISSING:
            store.remember("route", {path: answer}, self.scope.headers.get("authorization"))
        return answer

    async def step(self, step: Step) -> Outcome:
        outcome = await self._call(step)
        if outcome.code is None and not all(readable(outcome.value, path)
                                             for path in self.plan.reads.get(step.name, ())):
            # The route reads paths from this answer that it does not have: the
            # backend answered with the wrong shape.
            outcome = Outcome(code="BACKEND_BAD_RESPONSE")
            self.scope.report.fared(step.service, "bad_response")
        if outcome.code is not None and step.has_fallback:
            return replace(outcome, value=step.fallback, fallback=True)
        return outcome

    async def _call(self, step: Step) -> Outcome:
        target = await self._target(step)
        if isinstance(target, Outcome):
            return target
        if step.service in self.down:
            return Outcome(code="BACKEND_UNAVAILABLE")
        client = self.backends.clients[step.service]
        try:
            if isinstance(target, list):
                return Outcome(await _get_list(self.get, client, step.template, target))
            answer = await self.get(client, target, missing_ok=True)
        except BackendError as exc:
            return Outcome(code=exc.code, status=exc.status)
        return Outcome(None, missing=True) if answer is MISSING else Outcome(answer)

    async def _target(self, step: Step) -> Outcome | str | list[str]:
        """What to call: a path, a list of ids, or an Outcome when there is no call
        to make (the source failed, or gave nothing to ask for)."""
        source = step.source
        try:
            if source is None:
                return fill(step.template, self.bound)
            upstream = await self.tasks[source.request]
            if upstream.failed:
                return Outcome(code=upstream.code, status=upstream.status)
            value = extract(upstream.value, source.path)
            if source.is_list:
                ids = list(dict.fromkeys(str(v) for v in _flatten(value)))
                return ids if ids else Outcome([])
            if value is None or isinstance(value, dict | list):
                return Outcome(None)  # nothing to ask for: null, not a failure
            return fill(step.template, {step.placeholders[0]: str(value)})
        except Unaddressable:
            return Outcome(None, missing=True)  # "." or "..": no resource has that path


async def run_plan(plan: RoutePlan, wildcards: list[str], backends: Backends,
                   scope: CallScope, *, strategy: str | None = None,
                   down: frozenset[str] = frozenset()) -> RouteResult:
    strategy = strategy or plan.strategy
    loop = asyncio.get_running_loop()
    deadline = loop.time() + plan.timeout_ms / 1000
    if scope.deadline is not None:
        deadline = min(deadline, scope.deadline)
    run = _Run(plan, wildcards, backends, replace(scope, deadline=deadline), down)
    for step in plan.steps.values():
        run.tasks[step.name] = asyncio.create_task(run.step(step))
    outcomes: dict[str, Outcome] = {}
    pending = set(run.tasks.values())
    names = {task: name for name, task in run.tasks.items()}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, timeout=max(0, deadline - loop.time()),
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            refused: InputError | None = None
            for task in done:  # every one's outcome taken, so none is left unretrieved
                try:
                    outcomes[names[task]] = task.result()
                except InputError as exc:  # a value of the client's no backend URL can carry
                    refused = refused or exc
            if refused is not None:
                return RouteResult(400, {"error": str(refused), "code": refused.code})
            if strategy == "fail_fast":
                first = next((n for n in run.tasks if n in outcomes and outcomes[n].failed), None)
                if first is not None:
                    return _fail_fast(plan, first, outcomes[first])
    finally:
        for task in pending:
            task.cancel()
    for name in run.tasks:
        if name not in outcomes:  # still running at the route's deadline
            step = plan.steps[name]
            timed_out = Outcome(code="BACKEND_TIMEOUT")
            outcomes[name] = replace(timed_out, value=step.fallback, fallback=True) \
                if step.has_fallback else timed_out
            if strategy == "fail_fast" and not step.has_fallback:
                return _fail_fast(plan, name, outcomes[name])
    if plan.root is not None and outcomes[plan.root].missing:
        return RouteResult(404, {"error": "not found", "code": "NOT_FOUND"})
    partial = [f"{step.service};fallback" if outcomes[n].fallback else step.service
               for n, step in plan.steps.items() if outcomes[n].code is not None]
    partial += [f"{step.service};stale" for step in plan.steps.values()
                if step.service in run.stale]
    body = _render(plan.template, outcomes, omit_failed=strategy == "ignore")
    return RouteResult(200, body, list(dict.fromkeys(partial)))


_OMIT = object()


def _render(template: Any, outcomes: dict[str, Outcome], *, omit_failed: bool) -> Any:
    if isinstance(template, dict):
        rendered = {k: _render(v, outcomes, omit_failed=omit_failed) for k, v in template.items()}
        return {k: v for k, v in rendered.items() if v is not _OMIT}
    if isinstance(template, Ref):
        outcome = outcomes[template.request]
        if outcome.failed:
            return _OMIT if omit_failed else None
        return extract(outcome.value, template.path)
    return template


def _fail_fast(plan: RoutePlan, name: str, outcome: Outcome) -> RouteResult:
    service = plan.steps[name].service
    code = outcome.code or "BACKEND_UNAVAILABLE"
    return RouteResult(STATUS_FOR.get(code, 502),
                       {"error": f"Service unavailable: {service}", "service": service,
                        "code": code}, [service])
