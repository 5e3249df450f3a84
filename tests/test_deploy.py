"""The deployment files: the Dockerfile, the compose stack, the Kubernetes manifests
(as `kubectl kustomize` renders them) and the Grafana dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import gateway, gql

from tessera.config import load_settings
from tessera.shop.graph import SERVICES

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
K8S = ROOT / "deploy" / "k8s"


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, re.M)
    assert len(re.findall(r"^FROM \$\{PYTHON_IMAGE\}", text, re.M)) == 2
    assert "COPY --from=build" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert "tessera.web.assets --strict" in text  # GraphiQL's files are in the image


def test_compose_runs_the_gateway_against_five_service_containers() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"gateway", *SERVICES}
    gateway_service = services["gateway"]
    assert "8000:8000" in gateway_service["ports"]
    assert set(gateway_service["depends_on"]) == set(SERVICES)
    assert (ROOT / ".dockerignore").read_text().splitlines()[1] == "*"  # a small context
    mount = gateway_service["volumes"][0].split(":")
    config = load_settings(DOCKER / mount[0])
    assert gateway_service["environment"]["TESSERA_CONFIG"] == mount[1]
    for name in SERVICES:
        command = services[name]["command"]
        assert command[command.index("--only") + 1] == name
        port = command[command.index("--port") + 1]
        assert config.url(name) == f"http://{name}:{port}"  # reached by service name
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
        # its health check probes the port it listens on, not the gateway's 8000
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in probe
        assert gateway_service["depends_on"][name] == {"condition": "service_healthy"}


def _rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the manifests are rendered with "
                    "`kubectl kustomize deploy/k8s`")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_kustomize_renders_a_deployment_service_hpa_and_config() -> None:
    objects = {doc["kind"]: doc for doc in _rendered()}
    assert set(objects) == {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"}
    deployment, service, hpa, config_map = (objects[k] for k in (
        "Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"))
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    [container] = pod["spec"]["containers"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in port_names
    volume = pod["spec"]["volumes"][0]["configMap"]["name"]
    assert volume == config_map["metadata"]["name"]  # the generated, hashed name
    mount = container["volumeMounts"][0]["mountPath"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TESSERA_CONFIG"] == f"{mount}/tessera.toml"
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    server = load_settings(K8S / "tessera.toml").server
    assert grace > server.drain_delay_s + server.shutdown_grace_s
    assert server.port == port_names["http"]


def test_the_configmaps_config_passes_check_config(tmp_path: Path) -> None:
    config_map = next(d for d in _rendered() if d["kind"] == "ConfigMap")
    path = tmp_path / "tessera.toml"
    path.write_text(config_map["data"]["tessera.toml"])
    result = subprocess.run([sys.executable, "-m", "tessera", "check-config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "5 backends by URL" in result.stdout


@pytest.mark.anyio
async def test_probe_endpoints_answer_on_the_app() -> None:
    async with gateway() as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


@pytest.mark.anyio
async def test_the_dashboard_queries_metrics_the_gateway_exports() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "tessera.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    wanted = {m for e in exprs for m in re.findall(r"\b(tessera_[a-z_]+)", e)}
    async with gateway({"backends": {"users": {"url": "http://127.0.0.1:9"}}}) as client:
        await gql(client, '{ order(id: "42") { user { name } items { stock } } }')
        exported = (await client.get("/metrics")).text
    missing = [m for m in wanted if f"\n{m}" not in exported and f"\n{m}{{" not in exported]
    assert not missing, missing
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("requests", "latency", "backend error", "circuit"):
        assert topic in titles


def test_demo_backends_only_serves_one_service_as_in_compose() -> None:
    import httpx
    from test_cli import free_port_run, running

    port = free_port_run(2)
    with running("demo-backends", "--only", "users", "--port", str(port),
                 ready_url=f"http://127.0.0.1:{port}/users/7"):
        assert httpx.get(f"http://127.0.0.1:{port}/users/7").json()["name"] == "Aziz"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port + 1}/users/7", timeout=1)
