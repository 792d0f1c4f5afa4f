"""Celery as an operator runs it: `celery call`, beat, a worker killed mid-task, Flower."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from showcase.settings import Settings
from taskcast.testing import LiveServer, connect

from .celery_process import CeleryProcess

pytestmark = pytest.mark.anyio


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "TASKCAST_KEY_PREFIX": settings.key_prefix,
        **extra,
    }


class Process(CeleryProcess):
    """A Celery command in the background (see ``celery_process``)."""


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


async def test_celery_call_from_the_command_line(
    worker: None, server: LiveServer, settings: Settings
) -> None:
    async with connect(server.ws_url("/ws/notifications")) as client:
        await client.expect("notification_broadcast")
        command = [sys.executable, "-m", "celery", "-A", "workers", "call"]
        command += ["workers.tasks.send_notification", "-a", '["from the command line"]']
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            env=environment(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.strip()) == 36  # the task id
        frame = await client.expect("notification_broadcast")
        assert frame["payload"] == {"type": "system", "message": "from the command line"}


async def test_beat_runs_the_announcements_on_its_schedule(
    worker: None, server: LiveServer, settings: Settings, processes: list[Process], tmp_path: Path
) -> None:
    async with connect(server.ws_url("/ws/chat")) as client:
        await client.expect("chat_notification")  # its own join notice
        env = environment(settings, TASKCAST_ANNOUNCEMENT_INTERVAL="0.5")
        processes.append(Process(["beat"], env))
        frame = await client.expect("chat_notification", timeout=20)
        assert frame["payload"]["message"] == "⏰ Hourly chat announcement #1"


async def test_two_beats_never_double_the_schedule(
    worker: None, settings: Settings, processes: list[Process]
) -> None:
    """Two replicas (or a restart overlap): one holds the lock in Redis and sends, the other
    waits. Over 6 s at one announcement a second, about 6 runs, not 12."""
    env = environment(settings, TASKCAST_ANNOUNCEMENT_INTERVAL="1")
    first = Process(["beat", "--loglevel=INFO"], env)
    processes.append(first)
    processes.append(Process(["beat", "--loglevel=INFO"], env))
    store = redis.Redis.from_url(settings.redis_url)
    counter = f"{settings.key_prefix}:announcements"
    deadline = time.monotonic() + 30
    while not store.get(counter):  # the first run: the schedule is live
        assert time.monotonic() < deadline, "beat sent nothing"
        await asyncio.sleep(0.1)
    start = int(store.get(counter) or 0)
    await asyncio.sleep(6)
    runs = int(store.get(counter) or 0) - start
    store.close()
    assert 3 <= runs <= 8, runs


async def test_a_task_whose_worker_is_killed_mid_task_broadcasts_once(
    server: LiveServer, settings: Settings, celery_app: Celery, processes: list[Process]
) -> None:
    env = environment(settings)
    worker = Process(["worker", "--pool=prefork", "--concurrency=1", "--loglevel=INFO"], env)
    processes.append(worker)
    worker.wait_for("ready.")
    async with connect(server.ws_url("/ws/reliable")) as client:
        await client.expect("reliable_chat_notification")  # its own join notice
        task = celery_app.send_task(
            "workers.tasks.send_reliable_message", kwargs={"message": "once", "hold": 2}
        )
        assert (await client.expect("reliable_chat_notification"))["payload"]["message"] == "once"
        pgrep = ["pgrep", "-P", str(worker.process.pid)]
        found = await asyncio.to_thread(subprocess.run, pgrep, capture_output=True, text=True)
        children = found.stdout.split()
        assert len(children) == 1
        os.kill(int(children[0]), signal.SIGKILL)  # mid-task: published, not yet acknowledged
        worker.wait_for("WorkerLostError")
        assert await asyncio.to_thread(task.get, timeout=30) == "sent to the reliable room: once"
        after = celery_app.send_task(
            "workers.tasks.send_reliable_message", kwargs={"message": "after"}
        )
        await asyncio.to_thread(after.get, timeout=30)
        # The rerun published with the same task id: nothing between "once" and "after".
        assert (await client.expect("reliable_chat_notification"))["payload"]["message"] == "after"


async def test_flower_lists_the_tasks_that_ran_behind_basic_auth(
    worker: None, settings: Settings, celery_app: Celery, processes: list[Process]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = environment(settings, TASKCAST_FLOWER_PORT=str(port), TASKCAST_FLOWER_PASSWORD="pw")
    flower = subprocess.Popen([sys.executable, "-m", "workers.flower"], env=env)  # noqa: ASYNC220
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await http.get("/healthcheck")).status_code in (200, 401):
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "Flower did not start"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)  # let it subscribe to the worker's events
            task = celery_app.send_task("workers.tasks.send_chat_message", kwargs={"message": "x"})
            await asyncio.to_thread(task.get, timeout=30)
            assert (await http.get("/api/tasks")).status_code == 401
            # The password reached Flower through its environment, not its command line (ps).
            cmdline = await asyncio.to_thread(Path(f"/proc/{flower.pid}/cmdline").read_bytes)
            assert b"pw" not in cmdline.split(b"\0")[-1] and b"taskcast:pw" not in cmdline
            tasks: dict[str, Any] = {}
            while task.id not in tasks:
                assert time.monotonic() < deadline + 30, "Flower never listed the task"
                await asyncio.sleep(0.2)
                tasks = (await http.get("/api/tasks", auth=("taskcast", "pw"))).json()
            assert tasks[task.id]["name"] == "workers.tasks.send_chat_message"
    finally:
        flower.terminate()
        flower.wait(timeout=20)


def flower_without_password(settings: Settings, host: str, **extra: str) -> subprocess.Popen[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = environment(settings, TASKCAST_FLOWER_PORT=str(port), HOST=host, **extra)
    env.pop("TASKCAST_FLOWER_PASSWORD", None)
    return subprocess.Popen(
        [sys.executable, "-m", "workers.flower", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_flower_without_a_password_refuses_to_listen_beyond_loopback(settings: Settings) -> None:
    flower = flower_without_password(settings, "0.0.0.0")
    _, err = flower.communicate(timeout=30)
    assert flower.returncode != 0
    assert "TASKCAST_FLOWER_PASSWORD" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("host", "extra"),
    [("127.0.0.1", {}), ("0.0.0.0", {"TASKCAST_FLOWER_HOST": "127.0.0.1"})],  # web public
)
def test_flower_without_a_password_listens_on_loopback_and_says_so(
    settings: Settings, host: str, extra: dict[str, str]
) -> None:
    flower = flower_without_password(settings, host, **extra)
    try:
        assert flower.stderr is not None
        first = flower.stderr.readline()
        assert "without a password: loopback only" in first
        port = int(first.split(":")[1].split()[0])
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1)
                break
            except httpx.TransportError:
                assert flower.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        flower.terminate()
        flower.communicate(timeout=20)
