"""The showcase's message types: one pair per consumer, plus the two events sent from outside."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, JsonValue

from taskcast import BaseMessage

MAX_MESSAGE_CHARS = 4096


def _not_blank(text: str) -> str:
    """Something to read: not only spaces or invisible characters (zero-width space), and no
    control characters but line breaks and tabs (NUL, escape sequences)."""
    if any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in text):
        raise ValueError("must not contain control characters")
    if all(c.isspace() or unicodedata.category(c) == "Cf" for c in text):
        raise ValueError("must not be empty, only spaces or only invisible characters")
    return text


# What a person may send as a message, on every way in (a socket's frame, POST /api/broadcast,
# a task's argument): one rule, so that no way in takes what another refuses.
MessageText = Annotated[str, Field(max_length=MAX_MESSAGE_CHARS), AfterValidator(_not_blank)]


class ChatPayload(BaseModel):
    message: str


class ChatInput(ChatPayload):
    message: MessageText


class ChatMessage(BaseMessage):
    """A chat line from a client."""

    action: Literal["chat"] = "chat"
    payload: ChatInput


class ChatNotificationMessage(BaseMessage):
    """A chat line for everyone in the room."""

    action: Literal["chat_notification"] = "chat_notification"
    payload: ChatPayload


class ReliableChatPayload(BaseModel):
    message: str


class ReliableChatInput(ReliableChatPayload):
    message: MessageText


class ReliableChatMessage(BaseMessage):
    """A chat line from a client, for the reliable room."""

    action: Literal["reliable_chat"] = "reliable_chat"
    payload: ReliableChatInput


class ReliableChatNotificationMessage(BaseMessage):
    """A chat line for everyone in the reliable room."""

    action: Literal["reliable_chat_notification"] = "reliable_chat_notification"
    payload: ReliableChatPayload


class NotificationPayload(BaseModel):
    type: str = "user"
    message: str


class NotificationInput(NotificationPayload):
    message: MessageText


class NotificationMessage(BaseMessage):
    """A notification a client sends to everyone."""

    action: Literal["notification"] = "notification"
    payload: NotificationInput


class NotificationBroadcastMessage(BaseMessage):
    """A notification for every client: ``type`` is user, system or periodic."""

    action: Literal["notification_broadcast"] = "notification_broadcast"
    payload: NotificationPayload


class AnalyticsPayload(BaseModel):
    event: str
    data: JsonValue = None


# Letters, marks and digits of any script, and the punctuation event names use ("page_view:/a",
# "user@host", "#tag", "a+b"); no control characters, no leading or trailing space, and no
# parentheses, so that no client can send the summary's "(other)". \p{...} is understood by
# pydantic (Rust regex) and by JSON Schema validators (ECMA-262 with the `u` flag).
_NAME_CHARS = r"\p{L}\p{M}\p{N}_.,:;/@#+=&?!~%'-"
EVENT_NAME_PATTERN = rf"^[{_NAME_CHARS}](?:[ {_NAME_CHARS}]*[{_NAME_CHARS}])?$"


class AnalyticsInput(BaseModel):
    """An analytics event as a client sends it: a name of its own and optional JSON data."""

    event: str = Field(
        pattern=EVENT_NAME_PATTERN,
        description=(
            "The event's name: letters, digits, spaces (not first or last) and _ . , : ; / @ # "
            "+ = & ? ! ~ % ' -; at most TASKCAST_ANALYTICS_MAX_EVENT_CHARS characters (100)."
        ),
        examples=["page_view:/dashboard"],
    )
    data: JsonValue = Field(
        None,
        description="Any JSON; at most TASKCAST_ANALYTICS_MAX_DATA_BYTES bytes as compact JSON "
        "(4096).",
    )


class AnalyticsMessage(BaseMessage):
    """An analytics event from a client."""

    action: Literal["analytics"] = "analytics"
    payload: AnalyticsInput


class AnalyticsNotificationMessage(BaseMessage):
    """An analytics event for every analytics client."""

    action: Literal["analytics_notification"] = "analytics_notification"
    payload: AnalyticsPayload


class SystemNotify(BaseMessage):
    """An event from outside the web tier (tasks, scripts): a text to pass on."""

    action: Literal["system_notify"] = "system_notify"
    payload: str


class SystemPeriodicNotify(BaseMessage):
    """A periodic event from outside the web tier (beat): a text to pass on."""

    action: Literal["system_periodic_notify"] = "system_periodic_notify"
    payload: str


class AnalyticsEvent(BaseMessage):
    """An analytics event with its data, from outside the web tier (tasks)."""

    action: Literal["analytics_event"] = "analytics_event"
    payload: AnalyticsPayload
