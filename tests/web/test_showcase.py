"""The seed's behaviour, end to end: real uvicorn, real WebSocket clients, frame by frame."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from showcase import (
    AnalyticsConsumer,
    ChatConsumer,
    NotificationConsumer,
    ReliableChatConsumer,
)
from showcase.messages import ChatInput, ChatMessage, SystemNotify, SystemPeriodicNotify
from taskcast import SyncPublisher
from taskcast.testing import LiveClient, LiveServer, connect

pytestmark = pytest.mark.anyio


async def kept(client: LiveClient) -> dict[str, object]:
    """The next frame from a reliable layer, without its cursor (which it must carry) and the
    time it was kept (which a kept message carries, a time of this minute; a join or leave
    notice is not kept, and has none)."""
    frame = await client.receive()
    assert isinstance(frame.pop("cursor"), str)
    sent = frame.pop("sent_at", None)
    if frame["payload"].get("message") in NOT_KEPT:  # type: ignore[attr-defined]
        assert sent is None
    else:
        assert abs(datetime.now(UTC) - datetime.fromisoformat(sent)) < timedelta(minutes=1)
    return frame


NOT_KEPT = {"🔒 Reliable chat connection established!", "🚪 Left reliable chat!"}


def chat(text: str) -> dict[str, object]:
    return {"action": "chat_notification", "payload": {"message": text}}


def reliable(text: str) -> dict[str, object]:
    return {"action": "reliable_chat_notification", "payload": {"message": text}}


def notification(kind: str, text: str) -> dict[str, object]:
    return {"action": "notification_broadcast", "payload": {"type": kind, "message": text}}


def analytics(event: str, data: object = None) -> dict[str, object]:
    return {"action": "analytics_notification", "payload": {"event": event, "data": data}}


@pytest.mark.parametrize("path", ["/ws/chat", "/ws/reliable", "/ws/notifications", "/ws/analytics"])
async def test_every_endpoint_answers_ping_with_pong(server: LiveServer, path: str) -> None:
    async with connect(server.ws_url(path)) as client:
        await client.send({"action": "ping"}, ref="p")
        while (frame := await client.receive())["action"] != "pong":  # skip the join notice
            pass
        assert frame == {"action": "pong", "payload": None, "ref": "p"}


async def test_chat_room(server: LiveServer, publisher: SyncPublisher) -> None:
    url = server.ws_url("/ws/chat")
    async with connect(url) as a:
        assert await a.receive() == chat("📢 Someone joined the chat")
        async with connect(url) as b:
            assert await a.receive() == chat("📢 Someone joined the chat")
            assert await b.receive() == chat("📢 Someone joined the chat")
            await a.send(ChatMessage(payload=ChatInput(message="hello ☕")), ref="c1")
            assert await a.receive() == chat("💬 hello ☕")  # the sender too; no ref on broadcasts
            assert await b.receive() == chat("💬 hello ☕")
            publisher.publish(
                ChatConsumer, SystemNotify(payload="🔔 System announcement: Welcome to the chat!")
            )
            for client in (a, b):
                assert await client.receive() == chat(
                    "🔔 System announcement: Welcome to the chat!"
                )
        assert await a.receive() == chat("❌ Someone left the chat.")
        await a.expect_nothing()


async def test_reliable_chat(server: LiveServer, publisher: SyncPublisher) -> None:
    url = server.ws_url("/ws/reliable")
    async with connect(url) as a:
        assert await kept(a) == reliable("🔒 Reliable chat connection established!")
        async with connect(url) as b:
            assert await kept(a) == reliable("🔒 Reliable chat connection established!")
            assert await kept(b) == reliable("🔒 Reliable chat connection established!")
            await b.send({"action": "reliable_chat", "payload": {"message": "kept"}})
            assert await kept(a) == reliable("📨 kept")
            assert await kept(b) == reliable("📨 kept")
            # DESIGN.md's one fix: the reliable room answers system_notify in its own message type.
            publisher.publish(
                ReliableChatConsumer,
                SystemNotify(payload="🔒 Important: System maintenance scheduled for tonight"),
            )
            for client in (a, b):
                assert await kept(client) == reliable(
                    "🔒 Important: System maintenance scheduled for tonight"
                )
        assert await kept(a) == reliable("🚪 Left reliable chat!")


async def test_notifications(server: LiveServer, publisher: SyncPublisher) -> None:
    url = server.ws_url("/ws/notifications")
    async with connect(url) as a:
        assert await a.receive() == notification("system", "🔔 Connected to notifications!")
        async with connect(url) as b:
            assert await a.receive() == notification("system", "🔔 Connected to notifications!")
            assert await b.receive() == notification("system", "🔔 Connected to notifications!")
            await a.send({"action": "notification", "payload": {"type": "x", "message": "hi"}})
            for client in (a, b):
                assert await client.receive() == notification("user", "🔔 Notification: hi")
            publisher.publish(
                NotificationConsumer, SystemNotify(payload="🚨 Alert: High CPU usage detected")
            )
            publisher.publish(
                NotificationConsumer, SystemPeriodicNotify(payload="🔔 System status update #2")
            )
            for client in (a, b):
                assert await client.receive() == notification(
                    "system", "🚨 Alert: High CPU usage detected"
                )
                assert await client.receive() == notification(
                    "periodic", "🔔 System status update #2"
                )
        await a.expect_nothing()  # no leave notice on this endpoint


async def test_analytics(server: LiveServer, publisher: SyncPublisher) -> None:
    url = server.ws_url("/ws/analytics")
    async with connect(url) as a, connect(url) as b:
        await a.send({"action": "ping"})
        assert await a.receive() == {"action": "pong", "payload": None}  # no join notice
        await a.send(
            {"action": "analytics", "payload": {"event": "page_view", "data": {"page": "/"}}}
        )
        await a.send({"action": "analytics", "payload": {"event": "click"}})
        for client in (a, b):
            assert await kept(client) == analytics("📊 Analytics: page_view", {"page": "/"})
            assert await kept(client) == analytics("📊 Analytics: click")
        for event in ["user_login:john_doe", "page_view:/dashboard", "error:api_timeout"]:
            publisher.publish(AnalyticsConsumer, SystemNotify(payload=event))
        for client in (a, b):
            for event in ["user_login:john_doe", "page_view:/dashboard", "error:api_timeout"]:
                assert await kept(client) == analytics(event)


async def test_endpoints_do_not_hear_each_other(server: LiveServer) -> None:
    async with (
        connect(server.ws_url("/ws/chat")) as chat_client,
        connect(server.ws_url("/ws/reliable")) as reliable_client,
    ):
        await chat_client.expect("chat_notification")
        await reliable_client.expect("reliable_chat_notification")
        await chat_client.send({"action": "chat", "payload": {"message": "only here"}})
        assert await chat_client.receive() == chat("💬 only here")
        await reliable_client.send({"action": "ping"})
        await reliable_client.expect("pong")
