"""The image, built and run: where a Docker daemon answers (skipped, saying why,
elsewhere). The base image is TESSERA_DOCKER_BASE when set, else the Dockerfile's
default if it is here or can be pulled, else `local/debian` (a debootstrapped
Debian with python3, for machines that cannot pull)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from faults import free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE = "python:3.11-slim-bookworm"
TAG = "tessera:test"


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {done.stderr[-3000:]}")
    return done.stdout.strip()


def _daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True,
                              timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _base_image() -> str | None:
    chosen = os.environ.get("TESSERA_DOCKER_BASE")
    if chosen:
        return chosen
    for image in (DEFAULT_BASE, "local/debian"):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                          timeout=30).returncode == 0:
            return image
    try:
        pulled = subprocess.run(["docker", "pull", DEFAULT_BASE], capture_output=True,
                                timeout=180).returncode == 0
    except subprocess.TimeoutExpired:
        pulled = False
    return DEFAULT_BASE if pulled else None


@pytest.fixture(scope="module")
def image() -> str:
    if not _daemon():
        pytest.skip("no Docker daemon answers here (docker info failed)")
    base = _base_image()
    if base is None:
        pytest.skip(f"no base image: {DEFAULT_BASE} cannot be pulled and there is no "
                    "local/debian; set TESSERA_DOCKER_BASE")
    docker("build", "-f", "docker/Dockerfile", "--build-arg", f"PYTHON_IMAGE={base}",
           "-t", TAG, str(ROOT), timeout=1500)
    return TAG


@pytest.fixture
def gateway_container(image: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    container = docker("run", "-d", "-p", f"127.0.0.1:{port}:8000", image)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            state = docker("inspect", "--format", "{{.State.Status}}", container)
            assert state == "running", docker("logs", container, check=False)
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, docker("logs", container, check=False)
            time.sleep(0.5)
        yield container, url
    finally:
        docker("rm", "-f", container, check=False)


def test_the_image_serves_the_default_profile_with_graphiql(
        gateway_container: tuple[str, str]) -> None:
    container, url = gateway_container
    answer = httpx.post(f"{url}/graphql", timeout=10, json={
        "query": '{ order(id: "42") { status user { name } items { stock } } }'}).json()
    assert answer == {"data": {"order": {"status": "SHIPPED", "user": {"name": "Aziz"},
                                         "items": [{"stock": 120}, {"stock": 0}]}}}
    page = httpx.get(f"{url}/graphql", headers={"accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and "graphiql.min.js" in page.text
    assert httpx.get(f"{url}/graphiql/graphiql.min.js", timeout=10).status_code == 200
    assert docker("exec", container, "id", "-u") == "10001"
    deadline = time.monotonic() + 90
    while (health := docker("inspect", "--format", "{{.State.Health.Status}}",
                            container)) == "starting":
        assert time.monotonic() < deadline
        time.sleep(1)
    assert health == "healthy"


def test_a_demo_service_container_answers_its_own_health_check(image: str) -> None:
    container = docker("run", "-d", image, "demo-backends", "--host", "0.0.0.0",
                       "--only", "users", "--port", "8101")
    try:
        deadline = time.monotonic() + 60
        probe = ["exec", container, "python", "-c",
                 "import urllib.request; print(urllib.request.urlopen("
                 "'http://127.0.0.1:8101/healthz', timeout=2).status)"]
        while docker(*probe, check=False) != "200":
            assert time.monotonic() < deadline, docker("logs", container, check=False)
            time.sleep(0.5)
    finally:
        docker("rm", "-f", container, check=False)
