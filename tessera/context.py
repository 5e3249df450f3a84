"""The per-request Context every resolver sees as `info.context`.

    ctx = new_context(backends, request.headers, timeout_ms=5000)
    await ctx.loaders[users_binding].load("7")

Built once per client request (never global): it holds that request's loaders,
its id, the headers forwarded to backends and its deadline.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backends import AnswerBudget, Backends, CallScope
from .backends.scope import Tab
from .loaders import Loaders, make_loaders

if TYPE_CHECKING:
    from .compose.binding import Rest

FORWARDED_HEADERS = ("authorization", "accept-language", "x-request-id")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True)
class Context:
    loaders: Loaders
    request_id: str
    scope: CallScope
    memo: dict[Any, Any] = field(default_factory=dict)  # per-request, per-document-field


def first_values(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI request's headers (`scope["headers"]`, names in lower case) by name,
    the first value of each, read in one pass: what the endpoints hand on, instead
    of Starlette's Headers, which scan and decode the list on every lookup."""
    found: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        if key not in found:
            found[key] = value.decode("latin-1")
    return found


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The FORWARDED_HEADERS the client sent."""
    return {name: headers[name] for name in FORWARDED_HEADERS if name in headers}


def request_id_from(headers: Mapping[str, str]) -> str:
    """The client's X-Request-Id when it is a sane token, else a new one."""
    given = headers.get("x-request-id")
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return os.urandom(16).hex()  # as uuid4().hex: 32 random hex digits, 5x cheaper


def call_scope(headers: Mapping[str, str], *, timeout_ms: int | None = None,
               request_id: str | None = None, budget: AnswerBudget | None = None
               ) -> CallScope:
    """The forwarded headers (with the request id), deadline and account with the
    process's `budget` for backend answers of one client request; the request's
    server calls `scope.release()` when it ends."""
    forwarded = forwarded_headers(headers)
    if not request_id:
        request_id = request_id_from(forwarded)
    forwarded["x-request-id"] = request_id
    deadline = None
    if timeout_ms is not None:
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
    return CallScope(headers=forwarded, deadline=deadline,
                     tab=None if budget is None else Tab(budget))


def new_context(backends: Backends, headers: Mapping[str, str], *,
                timeout_ms: int | None = None, batching: bool = True,
                request_id: str | None = None,
                named: dict[str, Rest] | None = None) -> Context:
    """`named`: the graph's bindings by name (`loaders.NAME` in plain resolvers)."""
    scope = call_scope(headers, timeout_ms=timeout_ms, request_id=request_id,
                       budget=backends.answers)
    return Context(loaders=make_loaders(backends, scope, named, batching=batching),
                   request_id=scope.headers["x-request-id"], scope=scope)
