"""Operations: metrics that move by the right amounts, request log lines, /readyz
during a drain, metrics across workers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import gateway, gql, open_users_circuit
from prometheus_client import REGISTRY
from test_cli import running

from tessera.observability.logs import JsonFormatter, request_id

ORDER = 'query OrderPage { order(id: "42") { status user { name } items { stock } } }'


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.anyio
async def test_metrics_move_by_what_the_requests_did() -> None:
    before = {
        "ok": sample("tessera_requests_total", kind="graphql", operation="OrderPage",
                     outcome="ok"),
        "partial": sample("tessera_requests_total", kind="graphql", operation="OrderPage",
                          outcome="partial"),
        "orders": sample("tessera_backend_calls_total", service="orders", outcome="ok"),
        "users_down": sample("tessera_backend_calls_total", service="users",
                             outcome="unavailable"),
        "batches": sample("tessera_loader_batch_size_count", loader="stock"),
        "rest": sample("tessera_requests_total", kind="rest",
                       operation="/api/orders/*/details", outcome="ok"),
    }
    async with gateway() as client:
        for _ in range(3):
            await gql(client, ORDER)
        await client.get("/api/orders/123/details")
        text = (await client.get("/metrics")).text
    async with gateway({"backends": {"users": {"url": "http://127.0.0.1:9",
                                               "retries": 0}}}) as client:
        await gql(client, ORDER)
    assert sample("tessera_requests_total", kind="graphql", operation="OrderPage",
                  outcome="ok") == before["ok"] + 3
    assert sample("tessera_requests_total", kind="graphql", operation="OrderPage",
                  outcome="partial") == before["partial"] + 1
    assert sample("tessera_backend_calls_total", service="orders",
                  outcome="ok") >= before["orders"] + 4 + 1  # 4 queries + the REST route
    assert sample("tessera_backend_calls_total", service="users",
                  outcome="unavailable") == before["users_down"] + 1
    assert sample("tessera_loader_batch_size_count", loader="stock") == before["batches"] + 4
    assert sample("tessera_requests_total", kind="rest", operation="/api/orders/*/details",
                  outcome="ok") == before["rest"] + 1
    for name in ("tessera_request_duration_seconds_bucket", "tessera_requests_in_flight",
                 "tessera_backend_call_duration_seconds_bucket", "tessera_circuit_state"):
        assert name in text


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "body", "kind", "operation"), [
    ("/graphql", {"query": ORDER}, "graphql", "OrderPage"),
    ("/api/orders/123/details", None, "rest", "/api/orders/*/details")])
async def test_a_request_is_counted_after_its_answer_is_written(
        path: str, body: dict[str, str] | None, kind: str, operation: str) -> None:
    """The answer leaves before the request's bookkeeping (counter, histogram, log
    line), which is off its way out; the request is in flight while it is written."""
    async with gateway() as client:
        app = client.app  # type: ignore[attr-defined]
        counted = {"outcome": "ok", "kind": kind, "operation": operation}
        before = sample("tessera_requests_total", **counted)
        at_write: list[float] = []
        raw = json.dumps(body).encode() if body is not None else b""

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.body":
                at_write.append(sample("tessera_requests_total", **counted))
                at_write.append(sample("tessera_requests_in_flight"))

        async with app.router.lifespan_context(app) as state:
            await app({"type": "http", "method": "POST" if body else "GET", "path": path,
                       "raw_path": path.encode(), "root_path": "", "query_string": b"",
                       "headers": [(b"content-type", b"application/json")],
                       "state": dict(state or {})}, receive, send)
    assert at_write[0] == before and at_write[1] >= 1
    assert sample("tessera_requests_total", **counted) == before + 1


@pytest.mark.anyio
async def test_circuit_state_is_a_gauge() -> None:
    async with open_users_circuit():
        pass  # the gauge is process-wide: read it after the gateway has gone
    assert sample("tessera_circuit_state", service="users") == 2


def test_operation_names_are_bounded() -> None:
    from tessera.observability import metrics

    assert metrics.operation_label(None) == "anonymous"
    assert metrics.operation_label("Bad name; drop") == "other"
    assert metrics.operation_label("x" * 65) == "other"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("tessera.request"), logging.getLogger("tessera.backends")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        request_id.set(None)


@pytest.mark.anyio
async def test_one_json_line_per_request_with_the_clients_request_id(
        json_log: io.StringIO) -> None:
    settings = {"backends": {"users": {"url": "http://127.0.0.1:9", "retries": 0}}}
    async with gateway(settings) as client:
        await client.post("/graphql", json={"query": ORDER}, headers={
            "x-request-id": "req-77", "authorization": "Bearer s3cret-token"})
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    [request] = [line for line in lines if line["logger"] == "tessera.request"]
    assert request["request_id"] == "req-77"
    assert request["operation"] == "OrderPage" and request["status"] == 200
    assert request["outcome"] == "partial"
    assert request["backend_calls"] == {"orders": 1, "users": 1, "inventory": 1}
    assert request["error_codes"] == ["BACKEND_UNAVAILABLE"]
    assert isinstance(request["duration_ms"], float)
    failures = [line for line in lines if line["logger"] == "tessera.backends"]
    assert failures and all(line["request_id"] == "req-77" for line in failures)
    assert "s3cret-token" not in json_log.getvalue()


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tessera.toml"
    path.write_text(text)
    return str(path)


def test_sigterm_drains_readyz_goes_503_and_the_request_in_flight_finishes(
        tmp_path: Path) -> None:
    from test_cli import free_port_run

    port = free_port_run(1)
    # The request takes 1.5 s; the drain delay ends at 0.8 s, so uvicorn's graceful
    # shutdown starts while the request is still in flight and must let it finish.
    config = _config(tmp_path, "[server]\ndrain_delay_s = 0.5\nshutdown_grace_s = 10\n"
                     "[backends.users]\ntimeout_ms = 5000\n"
                     "fault = { latency_ms = 1500 }\n")
    base = f"http://127.0.0.1:{port}"
    with running("serve", "--config", config, "--port", str(port),
                 ready_url=f"{base}/readyz") as proc:
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        answers: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{base}/graphql", json={"query": '{ user(id: "7") { name } }'}, timeout=10)))
        slow.start()
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.2)
        draining = httpx.get(f"{base}/readyz", timeout=2)
        slow.join(10)
        proc.wait(timeout=15)  # it exits on its own (uvicorn re-raises SIGTERM: -15)
        assert proc.returncode in (0, -signal.SIGTERM)
    assert draining.status_code == 503 and draining.json()["status"] == "draining"
    assert answers and answers[0].status_code == 200
    assert answers[0].json() == {"data": {"user": {"name": "Aziz"}}}


def test_metrics_add_up_across_two_workers(tmp_path: Path) -> None:
    from test_cli import free_port_run

    port = free_port_run(1)
    config = _config(tmp_path, "[server]\nworkers = 2\nrequest_log = false\n")
    base = f"http://127.0.0.1:{port}"
    with running("serve", "--config", config, "--port", str(port),
                 ready_url=f"{base}/healthz"):
        for _ in range(20):  # new connections: both workers get some
            with httpx.Client() as client:
                assert client.post(f"{base}/graphql", json={
                    "query": "query Twenty { order(id: \"42\") { id } }"}).status_code == 200
        text = httpx.get(f"{base}/metrics").text
    total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("tessera_requests_total{") and 'operation="Twenty"' in line)
    assert total == 20


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_request_line_written_directly_is_the_line_logging_writes(
        log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The request line skips logging's record machinery while the handler
    configure_logging installed is the only one; the line must not change."""
    from tessera.config import parse_settings
    from tessera.observability.logs import configure_logging, log_request

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    access = logging.getLogger("tessera.request")
    fields = {"kind": "graphql", "status": 200, "operation": "OrderPage", "outcome": "ok",
              "duration_ms": 1.5, "backend_calls": {"orders": 1}, "error_codes": []}
    try:
        configure_logging(parse_settings({"server": {"log_format": log_format}}).server)
        request_id.set("req-1")
        log_request(**fields)  # written directly
        access.addFilter(lambda record: True)  # logging is no longer as configured
        log_request(**fields)  # through a LogRecord
        access.filters.clear()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        request_id.set(None)
    direct, logged = capsys.readouterr().err.splitlines()[-2:]
    if log_format == "json":
        direct, logged = (json.loads(line) for line in (direct, logged))
        assert direct.pop("ts")[:16] == logged.pop("ts")[:16]
    assert direct == logged
    assert "request_id" in str(direct) and "OrderPage" in str(direct)


@pytest.fixture
def text_log(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Logging as it was after the test (which calls `_serve_logging()`)."""
    from tessera.observability import logs

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        yield capsys
    finally:
        logs.write_lines()
        root.handlers[:], level = saved
        root.setLevel(level)
        request_id.set(None)


def _serve_logging() -> None:
    """Logging as `tessera serve` configures it (text, to stderr; in the test's own
    phase, so that pytest's capture handler is not among the handlers)."""
    from tessera.config import parse_settings
    from tessera.observability.logs import configure_logging

    configure_logging(parse_settings({}).server)


@pytest.mark.anyio
async def test_request_lines_are_written_together_a_moment_later_in_order(
        text_log: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """In the server a request line is noted, then written with the others noted
    by then: LINES_S later, or at once when MAX_LINES wait or another line is
    logged (which then comes after them). Each keeps its own request id."""
    from tessera.observability import logs

    _serve_logging()
    monkeypatch.setattr(logs, "LINES_S", 3600)

    def note(rid: str | None, status: int) -> None:
        request_id.set(rid)
        logs.log_request(kind="graphql", status=status, outcome="ok")

    note("req-a", 200)
    note("req-b", 201)
    note(None, 202)
    assert text_log.readouterr().err == ""  # noted, not written yet
    request_id.set("req-c")
    logging.getLogger("tessera.backends").warning("backend down")
    lines = text_log.readouterr().err.splitlines()
    assert [line.split(" kind=")[0] for line in lines] == [
        "INFO tessera.request: request request_id=req-a",
        "INFO tessera.request: request request_id=req-b",
        "INFO tessera.request: request",  # no request id: none borrowed from another
        "WARNING tessera.backends: backend down request_id=req-c"]
    assert [line.split("status=")[1][:3] for line in lines[:3]] == ["200", "201", "202"]

    monkeypatch.setattr(logs, "MAX_LINES", 2)
    note("req-d", 200)
    assert text_log.readouterr().err == ""
    note("req-e", 200)
    assert text_log.readouterr().err.count("INFO tessera.request") == 2

    monkeypatch.setattr(logs, "LINES_S", 0)
    note("req-f", 200)
    assert text_log.readouterr().err == ""
    for _ in range(3):
        await asyncio.sleep(0)  # the write, due at once here, runs on the loop
    assert "request_id=req-f" in text_log.readouterr().err


@pytest.mark.anyio
async def test_request_lines_still_waiting_are_written_when_the_app_stops(
        text_log: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tessera.observability import logs

    _serve_logging()
    monkeypatch.setattr(logs, "LINES_S", 3600)
    async with gateway() as client:
        for rid in ("req-1", "req-2"):
            await client.post("/graphql", json={"query": ORDER}, headers={"x-request-id": rid})
        assert "tessera.request" not in text_log.readouterr().err
    written = text_log.readouterr().err
    assert "request_id=req-1" in written and "request_id=req-2" in written


def test_kept_figures_are_prometheus_clients_own_once_flushed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts and observations kept in front of prometheus-client (metrics.child) add
    up, once flushed, to what prometheus-client's own inc and observe give: each
    bucket, the sum and the count, values on a bound, past the last one, negative
    or NaN included; nothing reaches the metric before a flush is due."""
    import math

    from prometheus_client import CollectorRegistry, Counter, Histogram

    from tessera.observability import metrics

    registry = CollectorRegistry()
    made = {name: kind(name, "test", ["l"], registry=registry,
                       **({"buckets": (0.001, 0.01, 1)} if kind is Histogram else {}))
            for name, kind in [("direct_calls", Counter), ("kept_calls", Counter),
                               ("direct_seconds", Histogram), ("kept_seconds", Histogram)]}
    values = [0.0, 0.001, 0.0011, 0.01, 0.5, 1.0, 3.0, 1e12, -2.0, float("nan"), 0.001]
    for value in values:
        made["direct_calls"].labels("a").inc()
        made["direct_seconds"].labels("a").observe(value)
        metrics.child(made["kept_calls"], "a").inc()
        metrics.child(made["kept_seconds"], "a").observe(value)

    def figures(prefix: str) -> dict[str, float]:
        return {sample.name.replace(prefix, "") + str(sample.labels.get("le")): sample.value
                for family in registry.collect() for sample in family.samples
                if sample.name.startswith(prefix) and not sample.name.endswith("_created")}

    monkeypatch.setattr(metrics, "_flushed", [time.monotonic()])
    metrics.flush_due(idle=False)  # requests in flight, flushed just now: kept
    assert figures("kept_calls")["_totalNone"] == 0
    monkeypatch.setattr(metrics, "FLUSH_S", 0.0)
    metrics.flush_due(idle=False)  # FLUSH_S since the last flush: added
    direct, kept = figures("direct_seconds"), figures("kept_seconds")
    assert direct.keys() == kept.keys() and len(direct) == 6
    for name, value in direct.items():
        assert value == kept[name] or (math.isnan(value) and math.isnan(kept[name])), name
    assert figures("kept_calls") == figures("direct_calls") == {"_totalNone": len(values)}
