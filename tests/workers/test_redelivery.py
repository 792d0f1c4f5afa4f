"""A task that runs twice broadcasts once: delivered twice with the same id (as a redelivery
does), or redelivered after its whole worker was killed mid-task. Real workers on real Redis,
watched by real clients on a real server; every wait bounded."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult
from celery.signals import task_postrun

from showcase.settings import Settings
from taskcast.layers.redis_common import Keys
from taskcast.testing import LiveClient, LiveServer, connect

from .celery_process import CeleryProcess

pytestmark = pytest.mark.anyio

# The reliable endpoints' streams: (layer alias, group).
STREAMS = {"/ws/reliable": ("queue", "reliable_chat"), "/ws/analytics": ("analytics", "analytics")}
JOIN_NOTICES = {
    "/ws/chat": "📢 Someone joined the chat",
    "/ws/reliable": "🔒 Reliable chat connection established!",
    "/ws/notifications": "🔔 Connected to notifications!",
}


def body(frame: dict[str, Any]) -> tuple[str, Any]:
    return frame["action"], frame["payload"]


async def settle(client: LiveClient, path: str) -> None:
    """Past the client's own join notice, when its endpoint sends one."""
    if path in JOIN_NOTICES:
        assert body(await client.receive())[1]["message"] == JOIN_NOTICES[path]


class Runs:
    """The runs of tasks by id in this process's worker, as they end (``task_postrun``)."""

    def __init__(self) -> None:
        self.ended: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        self.changed = threading.Condition()

    def __call__(
        self, task_id: str, state: str | None = None, retval: Any = None, **_: Any
    ) -> None:
        with self.changed:
            self.ended[task_id].append((state, retval))
            self.changed.notify_all()

    async def wait(self, task_id: str, count: int, timeout: float = 15) -> list[tuple[str, Any]]:
        def until() -> bool:
            with self.changed:
                return self.changed.wait_for(lambda: len(self.ended[task_id]) >= count, timeout)

        assert await asyncio.to_thread(until), f"{task_id}: {self.ended[task_id]!r}"
        return self.ended[task_id]


@pytest.fixture
def store(settings: Settings) -> Iterator[redis.Redis]:
    """A client on the test's Redis, to look at what the tasks left there."""
    client = redis.Redis.from_url(settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def runs() -> Iterator[Runs]:
    runs = Runs()
    task_postrun.connect(runs, weak=False)
    yield runs
    task_postrun.disconnect(runs)


async def run_twice(app: Celery, runs: Runs, name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Deliver the task twice with one id, the second after the first has ended (as when its
    worker died before acknowledging it); returns how both runs ended."""
    task_id = str(uuid.uuid4())
    for count in (1, 2):
        app.send_task(f"workers.tasks.{name}", kwargs=kwargs, task_id=task_id)
        ended = await runs.wait(task_id, count)
    return ended


@pytest.mark.parametrize(
    ("task", "kwargs", "path", "expected"),
    [
        (
            "send_chat_message",
            {"message": "twice {}"},
            "/ws/chat",
            ("chat_notification", {"message": "twice {}"}),
        ),
        (
            "send_notification",
            {"message": "twice {}"},
            "/ws/notifications",
            ("notification_broadcast", {"type": "system", "message": "twice {}"}),
        ),
        (
            "send_reliable_message",
            {"message": "twice {}"},
            "/ws/reliable",
            ("reliable_chat_notification", {"message": "twice {}"}),
        ),
        (
            "send_analytics_event",
            {"event": "twice {}", "data": {"n": 1}},
            "/ws/analytics",
            ("analytics_notification", {"event": "twice {}", "data": {"n": 1}}),
        ),
    ],
)
async def test_a_task_delivered_twice_broadcasts_once(
    worker: None,
    celery_app: Celery,
    server: LiveServer,
    settings: Settings,
    store: redis.Redis,
    runs: Runs,
    task: str,
    kwargs: dict[str, Any],
    path: str,
    expected: tuple[str, dict[str, Any]],
) -> None:
    unique = uuid.uuid4().hex
    kwargs = {k: v.format(unique) if isinstance(v, str) else v for k, v in kwargs.items()}
    action, payload = expected
    payload = {k: v.format(unique) if isinstance(v, str) else v for k, v in payload.items()}
    async with connect(server.ws_url(path)) as client:
        await settle(client, path)
        ended = await run_twice(celery_app, runs, task, **kwargs)
        assert [state for state, _ in ended] == ["SUCCESS", "SUCCESS"]
        assert ended[0][1] == ended[1][1]  # the second run did the same, and broadcast nothing
        assert body(await client.receive()) == (action, payload)
        await client.expect_nothing(within=0.5)
    if path in STREAMS:  # and kept once
        alias, group = STREAMS[path]
        entries = store.xrange(Keys(f"{settings.key_prefix}:{alias}").stream(group))
        assert [unique.encode() in fields[b"d"] for _, fields in entries] == [True]


async def test_periodic_announcements_delivered_twice_count_and_broadcast_once(
    worker: None,
    celery_app: Celery,
    server: LiveServer,
    settings: Settings,
    store: redis.Redis,
    runs: Runs,
) -> None:
    async with (
        connect(server.ws_url("/ws/chat")) as chat,
        connect(server.ws_url("/ws/notifications")) as notifications,
    ):
        await settle(chat, "/ws/chat")
        await settle(notifications, "/ws/notifications")
        first = await run_twice(celery_app, runs, "periodic_announcements")
        second = await run_twice(celery_app, runs, "periodic_announcements")
        # A redelivered run tells its own number again: the counter moved once per task.
        assert first == [("SUCCESS", "⏰ Hourly chat announcement #1")] * 2
        assert second == [("SUCCESS", "🔔 System status update #2")] * 2
        assert body(await chat.receive()) == ("chat_notification", {"message": first[0][1]})
        assert body(await notifications.receive()) == (
            "notification_broadcast",
            {"type": "periodic", "message": second[0][1]},
        )
        await chat.expect_nothing(within=0.5)
        await notifications.expect_nothing(within=0.5)
    assert store.get(f"{settings.key_prefix}:announcements") == b"2"


class Worker(CeleryProcess):
    """A prefork worker in a process group of its own: ``kill`` takes the whole of it."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        args = ["worker", "--pool=prefork", "--concurrency=1", "--loglevel=INFO"]
        args += [f"--hostname={name}@%h", "--without-mingle", "--without-gossip"]
        super().__init__(args, env, own_group=True)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


VISIBILITY_TIMEOUT = 61  # the least the settings allow: above the longest retry backoff (60 s)


async def test_a_task_whose_whole_worker_is_killed_mid_task_is_redelivered_and_broadcasts_once(
    server: LiveServer,
    settings: Settings,
    celery_app: Celery,
    store: redis.Redis,
    workers: list[Worker],
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "TASKCAST_KEY_PREFIX": settings.key_prefix,
        "TASKCAST_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        # Kept messages live far shorter than the redelivery takes, and so would a task's key
        # if it were kept only as long as they are (as it once was): it must outlive the
        # visibility timeout, or the rerun broadcasts again.
        "TASKCAST_QUEUE_EXPIRY": "10",
    }
    workers.append(first := Worker("first", env))
    await asyncio.to_thread(first.wait_for, "ready.")
    message = f"once {uuid.uuid4().hex}"
    async with connect(server.ws_url("/ws/reliable")) as client:
        await settle(client, "/ws/reliable")
        task = celery_app.send_task(
            "workers.tasks.send_reliable_message", kwargs={"message": message, "hold": 3}
        )
        frame = await client.receive(timeout=30)
        assert body(frame) == ("reliable_chat_notification", {"message": message})
        first.kill()
        # Mid-task: it had started and not finished, and its message waits, unacknowledged,
        # for the visibility timeout.
        assert AsyncResult(task.id, app=celery_app).state == "STARTED"
        taken = store.zrange(f"{settings.key_prefix}:unacked_index", 0, -1, withscores=True)
        assert len(taken) == 1, taken
        killed = time.monotonic()
        # The broker hands the message out again only once it is overdue, which nothing but
        # the clock says: a worker started after that takes it back as it starts (kombu
        # restores overdue messages then, and every 10 s after that: workers/app.py).
        await asyncio.sleep(max(0.0, taken[0][1] + VISIBILITY_TIMEOUT + 1 - time.time()))
        workers.append(second := Worker("second", env))
        received = f"send_reliable_message[{task.id}] received"
        await asyncio.to_thread(second.wait_for, received, 30)
        result = await asyncio.to_thread(task.get, timeout=30)
        assert result == f"sent to the reliable room: {message}"
        print(f"redelivered and run again {time.monotonic() - killed:.1f}s after the kill")
        # The rerun published under the same task id: nothing more reached the client.
        await client.expect_nothing(within=1.0)
