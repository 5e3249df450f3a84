"""OpenTelemetry: a span per request, per loader batch and per backend call, the
client's traceparent continued and a traceparent sent to every backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Recorder, gateway

from tessera.config import TracingSettings
from tessera.observability import tracing

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.setup(TracingSettings(enabled=True), exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.setup(TracingSettings())  # off again for the other tests


@pytest.mark.anyio
async def test_spans_nest_and_traceparent_reaches_the_backends(
        spans: InMemorySpanExporter) -> None:
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        response = await client.post("/graphql", headers={"traceparent": TRACEPARENT},
                                     json={"query": '{ order(id: "42") { user { name } } }'})
    assert response.status_code == 200
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert {"graphql request", "loader orders", "loader users", "backend orders",
            "backend users"} <= set(finished)
    request = finished["graphql request"]
    assert format(request.context.trace_id, "032x") == CLIENT_TRACE  # continued
    by_id = {s.context.span_id: s for s in spans.get_finished_spans()}

    def ancestors(span: Any) -> list[str]:
        names = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    assert ancestors(finished["backend users"])[:2] == ["loader users", "graphql request"]
    for sent in recorder.requests:
        version, trace_id, span_id, flags = sent.headers["traceparent"].split("-")
        assert trace_id == CLIENT_TRACE
        assert by_id[int(span_id, 16)].name.startswith("backend ")


@pytest.mark.anyio
async def test_off_by_default_no_spans_and_no_traceparent() -> None:
    assert tracing.active is False
    recorder = Recorder()
    async with gateway(transport=recorder) as client:
        await client.post("/graphql", json={"query": '{ order(id: "42") { id } }'})
    assert all("traceparent" not in r.headers for r in recorder.requests)


def test_enabling_tracing_without_the_packages_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from tessera.errors import ConfigError

    real = builtins.__import__

    def no_otel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    with pytest.raises(ConfigError, match=r"pip install 'tessera-gateway\[otel\]'"):
        tracing.setup(TracingSettings(enabled=True))
    assert tracing.active is False
