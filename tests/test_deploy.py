"""The deployment files in deploy/: they parse, say what they must, ship configs that pass
``check-config``, and the image's entry command and health check work as plain processes."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV_BIN = Path(sys.executable).parent
SECRET_NAMES = {
    "LIAISONBOT_SLACK_SIGNING_SECRET", "LIAISONBOT_SLACK_BOT_TOKEN", "LIAISONBOT_SLACK_BOT_TOKENS",
    "LIAISONBOT_SLACK_APP_TOKEN", "LIAISONBOT_MATRIX_ACCESS_TOKEN", "LIAISONBOT_MATRIX_DEVICE_ID",
    "LIAISONBOT_MATRIX_PASSWORD", "LIAISONBOT_MATRIX_PICKLE_KEY",
}


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_object(kind: str) -> dict[str, Any]:
    found = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml_docs(path)
             if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


#: Stand-ins for the secrets a deployment's environment provides (check-config requires them).
DEPLOY_ENV = {"LIAISONBOT_SLACK_SIGNING_SECRET": "s", "LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-t",
              "LIAISONBOT_MATRIX_PICKLE_KEY": "3b9e0f6a2c7d41e8a5f09c2d6b7e8f13", "LIAISONBOT_MATRIX_ACCESS_TOKEN": "t"}


def check_config(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liaisonbot.cli", "check-config", "--config",
                           str(path)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, **(DEPLOY_ENV if env is None else env)})


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, rest)`` per instruction, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def dockerfile_value(instruction: str) -> str:
    """The last ``instruction`` of the final stage (where Docker takes it from)."""
    values = [rest for name, rest in dockerfile_instructions() if name == instruction]
    assert values, f"the Dockerfile has no {instruction}"
    return values[-1]


def healthcheck_argv() -> list[str]:
    """The HEALTHCHECK's command as Docker would run it (exec form, or shell form via sh -c)."""
    words = dockerfile_value("HEALTHCHECK")
    options, _, command = words.partition("CMD ")
    assert all(option.startswith("--") for option in options.split()), options
    command = command.strip()
    if command.startswith("["):
        return list(json.loads(command))
    return ["/bin/sh", "-c", command]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    argv = [part.replace("127.0.0.1:3000/", f"127.0.0.1:{port}/") for part in healthcheck_argv()]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)


# --- every YAML file parses -------------------------------------------------------------------

YAML_FILES = sorted({*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")})


def test_deploy_has_yaml_files() -> None:
    names = {path.relative_to(DEPLOY).as_posix() for path in YAML_FILES}
    assert {"compose.yml", "slack-app-manifest.yml", "k8s/deployment.yaml"} <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path: Path) -> None:
    assert yaml_docs(path), f"{path} holds no YAML document"


# --- compose ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml_docs(DEPLOY / "compose.yml")[0]


def test_compose_postgres_has_volume_and_healthcheck(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"} <= set(postgres["environment"])


def test_compose_synapse_keeps_its_generated_config(compose: dict[str, Any]) -> None:
    synapse = compose["services"]["synapse"]
    assert synapse["image"].startswith("matrixdotorg/synapse")
    assert any(v.endswith(":/data") for v in synapse["volumes"])
    assert "generate" in (DEPLOY / "compose.yml").read_text() + (DEPLOY / "README.md").read_text()


def test_compose_bot(compose: dict[str, Any]) -> None:
    bot = compose["services"]["liaisonbot"]
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["ports"] == ["127.0.0.1:3000:3000"]
    assert bot["env_file"] == [".env"]
    assert bot["environment"]["LIAISONBOT_CONFIG"] == "/etc/liaisonbot/liaisonbot.toml"
    assert "PGPASSWORD" in bot["environment"]
    volumes = bot["volumes"]
    assert "./liaisonbot.compose.toml:/etc/liaisonbot/liaisonbot.toml:ro" in volumes
    assert any(v.endswith(":/var/lib/liaisonbot") for v in volumes)
    named = {v.split(":", 1)[0] for service in compose["services"].values()
             for v in service.get("volumes", []) if not v.startswith(".")}
    assert named <= set(compose["volumes"])
    assert bot["stop_grace_period"] == "15s"  # SIGTERM exits within 5 s (test_replicas)
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{port} is published beyond loopback"


def test_compose_env_example_names_every_secret() -> None:
    named = set(re.findall(r"^#? ?([A-Z][A-Z_]+)=", (DEPLOY / "env.example").read_text(), re.M))
    assert SECRET_NAMES | {"POSTGRES_PASSWORD", "LIAISONBOT_LOG_LEVEL"} <= named
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_compose_config_passes_check_config() -> None:
    result = check_config(DEPLOY / "liaisonbot.compose.toml")
    assert result.returncode == 0, result.stderr
    text = (DEPLOY / "liaisonbot.compose.toml").read_text()
    assert 'url = "postgresql+asyncpg://liaisonbot@postgres/liaisonbot"' in text
    assert 'listen = "0.0.0.0:3000"' in text
    assert 'homeserver = "http://synapse:8008"' in text


# --- Kubernetes -------------------------------------------------------------------------------

def test_k8s_deployment() -> None:
    deployment = k8s_object("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 15
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and int(pre_stop[1]) + 5 < 15
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 3000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": 3000}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    secret = k8s_object("Secret")
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["LIAISONBOT_CONFIG"] == "/etc/liaisonbot/liaisonbot.toml"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/liaisonbot"]]["configMap"]["name"] == (
        k8s_object("ConfigMap")["metadata"]["name"])
    data = volumes[mounts["/var/lib/liaisonbot"]]
    assert "persistentVolumeClaim" in data or "emptyDir" in data
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_k8s_secret_is_a_template() -> None:
    secret = k8s_object("Secret")
    values = secret["stringData"]
    assert {"PGPASSWORD", "LIAISONBOT_MATRIX_PICKLE_KEY", "LIAISONBOT_SLACK_SIGNING_SECRET"} <= set(
        values)
    assert set(values) - {"PGPASSWORD"} <= SECRET_NAMES
    assert set(values.values()) == {"REPLACE-ME"}


def test_k8s_service_targets_port_3000() -> None:
    service = k8s_object("Service")
    (port,) = service["spec"]["ports"]
    assert port["port"] == 3000
    deployment = k8s_object("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named.get(port["targetPort"], port["targetPort"]) == 3000
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items())


def test_k8s_configmap_toml_passes_check_config(tmp_path: Path) -> None:
    toml = k8s_object("ConfigMap")["data"]["liaisonbot.toml"]
    assert "postgresql+asyncpg://" in toml, "replicas need PostgreSQL, never SQLite"
    path = tmp_path / "liaisonbot.toml"
    path.write_text(toml, encoding="utf-8")
    result = check_config(path)
    assert result.returncode == 0, result.stderr


def test_k8s_kustomization_builds() -> None:
    kustomization = yaml_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    for resource in kustomization["resources"]:
        assert (DEPLOY / "k8s" / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomize build was not run")
    built = subprocess.run([kubectl, "kustomize", str(DEPLOY / "k8s")], capture_output=True,
                           text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(built.stdout) if doc}
    assert {"ConfigMap", "Deployment", "Service"} <= kinds


# --- Dockerfile -------------------------------------------------------------------------------

def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    assert ("ARG", "PYTHON_IMAGE=python:3.12-slim") in instructions
    assert [rest for name, rest in instructions if name == "FROM"] == [
        "${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    user = dockerfile_value("USER").split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    assert "pip install \".[postgres]\"" in " ".join(rest for name, rest in instructions
                                                      if name == "RUN")
    assert "/healthz" in " ".join(healthcheck_argv())
    assert json.loads(dockerfile_value("ENTRYPOINT")) == ["liaisonbot-entrypoint"]
    assert json.loads(dockerfile_value("CMD")) == ["run"]
    assert dockerfile_value("EXPOSE") == "3000"
    assert "LIAISONBOT_CONFIG=/etc/liaisonbot/liaisonbot.toml" in dockerfile_value("ENV")
    assert dockerfile_value("WORKDIR") == "/var/lib/liaisonbot"
    copied = [rest for name, rest in instructions if name == "COPY"]
    assert any("deploy/entrypoint.sh /usr/local/bin/liaisonbot-entrypoint" in c for c in copied)


def test_dockerignore_keeps_what_the_build_copies() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!src/", "!deploy/entrypoint.sh"} <= set(lines)


# --- systemd ----------------------------------------------------------------------------------

def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "liaisonbot.service", encoding="utf-8")
    service = unit["Service"]
    assert shlex.split(service["ExecStart"])[1:] == ["run"]
    assert shlex.split(service["ExecStart"])[0].endswith("/liaisonbot")
    assert shlex.split(service["ExecStartPre"])[1:] == ["db", "upgrade"]
    assert service["User"] == "liaisonbot"
    assert service["EnvironmentFile"] == "/etc/liaisonbot/env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == "15"
    assert service["NoNewPrivileges"] == "true"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/liaisonbot"
    assert service["PrivateTmp"] == "true"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = (DEPLOY / "liaisonbot.service").read_text().replace("/opt/liaisonbot/venv/bin",
                                                              str(VENV_BIN))
    (tmp_path / "liaisonbot.service").write_text(text)
    result = subprocess.run([analyze, "verify", str(tmp_path / "liaisonbot.service")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- the image's entry command and health check, as plain processes ---------------------------

class _Status503(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": false}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def unhealthy_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Status503)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_fails_without_a_healthy_bot(unhealthy_server: int) -> None:
    assert run_healthcheck(free_port()).returncode != 0  # nothing listening
    assert run_healthcheck(unhealthy_server).returncode != 0  # 503


def test_entrypoint_runs_the_bot_and_the_healthcheck_passes(tmp_path: Path) -> None:
    entrypoint = DEPLOY / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK), "deploy/entrypoint.sh must be executable"
    port = free_port()
    text = (ROOT / "config" / "liaisonbot.toml").read_text()
    text = text.replace("sqlite+aiosqlite:///var/liaisonbot.db",
                        f"sqlite+aiosqlite:///{tmp_path / 'data' / 'liaisonbot.db'}")
    text = text.replace('listen = "127.0.0.1:3000"', f'listen = "127.0.0.1:{port}"')
    assert str(port) in text and str(tmp_path) in text
    config = tmp_path / "liaisonbot.toml"
    config.write_text(text)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "LIAISONBOT_CONFIG": str(config), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen([str(entrypoint), "run"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    up = True
                    break
            except OSError:
                time.sleep(0.1)
        assert up, (proc.communicate(timeout=5) if proc.poll() is not None else "no answer")
        check = run_healthcheck(port)
        assert check.returncode == 0, check.stderr
        assert (tmp_path / "data" / "liaisonbot.db").is_file()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError("liaisonbot run did not stop within 30 s of SIGTERM") from None
    out, err = proc.communicate(timeout=5)
    assert code == 0, err
    assert "database is at the latest schema" in out  # the entry point migrated first
    assert "Traceback" not in err
