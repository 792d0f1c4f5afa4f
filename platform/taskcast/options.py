"""What a process's consumers share: their per-socket limits, and the set of open sockets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .addresses import AddressRules
from .guards import Authenticator
from .metrics import Metrics
from .outbox import Overflow

if TYPE_CHECKING:
    from .consumer import Consumer

__all__ = ["Connections", "ConsumerOptions"]


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """Per-socket limits, shared by every consumer of an app."""

    max_frame_bytes: int = 65_536
    outbox_size: int = 1_024
    # Origins allowed besides the app's own host ("*": any). See guards.origin_allowed.
    allowed_origins: frozenset[str] = frozenset()
    # The default authenticator of the app's consumers (a consumer's own `authenticator` wins).
    authenticator: Authenticator | None = None
    # Frames a second per socket, with a burst; past it `rate_limited` errors, and after
    # `rate_strikes` of them in a row the socket is closed with 1008.
    rate: float | None = None
    burst: int = 20
    rate_strikes: int = 20
    # Where open sockets are tracked, so that a shutting-down server can close them (1001), and
    # how many may be open: past it, a new handshake is closed with 1013 ("try again later").
    connections: Connections | None = None
    max_connections: int | None = None
    metrics: Metrics | None = None
    # What a full queue does with frames that are not kept (replies, notices, pub/sub frames).
    # None: on a layer that keeps messages, close (1013) when a reply finds no room (kept
    # frames never overflow: the socket is paged in from its position instead); on any other,
    # drop the oldest frames.
    overflow: Overflow | None = field(default=None)
    # What a value a client controls may be where it names a group (a room from the URL).
    address_rules: AddressRules = field(default_factory=AddressRules)
    # The route the consumer is mounted at (set by ``Consumer.as_asgi``).
    route: str | None = None


class Connections:
    """The sockets of a process's consumers: open, or in their handshake."""

    def __init__(self) -> None:
        self._open: set[Consumer] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, consumer: Consumer) -> None:
        self._open.add(consumer)

    def discard(self, consumer: Consumer) -> None:
        self._open.discard(consumer)

    async def close_all(self) -> None:
        """Close every open socket with 1001 (going away)."""
        await asyncio.gather(*(c.going_away() for c in list(self._open)), return_exceptions=True)
