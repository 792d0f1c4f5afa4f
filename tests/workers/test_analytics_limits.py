"""Analytics stays bounded whatever clients send: names and data are limited where they come in
(the socket and the tasks), the counts keep a few names over a rolling window, and a summary is
broadcast only when it changed. Real Redis, a real worker, real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from showcase import AnalyticsConsumer
from showcase.messages import EVENT_NAME_PATTERN
from showcase.settings import Settings
from taskcast import InMemoryLayer
from taskcast.testing import Communicator, LiveClient, LiveServer, connect
from workers.analytics import OTHER, AnalyticsCounts
from workers.tasks import SUMMARY_TITLE, UNCHANGED, analytics_counts

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(request: pytest.FixtureRequest, redis_url: str, key_prefix: str) -> Settings:
    """The suite's settings, with no frame rate limit (these tests send hundreds of frames at
    once, and it is the analytics limits they test), plus a test's own overrides."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return Settings(redis_url=redis_url, key_prefix=key_prefix, rate_per_second=None, **overrides)


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("settings", [overrides], indirect=True, ids=["settings"])


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def run(app: Celery, name: str, **kwargs: Any) -> Any:
    return app.send_task(f"workers.tasks.{name}", kwargs=kwargs)


async def result(async_result: Any) -> Any:
    return await asyncio.to_thread(async_result.get, timeout=15)


async def counted(app: Celery, expected: dict[str, int]) -> None:
    """Wait (bounded) until the record tasks the web tier queued have counted ``expected``."""
    counts = analytics_counts(app)
    async with asyncio.timeout(15):
        while counts.counts() != expected:  # noqa: ASYNC110 - in Redis: no event to wait on
            await asyncio.sleep(0.05)


def event(name: str, data: object = None) -> dict[str, object]:
    return {"action": "analytics", "payload": {"event": name, "data": data}}


def notification(name: str, data: object = None) -> dict[str, object]:
    return {"action": "analytics_notification", "payload": {"event": name, "data": data}}


async def next_frame(client: LiveClient) -> dict[str, Any]:
    frame = await client.receive()
    frame.pop("cursor", None)
    frame.pop("sent_at", None)
    return frame


async def refused(client: LiveClient, ref: str) -> str:
    frame = await client.receive()
    assert frame["action"] == "error", frame
    assert frame["payload"]["code"] == "invalid_payload"
    assert frame["ref"] == ref
    return str(frame["payload"]["detail"])


async def test_huge_names_are_refused_recorded_nowhere_and_the_summary_stays_small(
    worker: None, celery_app: Celery, server: LiveServer, store: redis.Redis, settings: Settings
) -> None:
    huge = "x" * 60_000  # the measured attack: 200 of these made a 12.5 MB hash
    async with connect(server.ws_url("/ws/analytics")) as client:
        for n in range(200):
            await client.send(event(f"{huge}{n}"), ref=str(n))
            detail = await refused(client, str(n))
            assert "at most 100 allowed" in detail
        # The socket is open, and nothing was broadcast: the next frame is the next event's.
        await client.send(event("after"))
        assert await next_frame(client) == notification("📊 Analytics: after")
        await counted(celery_app, {"after": 1})
        summary = await result(run(celery_app, "publish_analytics_summary"))
        assert summary == {"after": 1}
        frame = await next_frame(client)
        assert frame == notification(SUMMARY_TITLE, {"after": 1})
        assert len(json.dumps(frame, ensure_ascii=False).encode()) < 4096
    keys = list(store.scan_iter(match=f"{settings.key_prefix}:analytics:counts:*"))
    keys.append(f"{settings.key_prefix}:analytics:summary".encode())
    for key in keys:  # nothing kept for ever, nothing large
        assert store.ttl(key) > 0, key
        assert (store.memory_usage(key) or 0) < 16_384, key


@pytest.mark.parametrize(
    ("name", "data", "ok"),
    [
        ("n" * 100, None, True),  # names at the limit pass
        ("é" * 100, None, True),  # characters, not bytes
        ("n" * 101, None, False),
        ("blob", "x" * (4096 - 2), True),  # 4096 bytes of compact JSON, quotes included
        ("blob", "x" * (4096 - 1), False),
        ("blob", {"k": ["é" * 2100]}, False),  # bytes, not characters
    ],
    ids=[
        "name-at-limit",
        "name-at-limit-multibyte",
        "name-over",
        "data-at-limit",
        "data-over",
        "data-over-multibyte",
    ],
)
async def test_the_limits_are_exact(
    worker: None, celery_app: Celery, server: LiveServer, name: str, data: object, ok: bool
) -> None:
    async with connect(server.ws_url("/ws/analytics")) as client:
        await client.send(event(name, data), ref="r")
        if ok:
            assert await next_frame(client) == notification(f"📊 Analytics: {name}", data)
            await counted(celery_app, {name: 1})
        else:
            detail = await refused(client, "r")
            assert "at most" in detail
            await client.send(event("after"))  # still open, and nothing was sent for it
            assert await next_frame(client) == notification("📊 Analytics: after")
            await counted(celery_app, {"after": 1})


@pytest.mark.parametrize(
    "name",
    ["", " leading", "trailing ", "tab\there", "line\nbreak", "nul\x00", "(other)", "emoji 🎉"],
)
async def test_names_outside_the_pattern_are_refused(server: LiveServer, name: str) -> None:
    async with connect(server.ws_url("/ws/analytics")) as client:
        await client.send(event(name), ref="r")
        frame = await client.receive()
        assert frame["action"] == "error"
        assert frame["payload"]["code"] == "invalid_payload"
        assert [e["loc"] for e in frame["payload"]["errors"]] == [["payload", "event"]]
        await client.send(event("page_view:/dashboard"))
        assert await next_frame(client) == notification("📊 Analytics: page_view:/dashboard")


@with_settings(analytics_max_event_chars=5, analytics_max_data_bytes=10)
async def test_the_limits_come_from_settings(server: LiveServer) -> None:
    async with connect(server.ws_url("/ws/analytics")) as client:
        await client.send(event("abcdef"), ref="1")
        assert "at most 5 allowed" in await refused(client, "1")
        await client.send(event("abcde", {"k": "123"}), ref="2")  # 11 bytes
        assert "at most 10 allowed" in await refused(client, "2")
        await client.send(event("abcde", {"k": "12"}), ref="3")  # 10 bytes
        assert await next_frame(client) == notification("📊 Analytics: abcde", {"k": "12"})


async def test_without_app_settings_the_consumer_uses_the_default_limits() -> None:
    app = AnalyticsConsumer.as_asgi({"analytics": InMemoryLayer()})
    async with Communicator(app, "/ws/analytics") as client:
        await client.send(event("n" * 101), ref="r")
        frame = await client.expect("error")
        assert frame["payload"]["code"] == "invalid_payload"
        await client.send(event("n" * 100))
        await client.expect("analytics_notification")


@pytest.mark.parametrize(
    ("task", "kwargs", "complaint"),
    [
        ("record_analytics_event", {"event": "x" * 60_000}, "at most 100 allowed"),
        ("record_analytics_event", {"event": "(other)"}, "event must be letters"),
        ("record_analytics_event", {"event": "ok", "data": "x" * 5000}, "data is 5002 bytes"),
        ("send_analytics_event", {"event": "x" * 101}, "at most 100 allowed"),
        ("send_analytics_event", {"event": "a\x00"}, "event must be letters"),
        ("send_analytics_event", {"event": "ok", "data": ["x" * 5000]}, "at most 4096"),
        ("send_analytics_events", {"events": ["ok", "x" * 101]}, r"events\[1\]\.event is 101"),
        (
            "send_analytics_events",
            {"events": ["ok", {"event": "ok", "data": "x" * 5000}]},
            r"events\[1\]\.data is 5002 bytes",
        ),
    ],
)
async def test_tasks_check_names_and_data_with_the_same_limits(
    worker: None,
    celery_app: Celery,
    server: LiveServer,
    task: str,
    kwargs: dict[str, Any],
    complaint: str,
) -> None:
    async with connect(server.ws_url("/ws/analytics")) as client:
        outcome = run(celery_app, task, **kwargs)
        with pytest.raises(ValueError, match=complaint):
            await result(outcome)
        # Nothing went out, not even the valid events before the bad one, and nothing counted.
        await result(run(celery_app, "send_analytics_event", event="after"))
        assert (await next_frame(client))["payload"]["event"] == "after"
    assert analytics_counts(celery_app).counts() == {}


@with_settings(analytics_max_names=3)
async def test_more_names_than_the_cap_are_counted_as_other(
    worker: None, celery_app: Celery, server: LiveServer
) -> None:
    names = ["a", "a", "a", "b", "b", "c", "d", "e"]
    counted_as = [await result(run(celery_app, "record_analytics_event", event=n)) for n in names]
    assert counted_as == ["a", "a", "a", "b", "b", "c", OTHER, OTHER]
    async with connect(server.ws_url("/ws/analytics")) as client:
        expected = {"a": 3, "b": 2, "c": 1, OTHER: 2}
        assert await result(run(celery_app, "publish_analytics_summary")) == expected
        assert await next_frame(client) == notification(SUMMARY_TITLE, expected)


def bucket_start(width: int) -> float:
    """The start of the next bucket of ``width`` seconds: a time whose buckets are not yet
    expired (they expire on Redis's clock), and on a bucket boundary."""
    return (time.time() // width + 1) * width


def test_a_bucket_holds_at_most_max_names_and_a_summary_keeps_the_most_counted(
    store: redis.Redis, key_prefix: str
) -> None:
    counts = AnalyticsCounts(store, f"{key_prefix}:analytics", window=120, max_names=2)
    t0 = bucket_start(10)
    assert [counts.record(n, now=t0) for n in "abca"] == ["a", "b", OTHER, "a"]
    # The next bucket has room for two names again.
    assert [counts.record(n, now=t0 + 10) for n in "cccdbe"] == ["c", "c", "c", "d", OTHER, OTHER]
    # Four names in all: the two most counted (ties by name), the rest lumped with the lumped.
    assert counts.counts(now=t0 + 10) == {"c": 3, "a": 2, OTHER: 5}


def test_the_window_rolls_and_each_bucket_expires_as_it_leaves_it(
    store: redis.Redis, key_prefix: str
) -> None:
    window = 120  # 12 buckets of 10 s
    prefix = f"{key_prefix}:analytics"
    counts = AnalyticsCounts(store, prefix, window=window, max_names=20)
    t0 = bucket_start(10)
    counts.record("old", now=t0)
    counts.record("new", now=t0 + 60)
    assert counts.counts(now=t0 + 60) == {"new": 1, "old": 1}
    assert counts.counts(now=t0 + window - 0.001) == {"new": 1, "old": 1}
    assert counts.counts(now=t0 + window) == {"new": 1}  # "old"'s bucket left the window
    assert counts.counts(now=t0 + 60 + window) == {}
    buckets = sorted(store.scan_iter(match=f"{prefix}:counts:*"))
    expiries = [store.execute_command("PEXPIRETIME", key) for key in buckets]
    assert expiries == [int((t0 + window) * 1000), int((t0 + 60 + window) * 1000)]


@with_settings(analytics_window=1)
async def test_a_short_window_forgets_events_and_their_keys(
    worker: None, celery_app: Celery, store: redis.Redis, settings: Settings
) -> None:
    await result(run(celery_app, "record_analytics_event", event="old"))
    assert await result(run(celery_app, "publish_analytics_summary")) == {"old": 1}
    keys = list(store.scan_iter(match=f"{settings.key_prefix}:analytics:counts:*"))
    assert len(keys) == 1
    assert 0 < store.pttl(keys[0]) <= 1000
    # What this waits for is the clock: the window is a second, so the summary empties within it.
    async with asyncio.timeout(5):
        while await result(run(celery_app, "publish_analytics_summary")) != {}:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert list(store.scan_iter(match=f"{settings.key_prefix}:analytics:counts:*")) == []


async def test_a_summary_is_broadcast_only_when_it_changed(
    worker: None, celery_app: Celery, server: LiveServer
) -> None:
    async with connect(server.ws_url("/ws/analytics")) as client:
        await result(run(celery_app, "record_analytics_event", event="a"))
        assert await result(run(celery_app, "publish_analytics_summary")) == {"a": 1}
        assert await next_frame(client) == notification(SUMMARY_TITLE, {"a": 1})
        for _ in range(3):
            assert await result(run(celery_app, "publish_analytics_summary")) == UNCHANGED
        await result(run(celery_app, "record_analytics_event", event="b"))
        assert await result(run(celery_app, "publish_analytics_summary")) == {"a": 1, "b": 1}
        # The next frame is the changed summary: the unchanged ones sent nothing.
        assert await next_frame(client) == notification(SUMMARY_TITLE, {"a": 1, "b": 1})


def test_a_retried_summary_task_sees_its_own_summary_as_changed(
    store: redis.Redis, key_prefix: str
) -> None:
    counts = AnalyticsCounts(store, f"{key_prefix}:analytics", window=3600, max_names=20)
    assert counts.summarise("task-1").changed
    assert not counts.summarise("task-2").changed
    # task-1's publish failed and it is retried (same id): it must publish, not skip.
    assert counts.summarise("task-1").changed
    assert not counts.summarise("task-3").changed
    counts.record("a")
    assert counts.summarise("task-3").changed
    assert 0 < store.ttl(f"{key_prefix}:analytics:summary") <= 3600


def test_the_pattern_is_in_the_asyncapi_document(server: LiveServer) -> None:
    document = httpx.get(f"{server.url}/asyncapi.json", timeout=10).json()
    patterns: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.append(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert EVENT_NAME_PATTERN in patterns
