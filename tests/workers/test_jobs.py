"""Jobs with a real worker: the seed's background-jobs exchange frame by frame, and any job's
life streamed to watchers who come early, halfway or late, retried and failing jobs, and the
watch token."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from pydantic import SecretStr

import workers.jobs  # noqa: F401 - registers the job task on every app
from showcase.settings import Settings
from taskcast.testing import LiveClient, LiveServer, connect
from workers.jobs import ShowcaseJob, result_text

from .test_redelivery import Runs, runs  # noqa: F401 - the fixture

pytestmark = pytest.mark.anyio
SECRET = "job-secret-for-tests"
ANALYSIS = "📊 Analysis of 'hello world':\n• Characters: 11\n• Words: 2\n• Vowels: 3"
GENERATED = (
    "🤖 AI Response to 'why':\nThat's an interesting point... Based on my analysis, I would "
    "suggest exploring this topic further."
)


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        job_secret=SecretStr(SECRET),
        job_delay=0.8,  # four steps of 0.2 s
    )


@pytest.fixture
def worker(celery_app: Celery) -> Iterator[None]:
    """A real worker (in-process, threads) that also knows a job that fails once, then
    succeeds, and one that always fails."""

    @celery_app.task(bind=True, base=ShowcaseJob, name="test.flaky", shared=False)
    def flaky(self: ShowcaseJob) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=ConnectionError("first try fails"), countdown=0.1)
        return "second try"

    @celery_app.task(bind=True, base=ShowcaseJob, name="test.broken", shared=False)
    def broken(self: ShowcaseJob) -> None:
        raise RuntimeError("the disk is full")

    @celery_app.task(bind=True, base=ShowcaseJob, name="test.dated", shared=False)
    def dated(self: ShowcaseJob) -> Any:
        self.progress(0.5, -1, "not a step")  # type: ignore[arg-type] - refused, not fatal
        return {"at": datetime(2026, 11, 26, tzinfo=UTC), 1: b"raw"}

    @celery_app.task(bind=True, base=ShowcaseJob, name="test.huge", shared=False)
    def huge(self: ShowcaseJob) -> str:
        return "x" * 100_000

    with start_worker(
        celery_app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
    ):
        yield


def states(frames: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (f["payload"]["state"], f["payload"].get("current"), f["payload"].get("attempt"))
        for f in frames
    ]


async def until_end(client: LiveClient, timeout: float = 20) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await client.expect("job_event", timeout=timeout)
        frames.append(frame)
        if frame["payload"]["state"] in ("succeeded", "failed"):
            return frames


@pytest.mark.parametrize(
    ("kind", "content", "text"),
    [
        ("translate", "Hello", "🌍 Translated: 'Hello' → 'hola'"),
        ("translate", "good MORNING", "🌍 Translated: 'good MORNING' → 'buenos días'"),
        ("translate", "cat", "🌍 Translated: 'cat' → '[TRANSLATED: cat]'"),
        ("analyze", "hello world", ANALYSIS),
        ("generate", "why", GENERATED),
        ("default", "done", "✅ Processed: DONE"),
        ("juggle", "x", "✅ Processed: X"),  # an unknown type runs default
    ],
)
def test_each_job_type_has_the_seeds_result(kind: str, content: str, text: str) -> None:
    assert result_text(kind, content) == text


async def test_the_seeds_background_jobs_exchange(worker: None, server: LiveServer) -> None:
    url = server.ws_url("/ws/background_jobs")
    async with connect(url) as client, connect(url) as other:
        for each in (client, other):
            frame = await each.expect("job_status")
            assert frame["payload"] == {
                "status": "connected",
                "message": "🔄 Background Job Processor: Connected!",
                "job_id": None,
                "watch": None,
            }
        await client.send({"action": "ping"}, ref="p")
        assert (await client.expect("pong"))["ref"] == "p"
        await client.send({"action": "job", "payload": {"type": "analyze", "content": "hi you"}})
        queuing = (await client.expect("job_status"))["payload"]
        assert (queuing["status"], queuing["message"]) == (
            "queuing",
            "⏳ Queuing analyze job: hi you",
        )
        queued = (await client.expect("job_status"))["payload"]
        job_id = queued["job_id"]
        assert queued["status"] == "queued"
        assert queued["message"] == f"📋 Job {job_id} queued successfully!"
        assert queued["watch"].startswith(f"/ws/jobs/{job_id}?watch=")
        result = (await client.expect("job_status", timeout=20))["payload"]
        assert result["status"] == "result"
        assert result["message"] == result_text("analyze", "hi you")
        await client.expect_nothing(within=0.5)  # exactly one result
        await other.expect_nothing(within=0.1)  # to that socket alone
        # type left out: default
        await client.send({"action": "job", "payload": {"content": "plain"}})
        assert (await client.expect("job_status"))["payload"]["message"] == (
            "⏳ Queuing default job: plain"
        )


async def test_a_job_that_cannot_be_queued_says_so(settings: Settings) -> None:
    from web.app import create_app

    away = settings.model_copy(update={"celery_broker_url": "redis://127.0.0.1:9/0"})
    with LiveServer(create_app(away)) as server:
        async with connect(server.ws_url("/ws/background_jobs")) as client:
            await client.expect("job_status")
            await client.send({"action": "job", "payload": {"type": "x", "content": "y"}})
            await client.expect("job_status")  # queuing
            error = (await client.expect("job_status", timeout=30))["payload"]
            assert error["status"] == "error"
            assert error["message"].startswith("❌ Error queuing job: ")
            assert "Traceback" not in error["message"]


async def test_watchers_early_halfway_and_late_see_the_same_life(
    worker: None, server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        started = await http.post("/api/jobs", json={"type": "translate", "content": "hello"})
    assert started.status_code == 202, started.text
    watch = started.json()["watch"]
    async with connect(server.ws_url(watch)) as early:
        seen = [await early.expect("job_event", timeout=20)]
        while states(seen)[-1][:2] != ("progress", 2):
            seen.append(await early.expect("job_event", timeout=20))
        async with connect(server.ws_url(watch)) as halfway:  # mid-job
            seen += await until_end(early)
            joined = await until_end(halfway)
    async with connect(server.ws_url(watch)) as late:  # after the end
        after = await until_end(late)
        await late.expect_nothing(within=0.5)
    expected = [
        ("queued", None, None),
        ("started", None, 1),
        *[("progress", n, None) for n in range(1, 5)],
        ("succeeded", None, None),
    ]
    assert states(seen) == states(joined) == states(after) == expected
    assert after[-1]["payload"]["result"] == "🌍 Translated: 'hello' → 'hola'"
    assert all("cursor" in frame for frame in after)  # resumable, like any kept frame


async def test_a_retried_job_and_a_failed_one(
    worker: None, server: LiveServer, celery_app: Celery
) -> None:
    from taskcast.jobs import watch_token

    for name, last in (("test.flaky", "succeeded"), ("test.broken", "failed")):
        job_id = celery_app.send_task(name).id
        token = watch_token(SECRET.encode(), job_id)
        async with connect(server.ws_url(f"/ws/jobs/{job_id}?watch={token}")) as watcher:
            frames = await until_end(watcher)
        if last == "succeeded":
            assert states(frames) == [
                ("queued", None, None),
                ("started", None, 1),
                ("retry", None, 1),
                ("started", None, 2),
                ("succeeded", None, None),
            ]
            assert frames[2]["payload"]["reason"] == "first try fails"
        else:
            assert states(frames) == [
                ("queued", None, None),
                ("started", None, 1),
                ("failed", None, None),
            ]
            payload = frames[-1]["payload"]
            assert (payload["error_type"], payload["error"]) == ("RuntimeError", "the disk is full")
            assert "Traceback" not in str(payload)


@pytest.mark.parametrize("query", ["", "?watch=", "?watch=0123", "?watch={other}", "?watch=%C3%A9"])
async def test_a_missing_or_wrong_watch_token_is_4403(server: LiveServer, query: str) -> None:
    from taskcast.jobs import watch_token

    query = query.format(other=watch_token(SECRET.encode(), "another-job"))
    async with connect(server.ws_url(f"/ws/jobs/some-job{query}")) as watcher:
        assert await watcher.wait_closed() == 4403


async def test_a_job_delivered_twice_streams_its_life_once(
    worker: None,
    server: LiveServer,
    celery_app: Celery,
    runs: Runs,  # noqa: F811
) -> None:
    """As when its worker is killed mid-job and the broker hands it out again: the second run
    appends nothing its first did (keys from task id, state and attempt)."""
    from taskcast.jobs import watch_token

    job_id = str(uuid.uuid4())
    kwargs = {"type": "default", "content": "twice"}
    for count in (1, 2):
        celery_app.send_task("workers.jobs.run_job", kwargs=kwargs, task_id=job_id)
        ended = await runs.wait(job_id, count)
    assert [state for state, _ in ended] == ["SUCCESS", "SUCCESS"]
    token = watch_token(SECRET.encode(), job_id)
    async with connect(server.ws_url(f"/ws/jobs/{job_id}?watch={token}")) as watcher:
        frames = await until_end(watcher)
        await watcher.expect_nothing(within=0.5)
    assert states(frames) == [
        ("queued", None, None),
        ("started", None, 1),
        *[("progress", n, None) for n in range(1, 5)],
        ("succeeded", None, None),
    ]


async def test_a_job_started_with_celery_call_is_watched_like_any(
    worker: None, server: LiveServer, settings: Settings
) -> None:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "TASKCAST_KEY_PREFIX": settings.key_prefix,
        "TASKCAST_JOB_SECRET": SECRET,
    }

    def run(*command: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    kwargs = '{"type": "generate", "content": "tea"}'
    job_id = await asyncio.to_thread(
        run, "celery", "-A", "workers", "call", "workers.jobs.run_job", "-k", kwargs
    )
    watch = await asyncio.to_thread(run, "web.watch", job_id)
    assert watch.startswith(f"/ws/jobs/{job_id}?watch=")
    async with connect(server.ws_url(watch)) as watcher:
        frames = await until_end(watcher)
    assert states(frames)[0] == ("queued", None, None)  # said by the worker: nobody else could
    assert frames[-1]["payload"]["result"] == result_text("generate", "tea")


async def test_a_client_cannot_flood_the_worker_with_jobs(settings: Settings) -> None:
    """No worker runs: nothing is waited for but the answers."""
    from web.app import create_app

    few = settings.model_copy(update={"job_rate": 0.01, "job_burst": 2})
    with LiveServer(create_app(few)) as server:
        async with connect(server.ws_url("/ws/background_jobs")) as client:
            await client.expect("job_status")
            statuses = []
            for n in range(3):
                await client.send({"action": "job", "payload": {"content": f"j{n}"}})
                await client.expect("job_status")  # queuing
                statuses.append((await client.expect("job_status"))["payload"])
            assert [s["status"] for s in statuses] == ["queued", "queued", "error"]
            assert statuses[-1]["message"] == "❌ Error queuing job: too many jobs; slow down"
        async with httpx.AsyncClient(base_url=server.url) as http:
            answers = [
                (await http.post("/api/jobs", json={"content": f"h{n}"})).status_code
                for n in range(3)
            ]
        assert answers == [202, 202, 429]


async def test_a_job_always_ends_with_its_event_whatever_it_returns(
    worker: None, server: LiveServer, celery_app: Celery
) -> None:
    from taskcast.jobs import watch_token

    ends = {}
    for name in ("test.dated", "test.huge"):
        job_id = celery_app.send_task(name).id
        token = watch_token(SECRET.encode(), job_id)
        async with connect(server.ws_url(f"/ws/jobs/{job_id}?watch={token}")) as watcher:
            ends[name] = (await until_end(watcher))[-1]["payload"]
    assert ends["test.dated"]["state"] == "succeeded"  # the bad progress was dropped, not fatal
    assert ends["test.dated"]["result"] == {"at": "2026-11-26 00:00:00+00:00", "1": "b'raw'"}
    assert ends["test.huge"]["state"] == "succeeded"
    assert ends["test.huge"]["result"] is None
    assert ends["test.huge"]["message"] == "the result is too large to stream (100002 bytes)"


async def test_a_job_runs_when_its_stream_cannot_be_written(settings: Settings) -> None:
    """The jobs layer's Redis is away: watchers miss the events, but the job is not lost."""
    import workers.tasks  # noqa: F401 - registers the tasks
    from workers.app import create_celery

    away = settings.model_copy(update={"jobs_url": "redis://127.0.0.1:9/0", "job_delay": 0.0})
    app = create_celery(away)
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        result = app.send_task("workers.jobs.run_job", kwargs={"content": "still runs"})
        assert await asyncio.to_thread(result.get, timeout=30) == "✅ Processed: STILL RUNS"


async def test_the_http_endpoint_takes_the_tokens_that_open_the_jobs_socket(
    settings: Settings,
) -> None:
    from web.app import create_app

    tokens = {"chat-only": ["/ws/chat"], "jobs": ["/ws/background_jobs"], "any": None}
    grants = Settings(ws_tokens=tokens).ws_tokens
    with LiveServer(create_app(settings.model_copy(update={"ws_tokens": grants}))) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:

            async def post(token: str) -> int:  # latin-1 on the wire, as a raw header can be
                headers = {"Authorization": b"Bearer " + token.encode("latin-1")}
                answer = await http.post("/api/jobs", json={"content": "x"}, headers=headers)
                return answer.status_code

            assert [await post(t) for t in ("chat-only", "jobs", "any", "\u00e9")] == [
                401,
                202,
                202,
                401,
            ]


async def test_a_job_type_is_a_short_name(server: LiveServer) -> None:
    async with connect(server.ws_url("/ws/background_jobs")) as client:
        await client.expect("job_status")
        for bad in ("t" * 65, "a\u0000b", ""):
            await client.send({"action": "job", "payload": {"type": bad, "content": "x"}})
            assert (await client.expect("error"))["payload"]["code"] == "invalid_payload"
