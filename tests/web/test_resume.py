"""Reliable endpoints end to end: cursors, resuming, gaps; several web processes sharing layers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from showcase import AnalyticsConsumer, ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import LiveClient, LiveServer, connect
from web.app import create_app

pytestmark = pytest.mark.anyio


def message(frame: dict[str, object]) -> object:
    payload = frame["payload"]
    assert isinstance(payload, dict)
    return payload.get("message", payload.get("event"))


async def messages(client: LiveClient, count: int) -> list[object]:
    frames = [await client.receive() for _ in range(count)]
    assert all(isinstance(frame["cursor"], str) for frame in frames)
    return [message(frame) for frame in frames]


async def test_a_client_that_reconnects_with_its_cursor_gets_what_it_missed_once(
    server: LiveServer, publisher: SyncPublisher
) -> None:
    url = server.ws_url("/ws/reliable")
    async with connect(url) as first:
        joined = await first.receive()
        cursor = joined["cursor"]
    for n in range(3):
        publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"while away {n}"))
    async with connect(f"{url}?cursor={cursor}") as again:
        got = await messages(again, 4)
        # Its own join notice is transient (not kept): sent live, while the catch-up runs.
        joined_notice = "🔒 Reliable chat connection established!"
        assert got.count(joined_notice) == 1
        assert [m for m in got if m != joined_notice] == [
            "while away 0",
            "while away 1",
            "while away 2",
        ]  # and not its own leave notice: transient too
        publisher.publish(ReliableChatConsumer, SystemNotify(payload="live"))
        assert await messages(again, 1) == ["live"]
        await again.expect_nothing()


async def test_a_cursor_older_than_what_is_kept_gets_a_gap_first(
    redis_url: str, key_prefix: str
) -> None:
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix, analytics_capacity=2)
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(create_app(settings)) as server:
        url = server.ws_url("/ws/analytics")
        async with connect(url) as first:
            publisher.publish(AnalyticsConsumer, SystemNotify(payload="seen"))
            cursor = (await first.receive())["cursor"]
        for n in range(5):
            publisher.publish(AnalyticsConsumer, SystemNotify(payload=f"missed {n}"))
        async with connect(f"{url}?cursor={cursor}") as again:
            gap = await again.receive()
            assert gap["action"] == "gap"
            assert gap["payload"]["group"] == "analytics"
            assert gap["payload"]["reason"] == "trimmed"
            assert isinstance(gap["cursor"], str)
            assert await messages(again, 2) == ["missed 3", "missed 4"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "", "%00%ff", "A" * 5000])
async def test_a_malformed_cursor_gets_an_error_frame_then_live_delivery(
    server: LiveServer, publisher: SyncPublisher, cursor: str
) -> None:
    async with connect(server.ws_url(f"/ws/reliable?cursor={cursor}")) as client:
        error = await client.expect("error")
        assert error["payload"]["code"] == "invalid_cursor"
        assert await messages(client, 1) == ["🔒 Reliable chat connection established!"]
        publisher.publish(ReliableChatConsumer, SystemNotify(payload="live"))
        assert await messages(client, 1) == ["live"]


async def test_a_cursor_for_another_endpoint_is_ignored(
    server: LiveServer, publisher: SyncPublisher
) -> None:
    async with connect(server.ws_url("/ws/analytics")) as analytics:
        publisher.publish(AnalyticsConsumer, SystemNotify(payload="x"))
        cursor = (await analytics.receive())["cursor"]
    async with connect(server.ws_url(f"/ws/reliable?cursor={cursor}")) as client:
        assert await messages(client, 1) == ["🔒 Reliable chat connection established!"]


@pytest.fixture
def two_servers(settings: Settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    with LiveServer(create_app(settings)) as one, LiveServer(create_app(settings)) as two:
        yield one, two


@pytest.mark.parametrize(
    ("path", "action", "received"),
    [
        ("/ws/chat", "chat", "💬 hello"),
        ("/ws/reliable", "reliable_chat", "📨 hello"),
        ("/ws/notifications", "notification", "🔔 Notification: hello"),
        ("/ws/analytics", "analytics", "📊 Analytics: hello"),
    ],
)
async def test_two_web_processes_share_every_broadcast_once(
    two_servers: tuple[LiveServer, LiveServer],
    path: str,
    action: str,
    received: str,
    redis_url: str,
    key_prefix: str,
) -> None:
    one, two = two_servers
    field = "event" if action == "analytics" else "message"
    async with connect(one.ws_url(path)) as a, connect(two.ws_url(path)) as b:
        for client in (a, b):  # each sends a marker after its own join notice; wait for both
            await client.send({"action": action, "payload": {field: f"ready-{id(client)}"}})
        for client in (a, b):
            seen = 0
            while seen < 2:
                seen += "ready-" in str(await client.receive())
        await a.send({"action": action, "payload": {field: "hello"}})
        for client in (a, b):
            assert message(await client.receive()) == received
        await b.send({"action": "ping"}, ref="end")
        assert (await b.expect("pong"))["ref"] == "end"
        await a.expect_nothing()
    if path in ("/ws/chat", "/ws/notifications"):
        channel = {"/ws/chat": f"{key_prefix}:chat:chat_room"}.get(
            path, f"{key_prefix}:notifications:notifications"
        )
        assert_unsubscribed(redis_url, channel)


def assert_unsubscribed(redis_url: str, channel: str) -> None:
    """After every client has gone, no subscription of ours remains (bounded wait)."""
    import time

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 5
    while dict(client.pubsub_numsub(channel))[channel.encode()] != 0:
        assert time.monotonic() < deadline, f"{channel} still has subscribers"
        time.sleep(0.02)
    client.close()
