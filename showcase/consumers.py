"""The showcase's four consumers, each on its own layer."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from showcase.settings import Settings
from taskcast import Consumer, InvalidPayload, event_handler, ws_handler

from .analytics import AnalyticsLimits
from .messages import (
    AnalyticsEvent,
    AnalyticsInput,
    AnalyticsMessage,
    AnalyticsNotificationMessage,
    AnalyticsPayload,
    ChatMessage,
    ChatNotificationMessage,
    ChatPayload,
    NotificationBroadcastMessage,
    NotificationMessage,
    NotificationPayload,
    ReliableChatMessage,
    ReliableChatNotificationMessage,
    ReliableChatPayload,
    SystemNotify,
    SystemPeriodicNotify,
)

log = logging.getLogger("showcase")


def _chat(text: str) -> ChatNotificationMessage:
    return ChatNotificationMessage(payload=ChatPayload(message=text))


def _reliable(text: str) -> ReliableChatNotificationMessage:
    return ReliableChatNotificationMessage(payload=ReliableChatPayload(message=text))


def _notification(kind: str, text: str) -> NotificationBroadcastMessage:
    return NotificationBroadcastMessage(payload=NotificationPayload(type=kind, message=text))


class ChatConsumer(Consumer):
    """Real-time chat on the pub/sub ``chat`` layer: fast, nothing kept."""

    layer_alias = "chat"
    groups = ("chat_room",)
    tags = ("chat", "showcase")
    notices = (ChatNotificationMessage,)

    async def on_connect(self) -> None:
        await self.broadcast(_chat("📢 Someone joined the chat"))

    async def on_disconnect(self, code: int) -> None:
        await self.broadcast(_chat("❌ Someone left the chat."))

    @ws_handler(
        summary="Handle chat messages",
        description="Broadcast the message to the room.",
        broadcasts=(ChatNotificationMessage,),
    )
    async def handle_chat(self, message: ChatMessage) -> None:
        await self.broadcast(_chat(f"💬 {message.payload.message}"))

    @event_handler(summary="Pass a system notice on to the room")
    async def system_notify(self, event: SystemNotify) -> ChatNotificationMessage:
        return _chat(event.payload)


class ReliableChatConsumer(Consumer):
    """Chat on the reliable ``queue`` layer: messages are kept, and a reconnecting client
    receives what it missed."""

    layer_alias = "queue"
    groups = ("reliable_chat",)
    tags = ("chat", "reliable", "showcase")
    notices = (ReliableChatNotificationMessage,)
    # Presence is news only while it is live: joins and leaves are not kept, so connect/close
    # churn never evicts the room's messages from its history.
    transient_notices = True

    async def on_connect(self) -> None:
        await self.broadcast(_reliable("🔒 Reliable chat connection established!"), transient=True)

    async def on_disconnect(self, code: int) -> None:
        await self.broadcast(_reliable("🚪 Left reliable chat!"), transient=True)

    @ws_handler(
        summary="Handle reliable chat messages",
        description="Broadcast the message to the reliable room, with guaranteed delivery.",
        broadcasts=(ReliableChatNotificationMessage,),
    )
    async def handle_reliable_chat(self, message: ReliableChatMessage) -> None:
        await self.broadcast(_reliable(f"📨 {message.payload.message}"))

    @event_handler(summary="Pass a system notice on to the reliable room")
    async def system_notify(self, event: SystemNotify) -> ReliableChatNotificationMessage:
        return _reliable(event.payload)


EVERYONE = "notifications"


class NotificationConsumer(Consumer):
    """Push notifications on the pub/sub ``notifications`` layer: to everyone, or to one
    signed-in user on every socket they have open (``to={"user": name}``)."""

    layer_alias = "notifications"
    groups = (EVERYONE, "user:{user}")
    tags = ("notifications", "showcase")
    notices = (NotificationBroadcastMessage,)

    async def on_connect(self) -> None:
        await self.broadcast(
            _notification("system", "🔔 Connected to notifications!"), groups=(EVERYONE,)
        )

    @ws_handler(
        summary="Handle notification messages",
        description="Broadcast the notification to every client.",
        broadcasts=(NotificationBroadcastMessage,),
    )
    async def handle_notification(self, message: NotificationMessage) -> None:
        text = f"🔔 Notification: {message.payload.message}"
        await self.broadcast(_notification("user", text), groups=(EVERYONE,))

    @event_handler(summary="Pass a system notice on as a system notification")
    async def system_notify(self, event: SystemNotify) -> NotificationBroadcastMessage:
        return _notification("system", event.payload)

    @event_handler(summary="Pass a periodic notice on as a periodic notification")
    async def system_periodic_notify(
        self, event: SystemPeriodicNotify
    ) -> NotificationBroadcastMessage:
        return _notification("periodic", event.payload)


class AnalyticsConsumer(Consumer):
    """Analytics events on the reliable ``analytics`` layer."""

    layer_alias = "analytics"
    groups = ("analytics",)
    tags = ("analytics", "showcase")

    @ws_handler(
        summary="Handle analytics events",
        description=(
            "Broadcast the event to every analytics client, with reliable delivery, and count it."
            " A name or data over the limits is refused with an invalid_payload error."
        ),
        broadcasts=(AnalyticsNotificationMessage,),
    )
    async def handle_analytics(self, message: AnalyticsMessage) -> None:
        payload = message.payload
        # Checked before anything is kept: the stream retains every broadcast for an hour and
        # the counts key on the name, so neither may grow with what a client chooses to send.
        limits = AnalyticsLimits.of(_settings(self.websocket))
        try:
            limits.event(payload.event)
            limits.data(payload.data)
        except ValueError as exc:
            raise InvalidPayload(str(exc)) from None
        await self.broadcast(
            AnalyticsNotificationMessage(
                payload=AnalyticsPayload(event=f"📊 Analytics: {payload.event}", data=payload.data)
            )
        )
        await _record(self.websocket, payload)

    @event_handler(summary="Pass an event from outside on to the analytics clients")
    async def system_notify(self, event: SystemNotify) -> AnalyticsNotificationMessage:
        return AnalyticsNotificationMessage(payload=AnalyticsPayload(event=event.payload))

    @event_handler(summary="Pass an analytics event with its data on to the analytics clients")
    async def analytics_event(self, event: AnalyticsEvent) -> AnalyticsNotificationMessage:
        return AnalyticsNotificationMessage(payload=event.payload)


def _settings(websocket: WebSocket) -> Settings | None:
    app = websocket.scope.get("app")
    settings = getattr(getattr(app, "state", None), "settings", None)
    return settings if isinstance(settings, Settings) else None


async def _record(websocket: WebSocket, payload: AnalyticsInput) -> None:
    """Hand the event to the analytics pipeline (a task), when the app has a task queue."""
    app = websocket.scope.get("app")
    tasks = getattr(getattr(app, "state", None), "tasks", None)
    if tasks is None:
        return
    try:
        await tasks.send("workers.tasks.record_analytics_event", payload.model_dump(mode="json"))
    except Exception as exc:  # the broker is away: the frame was still answered
        log.warning("could not record analytics event %r: %s", payload.event, exc)
