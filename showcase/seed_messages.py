"""The messages of the seed app's other endpoints: the system echo and the rooms."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from taskcast import BaseMessage

from .messages import MessageText


class TextPayload(BaseModel):
    message: str


class TextInput(BaseModel):
    message: MessageText


class UserMessage(BaseMessage):
    """A line for the system to echo."""

    action: Literal["user_message"] = "user_message"
    payload: TextInput


class SystemEchoMessage(BaseMessage):
    """The system's greeting, or its echo of a user_message."""

    action: Literal["system_echo"] = "system_echo"
    payload: TextPayload


class RoomChatInput(TextInput):
    room_name: str | None = Field(
        None, description="Ignored: the room is the one in the URL.", max_length=200
    )


class RoomChatMessage(BaseMessage):
    """A chat line for the room of the URL."""

    action: Literal["room_chat"] = "room_chat"
    payload: RoomChatInput


class RoomNotificationPayload(BaseModel):
    message: str
    room_name: str


class RoomNotificationMessage(BaseMessage):
    """A chat line, arrival or departure in one room, for that room's members."""

    action: Literal["room_notification"] = "room_notification"
    payload: RoomNotificationPayload
