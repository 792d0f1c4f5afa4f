"""The seed app's other endpoints: ``/ws/system`` (a direct echo, no layer) and
``/ws/room/{room_name}`` (a group per room on the pub/sub ``chat`` layer)."""

from __future__ import annotations

from taskcast import Consumer, event_handler, ws_handler

from .messages import SystemNotify
from .seed_messages import (
    RoomChatMessage,
    RoomNotificationMessage,
    RoomNotificationPayload,
    SystemEchoMessage,
    TextPayload,
    UserMessage,
)


def _echo(text: str) -> SystemEchoMessage:
    return SystemEchoMessage(payload=TextPayload(message=text))


class SystemConsumer(Consumer):
    """A direct echo: no layer, nothing broadcast."""

    tags = ("system",)

    async def on_connect(self) -> None:
        await self.send(_echo("🔧 System: Connection established!"))

    @ws_handler(summary="Echo a message", description="Answered with system_echo to this socket.")
    async def handle_user_message(self, message: UserMessage) -> SystemEchoMessage:
        return _echo(f"🔧 System Echo: {message.payload.message}")


class RoomConsumer(Consumer):
    """Chat in the room named by the URL, on the pub/sub ``chat`` layer: rooms are isolated."""

    layer_alias = "chat"
    groups = ("room:{room_name}",)
    tags = ("chat", "rooms")
    notices = (RoomNotificationMessage,)

    @property
    def room_name(self) -> str:
        return str(self.websocket.path_params["room_name"])

    def _notice(self, text: str) -> RoomNotificationMessage:
        return RoomNotificationMessage(
            payload=RoomNotificationPayload(message=text, room_name=self.room_name)
        )

    async def on_connect(self) -> None:
        joined = self._notice(f"🚪 Someone joined room '{self.room_name}'")
        await self.broadcast(joined, exclude_self=True)

    async def on_disconnect(self, code: int) -> None:
        # The socket has left the room already: the others get it.
        await self.broadcast(self._notice(f"👋 Someone left room '{self.room_name}'"))

    @ws_handler(
        summary="Chat in the room",
        description="Broadcast the message to every member of the URL's room, the sender too.",
        broadcasts=(RoomNotificationMessage,),
    )
    async def handle_room_chat(self, message: RoomChatMessage) -> None:
        await self.broadcast(self._notice(f"💬 {message.payload.message}"))

    @event_handler(summary="Pass a system notice on to one room (to={'room_name': ...})")
    async def system_notify(self, event: SystemNotify) -> RoomNotificationMessage:
        return self._notice(event.payload)
