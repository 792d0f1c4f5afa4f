"""What a user installs: the built wheel, in a fresh virtual environment (not editable), run from
a folder outside the checkout against a private Redis: the web tier answers ready, and a task that
beat schedules and a worker runs reaches a client as a frame."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskcast.testing import connect

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel built from this checkout installed in it."""
    where = tmp_path_factory.mktemp("wheel")
    # From a copy without build leftovers (a stale build/ would fill in what the config misses).
    source = where / "source"
    ignored = ("build", "*.egg-info", ".*", "node_modules", "__pycache__", "artifacts")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*ignored))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(where), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = where.glob("taskcast-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True, timeout=120)
    python = where / "venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=600,
    )
    return python


@pytest.fixture
def started(
    installed: Path, private_redis: Any, tmp_path: Path
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    from tests.conftest import free_port

    port = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("TASKCAST_", "PY"))
    }
    env |= {
        "PORT": str(port),
        "REDIS_URL": private_redis.url,
        "TASKCAST_LOG_LEVEL": "warning",
        "TASKCAST_ANNOUNCEMENT_INTERVAL": "1",
    }
    bin_dir = installed.parent
    commands = [
        [str(installed), "-m", "web"],
        [str(bin_dir / "celery"), "-A", "workers", "worker", "--pool=solo", "--loglevel=WARNING"],
        [str(bin_dir / "celery"), "-A", "workers", "beat", "--loglevel=WARNING"],
    ]  # fmt: skip
    processes = [subprocess.Popen(c, cwd=tmp_path, env=env) for c in commands]
    try:
        wait_ready(f"127.0.0.1:{port}", processes)
        yield f"127.0.0.1:{port}", processes
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


def wait_ready(base: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert all(p.poll() is None for p in processes), "a process exited"
        try:
            if httpx.get(f"http://{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "/readyz did not answer 200"
        time.sleep(0.1)


async def test_the_built_wheel_runs_web_worker_and_beat_outside_the_checkout(
    installed: Path, started: tuple[str, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    base, processes = started
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"http://{base}/asyncapi.json", timeout=5)).status_code == 200
        module = await http.get(f"http://{base}/taskcast.js", timeout=5)  # packaged with it
        assert module.status_code == 200 and "export function connect" in module.text
        types = await http.get(f"http://{base}/asyncapi.d.ts", timeout=5)
        assert types.status_code == 200 and "/ws/reliable" in types.text
    async with connect(f"ws://{base}/ws/chat", timeout=30) as client:
        while "announcement" not in str((await client.receive())["payload"]):
            pass  # the join notice; then beat's announcement, run by the worker
    # The Python client's command line, from the wheel.
    sent = await asyncio.to_thread(
        subprocess.run,
        [str(installed), "-m", "taskcast", "send", f"ws://{base}/ws/chat", "ping", "null"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["action"] == "pong"
    assert all(p.poll() is None for p in processes)
