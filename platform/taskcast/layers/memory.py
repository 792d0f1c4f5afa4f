"""The in-memory layer: one process, no network. For unit tests of consumer logic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..cursor import Position
from ..delivery import unpack
from .base import Member, SyncGroupSender
from .local import LocalGroups

__all__ = ["InMemoryLayer", "MemoryConfig"]

log = logging.getLogger("taskcast.layers")


class MemoryConfig(BaseModel):
    """``memory://``: every group in this process, nothing kept, no network."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["memory"] = "memory"

    def build_layer(self) -> InMemoryLayer:
        return InMemoryLayer()

    def build_sync_sender(self) -> SyncGroupSender:
        raise ValueError(
            "the in-memory layer has no sync sender for other processes "
            "(InMemoryLayer.sync_sender() serves threads of its own process)"
        )


class InMemoryLayer:
    """Groups of local members; a send unpacks once and delivers to each member in turn.
    Nothing is kept: ``since`` is ignored."""

    keeps_messages = False
    reconnects = 0

    def __init__(self) -> None:
        self._groups = LocalGroups()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.lag_observer: Callable[[float], None] | None = None

    def check_position(self, position: Position) -> Position:
        return position  # nothing kept: positions are ignored

    async def group_add(
        self, group: str, member: Member, *, since: Position | None = None
    ) -> Position | None:
        self._loop = asyncio.get_running_loop()
        self._groups.add(group, member)
        return None

    async def group_discard(self, group: str, member: Member) -> None:
        self._groups.discard(group, member)

    async def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        self._fan_out(group, data)

    async def flush(self) -> None:
        self._groups.clear()

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._groups.clear()

    def members(self, group: str) -> int:
        """How many local members the group has."""
        return self._groups.count(group)

    def sync_sender(self) -> ThreadsafeSender:
        """A sender for other threads of this process; delivers on the layer's event loop."""
        return ThreadsafeSender(self)

    def _fan_out(self, group: str, data: bytes) -> None:
        if group not in self._groups:
            return
        try:
            delivery = unpack(data, group)
        except ValueError:
            log.warning("dropped an undecodable broadcast to group %r", group)
            return
        self._groups.deliver(group, delivery)


class ThreadsafeSender:
    def __init__(self, layer: InMemoryLayer) -> None:
        self._layer = layer

    def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        loop = self._layer._loop
        if loop is not None:  # no member has ever joined: nobody to deliver to
            loop.call_soon_threadsafe(self._layer._fan_out, group, data)
