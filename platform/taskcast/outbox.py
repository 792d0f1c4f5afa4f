"""A socket's bounded send queue, so one slow client never holds up a broadcast."""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Outbox", "Overflow"]

T = TypeVar("T")


class Overflow(enum.Enum):
    """What a full outbox does with a new item."""

    DROP_OLDEST = "drop_oldest"  # keep going; count what was lost
    CLOSE = "close"  # stop; the consumer closes the socket (1013) so the client resumes


class Outbox(Generic[T]):
    """A bounded FIFO with one reader. ``put`` never blocks; ``get`` returns ``None`` when the
    outbox overflowed under ``Overflow.CLOSE``."""

    def __init__(
        self,
        maxsize: int,
        policy: Overflow = Overflow.DROP_OLDEST,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("an outbox holds at least one item")
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._policy = policy
        self._ready = asyncio.Event()
        self.dropped = 0
        self.overflowed = False
        self._on_drop = on_drop

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        if self.overflowed:
            return
        if len(self._items) >= self._maxsize:
            if self._policy is Overflow.CLOSE:
                self.overflowed = True
                self._ready.set()
                return
            self._items.popleft()
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
        self._items.append(item)
        self._ready.set()

    def extend(self, items: Sequence[T]) -> None:
        """Append ``items`` whatever the bound: a page of a catch-up, bounded by its own size."""
        if items and not self.overflowed:
            self._items.extend(items)
            self._ready.set()

    def put_first(self, item: T) -> None:
        """Put ``item`` ahead of everything, whatever the bound (what is already under way)."""
        self._items.appendleft(item)
        self._ready.set()

    def pop(self) -> T | None:
        """The oldest item, or ``None`` when there is none (or the outbox overflowed)."""
        if self.overflowed or not self._items:
            return None
        return self._items.popleft()

    async def wait(self) -> None:
        """Until there is an item, the outbox overflowed, or ``wake`` was called."""
        if self._items or self.overflowed:
            return
        self._ready.clear()
        await self._ready.wait()

    def wake(self) -> None:
        self._ready.set()

    async def get(self) -> T | None:
        while not self._items:
            if self.overflowed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed:
            return None
        return self._items.popleft()
