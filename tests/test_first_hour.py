"""What a new user meets in the first hour: version, config errors instead of
crashes, a busy port, log lines."""

from __future__ import annotations

import importlib.util
import io
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tessera.observability.logs import JsonFormatter, TextFormatter, request_id

ROOT = Path(__file__).resolve().parent.parent
TESSERA = [sys.executable, "-m", "tessera"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TESSERA, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_version_names_the_installed_distribution() -> None:
    from importlib.metadata import version

    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"tessera {version('tessera-gateway')}"


def _exporter_importable() -> bool:
    try:
        return importlib.util.find_spec(
            "opentelemetry.exporter.otlp.proto.http.trace_exporter") is not None
    except ImportError:
        return False


@pytest.mark.skipif(_exporter_importable(), reason="the OTLP exporter is installed here")
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_tracing_without_the_exporter_is_a_config_error(tmp_path: Path, command: str) -> None:
    config = tmp_path / "tessera.toml"
    config.write_text("[tracing]\nenabled = true\n")
    done = run(command, *(["--config"] if command == "serve" else []), str(config))
    assert done.returncode == 2, done.stderr
    assert "tracing.enabled" in done.stderr
    assert "pip install 'tessera-gateway[otel]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_demo_backends_on_a_taken_port_says_which_and_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("demo-backends", "--only", "users", "--port", str(port))
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 (for the users service)" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def _record(message: str, **extra: object) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "uvicorn.error", "levelname": "INFO",
                                  "levelno": logging.INFO, "msg": message, **extra})


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()],
                         ids=["text", "json"])
def test_log_lines_carry_the_request_id_and_never_escape_codes(
        formatter: logging.Formatter) -> None:
    token = request_id.set("req-42")
    try:
        line = formatter.format(_record("Started server process",
                                        color_message="\x1b[32mStarted\x1b[0m"))
    finally:
        request_id.reset(token)
    assert "req-42" in line
    assert "\x1b" not in line and "color_message" not in line


def test_uvicorns_own_lines_in_a_real_server_log_have_no_escape_codes(tmp_path: Path) -> None:
    """`tessera serve` as users run it: its start-up lines, text format."""
    port = _free_port()
    log = io.BytesIO()
    proc = subprocess.Popen([*TESSERA, "serve", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        for _ in range(40):
            line = proc.stdout.readline()
            log.write(line)
            if b"Uvicorn running" in line or not line:
                break
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()
    text = log.getvalue()
    assert b"Uvicorn running" in text
    assert b"\x1b" not in text and b"color_message" not in text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
