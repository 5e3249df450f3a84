"""The line protocol (`tessera stdio`), SPEC section 4.

JSON envelopes `{"src", "dest", "body"}` on stdin, one reply each on stdout,
flushed. A message may span several lines: messages are framed by balancing
braces (strings and escapes respected), not by newlines. Bad input gets an
`error` reply and the process keeps reading.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from pydantic import ValidationError

from .aggregate.routes import Aggregator, build_plans
from .backends import Backends
from .config import SERVICES, Aggregation, Settings, shipped_routes
from .errors import ConfigError
from .schema import build_schema

MAX_MESSAGE_CHARS = 1024 * 1024


class Framer:
    """Splits a character stream into top-level JSON texts (or bad fragments)."""

    def __init__(self) -> None:
        self._buf: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._size = 0

    def feed(self, text: str) -> Iterator[tuple[bool, str]]:
        """Yield (ok, text): ok=True for a balanced message, False for garbage."""
        for ch in text:
            if self._depth == 0:
                if ch in "{[":
                    if self._buf:
                        yield False, "".join(self._buf)
                    self._buf, self._size = [ch], 1
                    self._depth = 1
                elif not ch.isspace():
                    self._buf.append(ch)
                elif self._buf:  # garbage runs to the end of its line
                    if ch == "\n":
                        yield False, "".join(self._buf)
                        self._buf = []
                    else:
                        self._buf.append(ch)
                continue
            self._buf.append(ch)
            self._size += 1
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                self._depth -= 1
                if self._depth == 0:
                    yield True, "".join(self._buf)
                    self._buf = []
            if self._size > MAX_MESSAGE_CHARS:
                yield False, "".join(self._buf[:80])
                self._reset()

    def _reset(self) -> None:
        self._buf, self._depth, self._in_string, self._escape, self._size = [], 0, False, False, 0


def short_form(pattern: str, services: Any) -> dict[str, Any]:
    """`{"backends": [...]}`: those requests of the shipped definition of the route."""
    shipped = shipped_routes().get(pattern)
    if shipped is None or "backend_requests" not in shipped:
        raise ConfigError(f'aggregations."{pattern}"', "the short form needs a shipped route "
                          f"with backend requests ({', '.join(shipped_routes())})")
    if not isinstance(services, list) or not all(s in SERVICES for s in services):
        raise ConfigError(f'aggregations."{pattern}".backends',
                          f"must list services among {', '.join(SERVICES)}")
    kept = [r for r in shipped["backend_requests"] if r["service"] in services]
    names = {r.get("name", r["service"]) for r in kept}
    template = {k: v for k, v in shipped["response_template"].items()
                if v.split(".")[1] in names}
    return {**shipped, "backend_requests": kept, "response_template": template}


class Session:
    def __init__(self, settings: Settings, backends: Backends) -> None:
        self.schema = build_schema(settings)
        self.aggregator = Aggregator.from_settings(settings, self.schema)
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
            for pattern, spec in raw.items():
                if isinstance(spec, dict) and set(spec) == {"backends"}:
                    spec = short_form(pattern, spec["backends"])
                routes[pattern] = Aggregation.model_validate(spec)
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
        result = await self.aggregator.handle(path, self.backends, headers, strategy=strategy,
                                              down=frozenset(failed))
        reply: dict[str, Any] = {"type": "api_response", "in_reply_to": msg_id,
                                 "status": result.status, "body": result.body}
        if result.partial:
            reply["headers"] = {"X-Tessera-Partial": ",".join(result.partial)}
        return reply


def _error(msg_id: Any, code: str, text: str) -> dict[str, Any]:
    return {"type": "error", "in_reply_to": msg_id, "code": code, "text": text}


def _write(out: TextIO, dest: Any, body: dict[str, Any]) -> None:
    out.write(json.dumps({"src": "gateway", "dest": dest, "body": body}) + "\n")
    out.flush()


async def serve_stdio(settings: Settings, stdin: TextIO = sys.stdin,
                      stdout: TextIO = sys.stdout) -> None:
    loop = asyncio.get_running_loop()
    backends = Backends.open(settings)
    session = Session(settings, backends)
    framer = Framer()
    try:
        while line := await loop.run_in_executor(None, stdin.readline):
            for ok, text in framer.feed(line if line.endswith("\n") else line + "\n"):
                if not ok:
                    _write(stdout, None, _error(None, "bad_json", f"not JSON: {text[:80]!r}"))
                    continue
                try:
                    message = json.loads(text)
                except ValueError as exc:
                    _write(stdout, None, _error(None, "bad_json", f"not JSON: {exc}"))
                    continue
                body = await session.reply_to(message)
                dest = message.get("src") if isinstance(message, dict) else None
                _write(stdout, dest, body)
    finally:
        await backends.aclose()
