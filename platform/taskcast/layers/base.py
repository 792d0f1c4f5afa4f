"""The channel-layer contract, after the ASGI channel layers: group add/discard, group send, flush.

A layer moves packed bytes (see ``taskcast.delivery``) between processes. Each process keeps its
own members per group; a broadcast reaches each process once, is unpacked once, and the same
``Delivery`` is handed to every local member of the group through ``Member.deliver``, which must
not block.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..cursor import Position
from ..delivery import Delivery

__all__ = ["ChannelLayer", "Member", "SyncGroupSender"]


class Member(Protocol):
    """A local receiver of a group's broadcasts (a consumer, in practice)."""

    @property
    def member_id(self) -> str: ...

    def deliver(self, delivery: Delivery) -> None: ...


@runtime_checkable
class ChannelLayer(Protocol):
    keeps_messages: bool  # whether members can resume from a position (``since``)

    async def group_add(self, group: str, member: Member, *, since: Position | None = None) -> None:
        """Add ``member`` to ``group``; returns once broadcasts sent after it reach the member.
        ``since``, on layers that keep messages, first delivers what came after that position
        (or a gap notice). Raises ``LayerUnavailable`` when that cannot be done now."""

    async def group_discard(self, group: str, member: Member) -> None: ...

    async def group_send(self, group: str, data: bytes, *, key: str | None = None) -> None:
        """Broadcast ``data`` to the group; ``key``, where the layer keeps messages, makes a
        repeated send with the same key a no-op."""

    async def flush(self) -> None:
        """Forget every group and member (tests)."""

    async def ready(self) -> bool:
        """Whether the layer can deliver now (its backend answers)."""

    async def close(self) -> None: ...


class SyncGroupSender(Protocol):
    """The sync side of a layer, for code without an event loop (workers, threads)."""

    def group_send(self, group: str, data: bytes, *, key: str | None = None) -> None: ...
