"""docker-compose.yml and the Dockerfile: what someone running ``docker compose up`` relies on.

Plain file checks; no database. The last two tests also ask a real Compose binary to validate the file when
one is installed, and are skipped (saying how to enable them) when none is.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
APP_SERVICES = ("web", "worker", "beat")
SECRET = "compose-test-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def services(compose_text) -> dict:
    document = yaml.safe_load(compose_text)
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    assert isinstance(document.get("services"), dict), "docker-compose.yml has no services"
    return document["services"]


def _command(service: dict) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _environment(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: None if value is None else str(value) for key, value in env.items()}


def _runs_celery(service: dict, role: str) -> bool:
    command = _command(service)
    return (
        bool(command)
        and command[0] == "celery"
        and any(command[i : i + 2] == ["-A", "marketplace"] for i in range(len(command) - 1))
        and role in command
    )


def test_expected_services_exist(services):
    missing = {"postgres", "redis", "migrate", *APP_SERVICES} - services.keys()
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


def test_app_services_run_one_image(services):
    images = {name: services[name].get("image") for name in (*APP_SERVICES, "migrate")}
    assert None not in images.values(), f"every app service must name the image: {images}"
    assert len(set(images.values())) == 1, f"web, worker, beat and migrate must run the same image: {images}"
    builds = {name: repr(services[name].get("build")) for name in images}
    assert len(set(builds.values())) == 1, f"app services build differently: {builds}"
    assert services["web"].get("build") is not None, "the image is never built from the Dockerfile"


def test_beat_is_never_scaled(services):
    beat = services["beat"]
    replicas = (beat.get("deploy") or {}).get("replicas", 1)
    assert replicas == 1, f"beat must run exactly one replica, not {replicas}"
    assert beat.get("scale", 1) == 1, "beat must not be scaled"


def test_worker_and_beat_run_celery_on_the_project_app(services):
    assert _runs_celery(services["worker"], "worker"), _command(services["worker"])
    assert _runs_celery(services["beat"], "beat"), _command(services["beat"])


def test_app_processes_use_production_settings(services):
    for name in (*APP_SERVICES, "migrate"):
        env = _environment(services[name])
        # celery.py and manage.py default to local settings: compose has to say production explicitly.
        assert env.get("DJANGO_SETTINGS_MODULE") == "marketplace.settings.production", name
        assert (env.get("DATABASE_URL") or "").startswith(("postgres://", "postgresql://")), name
        assert (env.get("REDIS_URL") or "").startswith("redis://"), name
        assert (env.get("DJANGO_SECURE_SSL_REDIRECT") or "").lower() == "false", name


def test_only_migrate_bypasses_row_level_security(services):
    assert _environment(services["migrate"]).get("DATABASE_SET_RLS_ROLE", "").lower() == "false"
    assert "migrate" in _command(services["migrate"])
    for name in APP_SERVICES:
        value = (_environment(services[name]).get("DATABASE_SET_RLS_ROLE") or "true").lower()
        assert value not in {"false", "0", "no", "off"}, f"{name} must run under row-level security"


def test_web_waits_for_migrations_and_redis(services):
    depends_on = services["web"].get("depends_on")
    assert isinstance(depends_on, dict), "web's depends_on must use conditions"
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert services["migrate"].get("restart", "no") == "no", "a restarting one-shot never 'completes'"


def test_web_has_a_healthcheck(services):
    healthcheck = services["web"].get("healthcheck") or {}
    assert not healthcheck.get("disable"), "web's health check is disabled"
    in_compose = "/healthz" in " ".join(map(str, healthcheck.get("test") or []))
    in_image = DOCKERFILE.exists() and re.search(
        r"^HEALTHCHECK\b.*?/healthz", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL
    )
    assert in_compose or in_image, "neither the web service nor the image checks /healthz"


def test_secret_key_is_required(compose_text, services):
    assert re.search(r"\$\{DJANGO_SECRET_KEY:\?[^}]*\}", compose_text), "DJANGO_SECRET_KEY has no :? guard"
    for name in (*APP_SERVICES, "migrate"):
        value = _environment(services[name]).get("DJANGO_SECRET_KEY") or ""
        assert value.startswith("${DJANGO_SECRET_KEY:?"), f"{name} does not require DJANGO_SECRET_KEY"


def _compose_binary() -> list[str] | None:
    if shutil.which("docker"):
        try:
            probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            probe = None
        if probe is not None and probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _compose_config(tmp_path: Path, secret: str | None) -> subprocess.CompletedProcess:
    compose = _compose_binary()
    if compose is None:
        pytest.skip(
            "no Compose binary to validate docker-compose.yml: install Docker Compose v2 (`docker compose`) "
            "or Compose v1 (`apt-get install docker-compose`) to run this test"
        )
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"}}
    if secret is not None:
        env["DJANGO_SECRET_KEY"] = secret
    empty_env_file = tmp_path / "empty.env"  # so a developer's .env cannot change the outcome
    empty_env_file.write_text("")
    return subprocess.run(
        [*compose, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_config_is_valid(tmp_path):
    result = _compose_config(tmp_path, SECRET)
    assert result.returncode == 0, f"compose config failed:\n{result.stdout}\n{result.stderr}"


def test_compose_refuses_to_start_without_a_secret(tmp_path):
    result = _compose_config(tmp_path, None)
    assert result.returncode != 0, "compose accepted docker-compose.yml without DJANGO_SECRET_KEY"
    assert "DJANGO_SECRET_KEY" in result.stdout + result.stderr
