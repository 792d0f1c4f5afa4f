"""Each task, run by a real worker on real Redis, observed by a real client on a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from celery import Celery

from showcase.settings import Settings
from taskcast.testing import LiveClient, LiveServer, connect
from workers.tasks import analytics_counts

pytestmark = pytest.mark.anyio


def run(app: Celery, name: str, **kwargs: Any) -> Any:
    """Send the task by name, as `celery call` does (no client-side signature check)."""
    return app.send_task(f"workers.tasks.{name}", kwargs=kwargs)


async def result(async_result: Any) -> Any:
    return await asyncio.to_thread(async_result.get, timeout=15)


def body(frame: dict[str, Any]) -> tuple[str, Any]:
    frame.pop("cursor", None)
    frame.pop("sent_at", None)
    return frame["action"], frame["payload"]


JOIN_NOTICES = {
    "/ws/chat": "📢 Someone joined the chat",
    "/ws/reliable": "🔒 Reliable chat connection established!",
    "/ws/notifications": "🔔 Connected to notifications!",
}


async def settle(client: LiveClient, path: str) -> None:
    """Past the client's own join notice, when its endpoint sends one."""
    if path in JOIN_NOTICES:
        while body(await client.receive())[1].get("message") != JOIN_NOTICES[path]:
            pass


@pytest.mark.parametrize(
    ("task", "kwargs", "path", "expected"),
    [
        (
            "send_chat_message",
            {},
            "/ws/chat",
            ("chat_notification", {"message": "🔔 System announcement: Welcome to the chat!"}),
        ),
        (
            "send_reliable_message",
            {"message": "kept"},
            "/ws/reliable",
            ("reliable_chat_notification", {"message": "kept"}),
        ),
        (
            "send_notification",
            {},
            "/ws/notifications",
            (
                "notification_broadcast",
                {"type": "system", "message": "🚨 Alert: High CPU usage detected on server"},
            ),
        ),
        (
            "send_analytics_event",
            {"event": "signup", "data": {"plan": "pro"}},
            "/ws/analytics",
            ("analytics_notification", {"event": "signup", "data": {"plan": "pro"}}),
        ),
    ],
)
async def test_a_task_reaches_the_clients_of_its_endpoint(
    worker: None,
    celery_app: Celery,
    server: LiveServer,
    task: str,
    kwargs: dict[str, Any],
    path: str,
    expected: tuple[str, Any],
) -> None:
    async with connect(server.ws_url(path)) as client:
        await settle(client, path)
        await result(run(celery_app, task, **kwargs))
        assert body(await client.receive()) == expected


async def test_the_seeds_analytics_events_arrive_in_order(
    worker: None, celery_app: Celery, server: LiveServer
) -> None:
    async with connect(server.ws_url("/ws/analytics")) as client:
        assert await result(run(celery_app, "send_analytics_events")) == "sent 5 analytics events"
        events = [body(await client.receive())[1]["event"] for _ in range(5)]
        assert events == [
            "user_login:john_doe",
            "page_view:/dashboard",
            "button_click:export_data",
            "session_duration:1234",
            "error:api_timeout",
        ]


async def test_periodic_announcements_alternate_and_keep_counting(
    worker: None, celery_app: Celery, server: LiveServer, settings: Settings
) -> None:
    async with (
        connect(server.ws_url("/ws/chat")) as chat,
        connect(server.ws_url("/ws/notifications")) as notifications,
    ):
        await settle(chat, "/ws/chat")
        await settle(notifications, "/ws/notifications")
        texts = [await result(run(celery_app, "periodic_announcements")) for _ in range(3)]
        assert texts == [
            "⏰ Hourly chat announcement #1",
            "🔔 System status update #2",
            "⏰ Hourly chat announcement #3",
        ]
        assert body(await chat.receive()) == ("chat_notification", {"message": texts[0]})
        assert body(await notifications.receive()) == (
            "notification_broadcast",
            {"type": "periodic", "message": texts[1]},
        )
        assert body(await chat.receive()) == ("chat_notification", {"message": texts[2]})
    counter = redis.Redis.from_url(settings.redis_url).get(f"{settings.key_prefix}:announcements")
    assert counter == b"3"  # kept in Redis: a restarted beat goes on from #4


async def test_analytics_frames_are_counted_and_summarised(
    worker: None, celery_app: Celery, server: LiveServer, settings: Settings
) -> None:
    counts = analytics_counts(celery_app)
    async with connect(server.ws_url("/ws/analytics")) as client:
        for event in ["page_view", "page_view", "click"]:
            await client.send({"action": "analytics", "payload": {"event": event}})
            frame = body(await client.receive())
            assert frame == (
                "analytics_notification",
                {"event": f"📊 Analytics: {event}", "data": None},
            )
        async with asyncio.timeout(15):  # the web tier handed each frame to a task
            while counts.counts() != {"page_view": 2, "click": 1}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await result(run(celery_app, "publish_analytics_summary")) == {
            "click": 1,
            "page_view": 2,
        }
        assert body(await client.receive()) == (
            "analytics_notification",
            {"event": "📈 Analytics summary", "data": {"click": 1, "page_view": 2}},
        )


@pytest.mark.parametrize(
    ("task", "kwargs", "complaint"),
    [
        ("send_chat_message", {"message": 123}, "message must be a non-empty string"),
        ("send_reliable_message", {"message": "x", "hold": "soon"}, "hold must be a number"),
        ("send_notification", {"message": "  "}, "must not be empty, only spaces"),
        ("send_chat_message", {"message": "x" * 4097}, "at most 4096 characters"),
        ("send_analytics_event", {"event": ["not", "a", "name"]}, "event must be"),
        ("send_analytics_events", {"events": [{"nope": 1}]}, "invalid events"),
        ("send_chat_message", {"mesage": "typo"}, "unexpected keyword argument"),
    ],
)
async def test_bad_arguments_fail_clearly_and_broadcast_nothing(
    worker: None,
    celery_app: Celery,
    server: LiveServer,
    task: str,
    kwargs: dict[str, Any],
    complaint: str,
) -> None:
    async with (
        connect(server.ws_url("/ws/chat")) as chat,
        connect(server.ws_url("/ws/analytics")) as analytics,
    ):
        await settle(chat, "/ws/chat")
        outcome = run(celery_app, task, **kwargs)
        with pytest.raises((ValueError, TypeError), match=complaint):
            await result(outcome)
        assert outcome.state == "FAILURE"
        # Nothing went out: the next frames are what is sent after.
        await result(run(celery_app, "send_chat_message", message="after"))
        assert body(await chat.receive()) == ("chat_notification", {"message": "after"})
        await result(run(celery_app, "send_analytics_event", event="after"))
        assert body(await analytics.receive())[1]["event"] == "after"
