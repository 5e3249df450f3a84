"""Logs: text for a terminal, or one JSON object per line for a log pipeline.

    configure_logging(settings.server)          # level and format from [server]
    log_request(kind="graphql", status=200, ...) # the one line per client request

Every line logged while a request is served carries its `request_id` (a
context variable set by the endpoint), so a backend failure's line can be
joined with its request's. Nothing logs headers: no Authorization, cookie or
API key ever reaches a log line.
"""

from __future__ import annotations

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
             created: float) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            + f".{int(created % 1 * 1000):03d}Z",
            "level": level.lower(), "logger": logger, "msg": message}
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
             created: float, *, start: str = "") -> str:
        text = start or f"{level} {logger}: {message}"
        rid = request_id.get()
        if rid is not None:
            text += f" request_id={rid}"
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


# The handler configure_logging installed, while it is still the only one: the
# request line is then formatted and written straight to it (a LogRecord, the
# logger's and handler's checks and Formatter.format were ~60 % of the line's cost).
_direct: logging.StreamHandler[Any] | None = None


def configure_logging(server: ServerSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
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
    handler = _direct
    if handler is None or access.handlers or access.filters or handler.filters \
            or logging.root.handlers != [handler] or handler.level > logging.INFO:
        access.info("request", extra=fields)  # logging set up otherwise: its usual way
        return
    formatter = handler.formatter
    assert isinstance(formatter, TextFormatter | JsonFormatter)
    text = formatter.line("INFO", access.name, "request", fields, time.time())
    handler.acquire()
    try:
        handler.stream.write(text + "\n")
        handler.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": text}))
    finally:
        handler.release()
