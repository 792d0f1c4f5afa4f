"""Redis out of memory (``maxmemory`` reached under ``noeviction``: every write refused) while
a worker starts, while a task runs, and while beat ticks: each waits, and carries on by itself
once Redis has room again, losing nothing and doing nothing twice. A private Redis each."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from showcase.settings import Settings
from taskcast.testing import LiveServer, connect
from web.app import create_app
from workers.app import create_celery

from ..conftest import RedisServer
from .celery_process import CeleryProcess

pytestmark = pytest.mark.anyio


class Full:
    """The private Redis refusing every write (``maxmemory 1``), until ``room()``."""

    def __init__(self, server: RedisServer) -> None:
        self.client = redis.Redis.from_url(server.url)
        self.client.config_set("maxmemory-policy", "noeviction")

    def full(self) -> None:
        self.client.config_set("maxmemory", 1)
        with pytest.raises(redis.OutOfMemoryError):
            self.client.set("probe", "x")

    def refusals(self) -> int:
        """Writes refused so far (Redis's own count)."""
        stats = self.client.info("errorstats")
        return int(stats.get("errorstat_OOM", {}).get("count", 0))

    async def refused(self, more: int, timeout: float = 15) -> None:
        """Until Redis has refused ``more`` writes than now."""
        target = self.refusals() + more
        async with asyncio.timeout(timeout):
            while self.refusals() < target:  # noqa: ASYNC110 - Redis's counter, no event
                await asyncio.sleep(0.05)

    def room(self) -> None:
        self.client.config_set("maxmemory", 0)


@pytest.fixture
def redis_full(private_redis: RedisServer) -> Iterator[Full]:
    full = Full(private_redis)
    yield full
    full.room()
    full.client.close()


@pytest.fixture
def own(private_redis: RedisServer) -> Settings:
    return Settings(redis_url=private_redis.url, key_prefix="trouble")


@pytest.fixture
def own_celery(own: Settings) -> Celery:
    import workers.tasks  # noqa: F401 - registers the tasks on every app

    return create_celery(own)


@pytest.fixture
def own_server(own: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(own)) as live:
        yield live


@pytest.fixture
def processes() -> Iterator[list[CeleryProcess]]:
    started: list[CeleryProcess] = []
    yield started
    for process in started:
        process.stop()


def start(processes: list[CeleryProcess], settings: Settings, *args: str) -> CeleryProcess:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "TASKCAST_KEY_PREFIX": settings.key_prefix,
        "TASKCAST_ANNOUNCEMENT_INTERVAL": "0.5",
    }
    process = CeleryProcess([*args, "--loglevel", "INFO"], env)
    processes.append(process)
    return process


async def test_a_worker_started_while_redis_is_full_waits_and_then_runs_the_queue(
    redis_full: Full,
    own: Settings,
    own_celery: Celery,
    own_server: LiveServer,
    processes: list[CeleryProcess],
) -> None:
    message = f"queued before {uuid.uuid4().hex}"
    async with connect(own_server.ws_url("/ws/reliable")) as client:
        await client.receive()  # its own welcome
        task = own_celery.send_task("workers.tasks.send_reliable_message", [message])
        redis_full.full()
        worker = start(processes, own, "worker", "--concurrency", "1")
        # Celery alone exits here: "Unrecoverable error: OutOfMemoryError".
        await asyncio.to_thread(worker.wait_for, "the worker cannot start consuming")
        await client.expect_nothing(within=2.0)
        assert worker.process.poll() is None, "".join(worker.lines)
        redis_full.room()
        frame = await client.expect("reliable_chat_notification", timeout=30)
        assert frame["payload"]["message"] == message
        assert (
            await asyncio.to_thread(task.get, timeout=30) == f"sent to the reliable room: {message}"
        )
        await client.expect_nothing(within=1.0)
    # One line for the whole spell, and for its end; no traceback.
    output = "".join(worker.lines)
    assert output.count("the worker cannot start consuming: OutOfMemoryError") == 1, output
    assert "Traceback" not in output, output


async def test_a_task_due_while_redis_is_full_runs_once_redis_has_room(
    redis_full: Full,
    own: Settings,
    own_celery: Celery,
    own_server: LiveServer,
    processes: list[CeleryProcess],
) -> None:
    worker = start(processes, own, "worker", "--concurrency", "1")
    await asyncio.to_thread(worker.wait_for, "ready.")
    message = f"due while full {uuid.uuid4().hex}"
    async with connect(own_server.ws_url("/ws/reliable")) as client:
        await client.receive()  # its own welcome
        task = own_celery.send_task("workers.tasks.send_reliable_message", [message], countdown=2)
        await asyncio.to_thread(worker.wait_for, f"[{task.id}] received")
        redis_full.full()
        # Due now: storing its "started" state is refused, and so is its broadcast and the
        # retry it would queue. Celery alone marks it failed (or drops it) and never runs it.
        await asyncio.to_thread(worker.wait_for, "Failed operation _store_result", 15)
        await client.expect_nothing(within=2.0)
        redis_full.room()
        frame = await client.expect("reliable_chat_notification", timeout=60)
        assert frame["payload"]["message"] == message
        result = await asyncio.to_thread(task.get, timeout=60)
        assert result == f"sent to the reliable room: {message}"
        assert AsyncResult(task.id, app=own_celery).state == "SUCCESS"
        await client.expect_nothing(within=1.0)
    assert "Traceback" not in "".join(worker.lines), "".join(worker.lines)


async def test_beat_rides_out_a_full_redis(
    redis_full: Full, own: Settings, processes: list[CeleryProcess]
) -> None:
    beat = start(processes, own, "beat")
    await asyncio.to_thread(beat.wait_for, "Sending due task periodic-announcements")
    redis_full.full()
    # RedBeat alone lets the refused tick out, and beat exits.
    await asyncio.to_thread(beat.wait_for, "beat cannot reach its schedule in Redis")
    await redis_full.refused(3)  # more ticks refused
    assert beat.process.poll() is None, "".join(beat.lines)
    sent = beat.count("Sending due task")
    redis_full.room()
    await asyncio.to_thread(beat.wait_for, "beat cannot reach its schedule in Redis: done")
    await asyncio.to_thread(beat.wait_for, "Sending due task", 15, sent + 1)
    assert "Traceback" not in "".join(beat.lines), "".join(beat.lines)
