"""What a layer carries, and what it hands to the local members of a group.

A layer moves bytes. ``pack_message`` wraps a frame already encoded for clients (a consumer's
broadcast); ``pack_event`` wraps an event for the members' event handlers. A receiving process
calls ``unpack`` once per broadcast and gives the same ``Delivery`` to every local member, so the
work of decoding, validating and rendering is shared rather than repeated per socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from .cursor import Position
from .eager import run_eagerly
from .messages import BaseMessage, GapMessage

__all__ = ["Delivery", "pack_event", "pack_message", "unpack"]

_MESSAGE = ord("M")
_EVENT = ord("E")


def pack_message(text: str, exclude: str | None = None) -> bytes:
    """Wrap a client frame; ``exclude`` names a member that must not receive it."""
    return b"M" + (exclude or "").encode() + b"\n" + text.encode()


def pack_event(event: BaseMessage) -> bytes:
    return b"E\n" + event.model_dump_json().encode()


class Delivery:
    """One broadcast as received by one process, shared by the local members of its group.

    Exactly one of ``text`` (a frame for clients), ``event`` (for event handlers) and ``gap``
    (a loss notice from a reliable layer) is set. ``position`` is set by reliable layers, and
    ``sent_at`` (when the message was kept: ISO 8601, UTC, milliseconds) where they know it."""

    __slots__ = (
        "_shared",
        "action",
        "cache",
        "event",
        "exclude",
        "gap",
        "group",
        "position",
        "replayed",
        "sent_at",
        "text",
    )

    def __init__(
        self,
        group: str,
        *,
        text: str | None = None,
        event: dict[str, Any] | None = None,
        gap: GapMessage | None = None,
        exclude: str | None = None,
        position: Position | None = None,
        sent_at: str | None = None,
    ) -> None:
        self.group = group
        self.text = text
        self.event = event
        self.gap = gap
        self.action: str | None = event.get("action") if event is not None else None
        self.exclude = exclude
        self.position = position
        self.sent_at = sent_at
        self.replayed = False  # set on what a reliable layer replays to a resuming member
        self.cache: dict[Hashable, str] = {}
        self._shared: dict[Hashable, asyncio.Future[Any]] = {}

    def start(
        self, key: Hashable, compute: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> asyncio.Future[Any]:
        """Start ``compute(*args)`` unless it was started for ``key`` already; its shared future,
        done at once when ``compute`` finishes without waiting (most renderings). Arguments
        rather than a closure: every member asks, and only the first call runs anything."""
        future = self._shared.get(key)
        if future is None:
            future = self._shared[key] = run_eagerly(compute(*args))
        return future

    async def shared(
        self, key: Hashable, compute: Callable[..., Coroutine[Any, Any, Any]], *args: Any
    ) -> Any:
        """The result of ``compute(*args)``, run once per ``key`` for this delivery."""
        future = self.start(key, compute, *args)
        if future.done():
            return future.result()
        # Shielded: a member cancelled while waiting must not cancel the others' result.
        return await asyncio.shield(future)


def unpack(
    data: bytes, group: str, position: Position | None = None, sent_at: str | None = None
) -> Delivery:
    """Decode what ``pack_message``/``pack_event`` made; raises ``ValueError`` on anything else."""
    head, sep, body = data.partition(b"\n")
    if not sep or not head:
        raise ValueError("not a taskcast delivery")
    if head[0] == _MESSAGE:
        exclude = head[1:].decode() or None
        return Delivery(
            group, text=body.decode(), exclude=exclude, position=position, sent_at=sent_at
        )
    if head[0] == _EVENT:
        event = json.loads(body)
        if not isinstance(event, dict) or not isinstance(event.get("action"), str):
            raise ValueError("an event must be an object with an action")
        return Delivery(group, event=event, position=position, sent_at=sent_at)
    raise ValueError("not a taskcast delivery")
