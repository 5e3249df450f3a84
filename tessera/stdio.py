"""The line protocol (`tessera stdio`).

JSON envelopes `{"src", "dest", "body"}` on stdin, one reply each on stdout,
flushed. A message may span several lines (see `tessera.framing`). Every bad
message gets its own `error` reply and the process keeps reading; it exits 0
at the end of input, whatever came before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from typing import IO, Any

from pydantic import ValidationError

from .aggregate.routes import build_plans
from .backends import Backends
from .backends.urls import header_value_ok
from .config import Aggregation, Settings
from .errors import ConfigError
from .framing import MAX_MESSAGE_BYTES, Frame, Framer
from .gateway import Gateway

log = logging.getLogger("tessera.stdio")


def short_form(pattern: str, services: Any, shipped_routes: dict[str, Any],
               known: list[str]) -> dict[str, Any]:
    """`{"backends": [...]}`: those requests of the graph's own definition of the route."""
    shipped = shipped_routes.get(pattern)
    if shipped is None or "backend_requests" not in shipped:
        raise ConfigError(f'aggregations."{pattern}"', "the short form needs one of the "
                          "graph's routes with backend requests "
                          f"({', '.join(shipped_routes) or 'it has none'})")
    if not isinstance(services, list) or not all(s in known for s in services):
        raise ConfigError(f'aggregations."{pattern}".backends',
                          f"must list services among {', '.join(known)}")
    kept = [r for r in shipped["backend_requests"] if r["service"] in services]
    names = {r.get("name", r["service"]) for r in kept}
    template = {k: v for k, v in shipped["response_template"].items()
                if v.split(".")[1] in names}
    return {**shipped, "backend_requests": kept, "response_template": template}


class Session:
    def __init__(self, gateway: Gateway, backends: Backends) -> None:
        self.schema = gateway.schema
        self.aggregator = gateway.aggregator
        self.routes = dict(gateway.graph.routes)
        self.backends = backends

    async def reply_to(self, message: Any) -> dict[str, Any]:
        if not isinstance(message, dict) or not isinstance(message.get("body"), dict):
            return _error(None, "bad_message", "a message is {\"src\", \"dest\", \"body\": {...}}")
        body = message["body"]
        msg_id = body.get("msg_id")
        kind = body.get("type")
        if kind == "init":
            return self._init(body, msg_id)
        if kind == "api_request":
            return await self._api_request(message, body, msg_id)
        return _error(msg_id, "unknown_type", f"unknown message type {kind!r}; "
                      "expected init or api_request")

    def _init(self, body: dict[str, Any], msg_id: Any) -> dict[str, Any]:
        raw = body.get("aggregations", {})
        if not isinstance(raw, dict):
            return _error(msg_id, "bad_config", "aggregations must be an object")
        try:
            routes = {}
            known = list(self.backends.clients)
            for pattern, spec in raw.items():
                if isinstance(spec, dict) and set(spec) == {"backends"}:
                    spec = short_form(pattern, spec["backends"], self.routes, known)
                routes[pattern] = Aggregation.model_validate(spec)
                for index, request in enumerate(routes[pattern].backend_requests):
                    if request.service not in known:
                        raise ConfigError(f'aggregations."{pattern}".backend_requests'
                                          f"[{index}].service", f"route {pattern} names "
                                          f"backend '{request.service}', which the config "
                                          f"lacks (backends: {', '.join(known)})")
            self.aggregator.plans = build_plans(routes, self.schema)
        except ConfigError as exc:
            return _error(msg_id, "bad_config", str(exc))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return _error(msg_id, "bad_config", f"{where}: {first['msg']}")
        return {"type": "init_ok", "in_reply_to": msg_id}

    async def _api_request(self, envelope: dict[str, Any], body: dict[str, Any],
                           msg_id: Any) -> dict[str, Any]:
        method = body.get("method", "GET")
        path = body.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            return _error(msg_id, "bad_request", "api_request needs a path starting with /")
        failed = body.get("failed_services", envelope.get("failed_services", []))
        if not isinstance(failed, list) or not all(isinstance(s, str) for s in failed):
            return _error(msg_id, "bad_request", "failed_services must be a list of names")
        path, _, query = path.partition("?")
        strategy = body.get("failure_strategy", envelope.get("failure_strategy"))
        for pair in query.split("&"):
            if pair.startswith("failure_strategy=") and strategy is None:
                strategy = pair.partition("=")[2]
        if method != "GET":
            return {"type": "api_response", "in_reply_to": msg_id, "status": 405,
                    "body": {"error": "only GET is served"}}
        headers = {k.lower(): v for k, v in body.get("headers", {}).items()
                   if isinstance(v, str)} if isinstance(body.get("headers"), dict) else {}
        unsendable = sorted(name for name, value in headers.items()
                            if not header_value_ok(value))
        if unsendable:  # HTTP's own parser refuses these; here the edge is this reader
            return _error(msg_id, "bad_request", f"header {unsendable[0]!r} holds a line "
                          "break, a NUL or a character HTTP/1.1 cannot carry")
        result = await self.aggregator.handle(path, self.backends, headers, strategy=strategy,
                                              down=frozenset(failed))
        reply: dict[str, Any] = {"type": "api_response", "in_reply_to": msg_id,
                                 "status": result.status, "body": result.body}
        if result.partial:
            reply["headers"] = {"X-Tessera-Partial": ",".join(result.partial)}
        return reply


def _error(msg_id: Any, code: str, text: str) -> dict[str, Any]:
    return {"type": "error", "in_reply_to": msg_id, "code": code, "text": text}


def _write(out: IO[bytes], dest: Any, body: dict[str, Any]) -> None:
    try:
        text = json.dumps({"src": "gateway", "dest": dest, "body": body}, allow_nan=False)
    except (TypeError, ValueError):  # nothing we reply with may be invalid JSON
        text = json.dumps({"src": "gateway", "dest": None, "body": _error(
            None, "internal", "the reply could not be encoded as JSON")})
    out.write(text.encode("utf-8") + b"\n")
    out.flush()


async def _lines(stream: IO[bytes]) -> AsyncIterator[bytes | None]:
    """Lines of bytes as they arrive; None for a line longer than a message may be
    (it is dropped while it is read, never buffered whole)."""
    loop = asyncio.get_running_loop()
    pending = bytearray()
    dropping = False
    while piece := await loop.run_in_executor(None, stream.readline, 64 * 1024):
        ended = piece.endswith(b"\n")
        if dropping:
            dropping = not ended
            continue
        pending += piece
        if len(pending) > MAX_MESSAGE_BYTES:
            pending.clear()
            dropping = not ended
            yield None
        elif ended:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


async def _answer(session: Session, frame: Frame, out: IO[bytes]) -> None:
    if frame.error is not None:
        _write(out, None, _error(None, "bad_json", frame.error))
        return
    message = frame.value
    dest = message.get("src") if isinstance(message, dict) else None
    try:
        body = await session.reply_to(message)
    except Exception:  # a bug must cost one reply, never the process
        log.exception("stdio: unexpected error answering a message")
        body = _error(_msg_id(message), "internal", "Unexpected error.")
    _write(out, dest, body)


def _msg_id(message: Any) -> Any:
    body = message.get("body") if isinstance(message, dict) else None
    return body.get("msg_id") if isinstance(body, dict) else None


async def serve_stdio(settings: Settings, stdin: IO[bytes] | None = None,
                      stdout: IO[bytes] | None = None) -> None:
    """Answer every message on `stdin` (bytes) until its end."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    gateway = Gateway.build(settings)
    backends = gateway.open_backends()
    session = Session(gateway, backends)
    framer = Framer()
    try:
        async for line in _lines(stdin):
            for frame in framer.feed(line):
                await _answer(session, frame, stdout)
        for frame in framer.finish():
            await _answer(session, frame, stdout)
    finally:
        await backends.aclose()
