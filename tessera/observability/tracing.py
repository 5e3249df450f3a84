"""OpenTelemetry tracing, optional: `pip install 'tessera-gateway[otel]'` and `[tracing] enabled`.

    setup(settings.tracing)                       # at start; no-op when disabled
    with span("backend users", {"tessera.service": "users"}):  # no-op when off
        headers = inject(headers)                 # adds W3C traceparent when on

A span per client request (its parent taken from the client's `traceparent`),
per DataLoader batch and per backend call; the backend call's `traceparent` is
sent to the backend. Off by default; when off, `active` is False and callers
skip all of it, so it costs nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from ..config import TracingSettings
from ..errors import ConfigError

active = False
_tracer: Any = None


_PACKAGES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")


def check(settings: TracingSettings, *, exporter_needed: bool = True) -> None:
    """ConfigError when tracing is on and its packages (the SDK and the OTLP
    exporter: the [otel] extra) cannot be imported."""
    if not settings.enabled:
        return
    wanted = _PACKAGES if exporter_needed else _PACKAGES[:1]
    missing = [name for name in wanted if not _importable(name)]
    if missing:
        raise ConfigError("tracing.enabled", f"needs the OpenTelemetry packages ("
                          f"{', '.join(missing)} cannot be imported): "
                          "pip install 'tessera-gateway[otel]'")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def setup(settings: TracingSettings, exporter: Any = None) -> None:
    """Start tracing as configured. `exporter` (tests) replaces the OTLP exporter."""
    global active, _tracer
    if not settings.enabled:
        active, _tracer = False, None
        return
    check(settings, exporter_needed=exporter is None)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}),
                              sampler=TraceIdRatioBased(settings.sample_ratio))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint) \
            if settings.otlp_endpoint else OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracer = provider.get_tracer("tessera")
    active = True


def span(name: str, attributes: dict[str, Any] | None = None, *,
         parent: Mapping[str, str] | None = None) -> Any:
    """A span around a block (a null context when tracing is off); `parent`: the
    incoming request's headers, whose `traceparent` the span continues."""
    if not active:
        return nullcontext()
    return _span(name, parent, attributes or {})


@contextmanager
def _span(name: str, parent_headers: Mapping[str, str] | None,
          attributes: dict[str, Any]) -> Iterator[Any]:
    from opentelemetry import propagate

    context = propagate.extract(dict(parent_headers)) if parent_headers is not None else None
    with _tracer.start_as_current_span(name, context=context, attributes=attributes) as s:
        yield s


def inject(headers: Mapping[str, str]) -> Mapping[str, str]:
    """`headers` plus the current span's W3C `traceparent` (as they are when off)."""
    if not active:
        return headers
    from opentelemetry import propagate

    carrier = dict(headers)
    propagate.inject(carrier)
    return carrier
