"""The channel-layer contract, after the ASGI channel layers: group add/discard, group send, flush.

A layer moves packed bytes (see ``taskcast.delivery``) between processes. Each process keeps its
own members per group; a broadcast reaches each process once, is unpacked once, and the same
``Delivery`` is handed to every local member of the group through ``Member.deliver``, which must
not block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..cursor import Position
from ..delivery import Delivery

__all__ = ["ChannelLayer", "Member", "Replay", "SyncGroupSender"]


class Replay(Protocol):
    """A member's catch-up in one group of a layer that keeps messages, read in pages as the
    member has room for them."""

    @property
    def group(self) -> str: ...

    @property
    def size(self) -> int:
        """The most deliveries a page holds."""

    async def page(self) -> list[Delivery] | None:
        """The next deliveries in order (gap notices included), or ``None`` once the member is
        caught up: from then on the layer delivers the group to it live. Raises
        ``LayerUnavailable`` when the backend cannot be read now."""


class Member(Protocol):
    """A local receiver of a group's broadcasts (a consumer, in practice)."""

    @property
    def member_id(self) -> str: ...

    def deliver(self, delivery: Delivery) -> bool:
        """Take ``delivery``; false when a delivery the layer keeps (one with a position) finds
        no room. The layer then stops delivering that group to the member and hands it a
        ``Replay`` from before that delivery."""

    def replay(self, replay: Replay) -> None:
        """Catch up on ``replay``, reading its pages as there is room."""


@runtime_checkable
class ChannelLayer(Protocol):
    keeps_messages: bool  # whether members can resume from a position (``since``)
    # Called with each kept message's age (seconds) as the layer fans it out (a metric).
    lag_observer: Callable[[float], None] | None

    @property
    def reconnects(self) -> int:
        """How often the layer lost its backend and connected again (a metric)."""

    def check_position(self, position: Position) -> Position:
        """``position`` as this layer writes it, from a client's cursor; ``ValueError`` when it
        is none this layer could have made. Positions are opaque to everything else."""

    async def group_add(
        self, group: str, member: Member, *, since: Position | None = None
    ) -> Position | None:
        """Add ``member`` to ``group``; returns once broadcasts sent after it reach the member.
        On layers that keep messages it returns the member's position, and ``since`` first
        hands the member a ``Replay`` of what came after that position (or a gap notice).
        Raises ``LayerUnavailable`` when that cannot be done now."""

    async def group_discard(self, group: str, member: Member) -> None: ...

    async def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        """Broadcast ``data`` to the group. ``key`` makes a repeated send with the same key
        within the layer's idempotency window a no-op. ``transient``, on layers that keep
        messages: deliver to the members present, keep nothing (presence notices)."""

    async def flush(self) -> None:
        """Forget every group and member (tests)."""

    async def ready(self) -> bool:
        """Whether the layer can deliver now (its backend answers)."""

    async def close(self) -> None: ...


class SyncGroupSender(Protocol):
    """The sync side of a layer, for code without an event loop (workers, threads)."""

    def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None: ...
