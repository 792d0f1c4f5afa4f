from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from starlette.applications import Starlette

from showcase.settings import Settings
from taskcast.testing import LiveServer
from web.app import create_app
from workers.app import create_celery

REDIS_URL = (
    os.environ.get("TASKCAST_TEST_REDIS_URL")
    or os.environ.get("REDIS_URL")
    or "redis://127.0.0.1:6379/0"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis the suite runs against (`.ci/run` starts one when none answers)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"no Redis at {REDIS_URL} ({exc}); scripts/test starts one")
    return REDIS_URL


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """An async Redis client on the suite's Redis, to look at what the code under test wrote."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    """Settings for an app of this test's own: its key prefix and its task queue."""
    return Settings(redis_url=redis_url, key_prefix=key_prefix)


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def server(app: Starlette) -> Iterator[LiveServer]:
    """The app under a real uvicorn on a free port."""
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def celery_app(settings: Settings) -> Celery:
    import workers.tasks  # noqa: F401 - registers the tasks on every app

    return create_celery(settings)


@pytest.fixture
def worker(celery_app: Celery) -> Iterator[None]:
    """A real worker, in-process (threads), on real Redis (celery.contrib.testing)."""
    with start_worker(
        celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
    ):
        yield


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"tctest:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    keys += client.scan_iter(match=f"_kombu.binding*.{prefix}:*", count=1000)
    if keys:
        client.delete(*keys)
    client.close()


class Recorder:
    """A layer member that records its deliveries, with a bounded wait for a count of them."""

    def __init__(self, member_id: str) -> None:
        self.member_id = member_id
        self.got: list[Any] = []
        self._changed = asyncio.Event()
        self.catching_up: list[asyncio.Task[None]] = []

    def deliver(self, delivery: Any) -> bool:
        self.got.append(delivery)
        self._changed.set()
        return True

    def replay(self, replay: Any) -> None:
        """Read the catch-up's pages as fast as they come (a socket that always has room)."""
        self.catching_up.append(asyncio.create_task(self._pull(replay)))

    async def caught_up(self, timeout: float = 5.0) -> None:
        """Until every catch-up handed to this member has ended (raising what one raised)."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(*self.catching_up)

    async def _pull(self, replay: Any) -> None:
        while (page := await replay.page()) is not None:
            for delivery in page:
                self.deliver(delivery)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.got) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.got

    def texts(self) -> list[str | None]:
        return [d.text if d.gap is None else f"gap:{d.gap.payload.reason}" for d in self.got]


@pytest.fixture
def recorder() -> type[Recorder]:
    return Recorder


class RedisServer:
    """A private redis-server on a free port, for tests that stop and start Redis."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.directory),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not answer"
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class WebProcess:
    """`python -m web` as the Procfile runs it, on a port of its own, with extra environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {**os.environ, "PORT": str(self.port), "TASKCAST_LOG_LEVEL": "warning", **env}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://{self.base}{path}"

    def start(self) -> None:
        import httpx

        self.process = subprocess.Popen([sys.executable, "-m", "web"], env=self.env)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "the web process exited"
            assert time.monotonic() < deadline, "the web process did not answer /healthz"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=15)
        self.process = None
        return code


@pytest.fixture
def web_process() -> Iterator[Callable[[dict[str, str]], WebProcess]]:
    started: list[WebProcess] = []

    def start(env: dict[str, str]) -> WebProcess:
        process = WebProcess(env)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


from tests.topologies import ClusterSet, SentinelSet  # noqa: E402 - fixtures of tests/topologies.py


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    """A primary, a replica and three sentinels of service "taskcast", on free ports."""
    topology = SentinelSet(tmp_path / "sentinel-set")
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[ClusterSet]:
    """A Redis Cluster of three primaries, every slot assigned, on free ports."""
    topology = ClusterSet(tmp_path / "redis-cluster")
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()
