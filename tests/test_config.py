"""Config files: TOML or JSON, validated, errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.cli import main
from tessera.config import load_settings
from tessera.errors import ConfigError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, environ={})
    assert settings.server.port == 8000
    assert settings.policy("users").timeout_ms == 1000
    assert settings.policy("users").max_batch_size == 100
    assert settings.policy("users").max_response_bytes == 10 * 1024 * 1024
    assert settings.limits.max_ids == 500
    assert settings.url("users") is None


def test_toml_per_backend_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "t.toml", """
[defaults]
timeout_ms = 800
[backends.users]
url = "http://127.0.0.1:8102/"
timeout_ms = 200
""")
    settings = load_settings(path)
    assert settings.policy("users").timeout_ms == 200
    assert settings.policy("orders").timeout_ms == 800
    assert settings.url("users") == "http://127.0.0.1:8102"


def test_policy_tables_merge_key_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, "t.toml", """
[defaults.circuit_breaker]
open_ms = 9000
window = 40
[backends.users.circuit_breaker]
open_ms = 100
[backends.users]
fault = { error_rate = 0.5 }
""")
    settings = load_settings(path)
    users, orders = settings.policy("users"), settings.policy("orders")
    assert (users.circuit_breaker.open_ms, users.circuit_breaker.window) == (100, 40)
    assert (orders.circuit_breaker.open_ms, orders.circuit_breaker.window) == (9000, 40)
    assert users.circuit_breaker.minimum_calls == 10  # the built-in default
    assert (users.fault.error_rate, users.fault.status, users.fault.active) == (0.5, 503, True)
    assert not orders.fault.active and orders.stale_if_error_s == 0


def test_examples_load() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    chaos = load_settings(examples / "chaos.toml")
    assert chaos.policy("inventory").fault.error_rate == 0.5
    assert chaos.policy("inventory").circuit_breaker.open_ms == 3000
    assert chaos.server.completeness_report


def test_json_and_env_var(tmp_path: Path) -> None:
    path = write(tmp_path, "t.json", json.dumps({"limits": {"max_depth": 3}}))
    assert load_settings(None, environ={"TESSERA_CONFIG": str(path)}).limits.max_depth == 3


@pytest.mark.parametrize(("text", "key", "words"), [
    ("[server]\nport = 70000\n", "server.port", "less than or equal to 65535"),
    ("[server]\nport = \"x\"\n", "server.port", "valid integer"),
    ("[serverr]\nport = 1\n", "serverr", "unknown key"),
    # any name is a backend now (issue 14), but it must be a name
    ("[backends.\"pay ments\"]\nurl = \"http://x:1\"\n", "backends", "not a backend name"),
    ("[backends.users]\nurl = \"ftp://x\"\n", "backends.users.url", "http:// or https://"),
    ("[defaults]\ntimeout_ms = 0\n", "defaults.timeout_ms", "greater than or equal to 1"),
    ("[limits]\nmax_ids = -1\n", "limits.max_ids", "greater than or equal to 1"),
    ("[backends.users.circuit_breaker]\nfailure_rate = 2\n",
     "backends.users.circuit_breaker.failure_rate", "less than or equal to 1"),
    ("[defaults.fault]\nstatus = 200\n", "defaults.fault.status", "greater than or equal to 400"),
    ("[defaults.bulkhead]\nmax_concurent = 2\n", "defaults.bulkhead.max_concurent",
     "unknown key"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == key
    assert words in str(caught.value)
    assert str(path) in str(caught.value)


def test_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path, "a.toml", "[server\n"))
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_settings(write(tmp_path, "a.json", "{nope"))
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "missing.toml")


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.toml", "[server]\nport = 9000\n")
    assert main(["check-config", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = write(tmp_path, "bad.toml", "[server]\nport = 0\n")
    with pytest.raises(SystemExit) as caught:
        main(["check-config", str(bad)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "server.port" in err and "Traceback" not in err


def test_readme_config_examples_load(tmp_path: Path) -> None:
    import re

    from tessera.gateway import Gateway

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    for n, block in enumerate(blocks):
        block = block.replace('[aggregations."/api/x/*"]   # REST routes', "# ")
        library = Path(__file__).resolve().parent.parent / "examples" / "library"
        block = block.replace('module = "graph.py"', f'module = "{library / "graph.py"}"')
        settings = load_settings(write(tmp_path, f"readme{n}.toml", block))
        Gateway.build(settings)  # graph, schema, routes and backends all check out


def test_workers_auto_is_one_per_usable_core(tmp_path: Path) -> None:
    import os

    settings = load_settings(write(tmp_path, "auto.toml", '[server]\nworkers = "auto"\n'))
    assert settings.server.workers == len(os.sched_getaffinity(0))
