"""Logs: text for a terminal, or one JSON object per line for a log pipeline.

    configure_logging(settings.server)          # level and format from [server]
    log_request(kind="graphql", status=200, ...) # the one line per client request

Every line logged while a request is served carries its `request_id` (a
context variable set by the endpoint), so a backend failure's line can be
joined with its request's. Nothing logs headers: no Authorization, cookie or
API key ever reaches a log line.

The request lines are written in batches: a request notes its line's fields
(and time and request id) and the lines noted are formatted and written
together, with one write, LINES_S later (or at once when MAX_LINES are
waiting, when any other line is logged, when the server stops, and outside an
event loop). Formatted one at a time among a request's other work, a line cost
~25 us of CPU; together, a few. A line reaches the log at most LINES_S late,
and in order with every other line.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
from typing import Any

import orjson

from ..config import ServerSettings

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                        default=None)
access = logging.getLogger("tessera.request")
CURRENT: Any = object()  # a line's request id: the one of the context it is formatted in

# Record attributes that are not extra fields; uvicorn's `color_message` (the same
# message with terminal escape codes) is never wanted in a log line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _extra(record)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return self.line(record.levelname, record.name, record.getMessage(), fields,
                         record.created)

    @staticmethod
    def line(level: str, logger: str, message: str, fields: dict[str, Any],
             created: float, rid: str | None = CURRENT) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            + f".{int(created % 1 * 1000):03d}Z",
            "level": level.lower(), "logger": logger, "msg": message}
        if rid is CURRENT:
            rid = request_id.get()
        if rid is not None:
            line["request_id"] = rid
        line.update(fields)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)  # the message, and any exception after it
        return self.line(record.levelname, record.name, "", _extra(record), 0.0,
                         start=text)

    @staticmethod
    def line(level: str, logger: str, message: str, fields: dict[str, Any],
             created: float, rid: str | None = CURRENT, *, start: str = "") -> str:
        text = start or f"{level} {logger}: {message}"
        if rid is CURRENT:
            rid = request_id.get()
        if rid is not None:
            text += f" request_id={rid}"
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


LINES_S = 0.01  # how long a noted request line may wait to be written
MAX_LINES = 256  # ... and how many may wait

# request lines noted and not yet written: (time, request id, fields)
_lines: list[tuple[float, str | None, dict[str, Any]]] = []
_write_on: asyncio.AbstractEventLoop | None = None  # the loop a write is due on


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs: every other line, and a flush (at
    exit too), writes the waiting request lines first."""

    def emit(self, record: logging.LogRecord) -> None:
        if _lines:
            write_lines()
        super().emit(record)

    def flush(self) -> None:
        if _lines and self is _direct:
            write_lines()
        super().flush()


# The handler configure_logging installed, while it is still the only one: the
# request line is then formatted and written straight to it (a LogRecord, the
# logger's and handler's checks and Formatter.format were ~60 % of the line's cost).
_direct: _Stderr | None = None


def configure_logging(server: ServerSettings) -> None:
    write_lines()  # what an earlier configuration noted, to its own handler
    handler = _Stderr(sys.stderr)
    handler.setFormatter(JsonFormatter() if server.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    global _direct
    _direct = handler
    root.setLevel(server.log_level.upper())
    # httpx logs every backend request at INFO; Tessera reports failures itself.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    access.disabled = not server.request_log
    # No format here prints the thread, process or caller of a line: skip finding
    # them for every record (the logging HOWTO's "Optimization"; ~10 % of the
    # request line's cost).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None


def log_request(**fields: Any) -> None:
    """The one line per client request (at INFO, on `tessera.request`)."""
    if access.disabled or not access.isEnabledFor(logging.INFO):
        return
    handler, root = _direct, logging.root
    if handler is None or access.handlers or access.filters or handler.filters \
            or len(root.handlers) != 1 or root.handlers[0] is not handler \
            or handler.level > logging.INFO:
        access.info("request", extra=fields)  # logging set up otherwise: its usual way
        return
    _lines.append((time.time(), request_id.get(), fields))
    if len(_lines) >= MAX_LINES:
        write_lines()
        return
    global _write_on
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not in the server (a script, a test): at once
        write_lines()
        return
    if _write_on is not loop:
        _write_on = loop
        loop.call_later(LINES_S, write_lines)


def write_lines() -> None:
    """Format the request lines noted so far and write them, in one write."""
    global _write_on
    _write_on = None
    if not _lines:
        return
    noted = _lines[:]
    _lines.clear()
    handler = _direct
    if handler is None:
        return
    formatter = handler.formatter
    assert isinstance(formatter, TextFormatter | JsonFormatter)
    name = access.name
    text = "".join([formatter.line("INFO", name, "request", fields, created, rid) + "\n"
                    for created, rid, fields in noted])
    handler.acquire()
    try:
        handler.stream.write(text)
        logging.StreamHandler.flush(handler)
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": text}))
    finally:
        handler.release()
