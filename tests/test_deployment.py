"""The deployment files: docker-compose.yml as compose reads it, and the Procfile."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> list[str] | None:
    """`docker compose` (v2), else `docker-compose` (v1; scripts/test installs Debian's)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


@pytest.mark.skipif(compose() is None, reason="neither docker compose nor docker-compose here")
def test_docker_compose_config_accepts_the_file() -> None:
    command = compose()
    assert command is not None
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"redis", "web", "worker", "beat", "flower"}
    assert all("healthcheck" in service for service in services.values())
    assert "--appendonly" in services["redis"]["command"]
    for name in ("web", "worker", "beat", "flower"):
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_the_procfile_runs_web_worker_beat_and_flower() -> None:
    entries = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert set(entries) == {"web", "worker", "beat", "flower"}
    assert "celery -A workers worker" in entries["worker"]
    assert "celery -A workers beat" in entries["beat"]


def test_the_image_runs_the_installed_wheel_with_valid_settings() -> None:
    """Docker removes bare quotes from ENV values: the allowed hosts must survive as JSON; and
    the sources are dropped after the install, so the image runs what the wheel holds."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    env = next(line for line in dockerfile.splitlines() if line.startswith("ENV "))
    value = env.split("TASKCAST_ALLOWED_HOSTS=", 1)[1]
    assert shlex.split(value) == ['["localhost","127.0.0.1"]']  # Docker's quote removal
    assert json.loads(shlex.split(value)[0]) == ["localhost", "127.0.0.1"]
    assert "rm -rf /src" in dockerfile
