"""Catch-ups on the Redis reliable layer: a member's way from a position back to live delivery.

A member behind in a group (it resumed with a cursor, or its socket fell behind live traffic) is
given a ``RedisReplay``; its writer asks for one page at a time as the socket drains. A page is
one ``XRANGE`` after the member's position, run under the process's limit on concurrent
catch-ups; full pages are shared between members through a small cache, so a thousand clients
resuming from the same place decode and render each entry once. When a page reaches the end of
the stream and the member is at or past what the process's reader has fanned out, the layer
makes it a live member again (see ``RedisReliableLayer.rejoin``).

Numbers tell what is missing: a jump is a ``trimmed`` gap; another epoch, or a number that went
backwards (a Redis restored from an older snapshot), is a ``reset`` gap. Never a silent gap.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Literal, Protocol

from ..cursor import Position
from ..delivery import Delivery
from ..exceptions import LayerUnavailable
from ..messages import GapMessage
from .redis_common import REDIS_ERRORS

__all__ = ["NO_EPOCH", "START", "PageCache", "RedisReplay", "gap"]

NO_EPOCH = "-"  # the position of a group whose stream does not exist (yet)
START = "0-0"
EMPTY_READS = 3  # empty pages in a row while the reader is ahead: what it read is gone


def gap(group: str, reason: Literal["trimmed", "reset"], position: Position) -> Delivery:
    """A loss notice; ``position`` is where a client resumes to get what comes next."""
    return Delivery(group, gap=GapMessage.of(group, reason), position=position)


class Source(Protocol):
    """What a replay needs of its layer."""

    page_size: int
    replay_slots: asyncio.Semaphore
    pages: PageCache

    async def head(self, group: str) -> tuple[str | None, int, bool]:
        """The stream's epoch, its last message number, and whether the stream exists."""

    async def read_page(self, group: str, after: str) -> tuple[list[Delivery], bool]:
        """The entries after ``after`` (shared, marked replayed), and whether the page was
        full (more may follow)."""

    def rejoin(self, replay: RedisReplay, *, gone: bool = False) -> Position | None:
        """Make the member live again when it is caught up with the reader: its position, or
        ``None`` while the reader is ahead. ``gone``: what the reader is ahead by can no
        longer be read; rejoin at the reader's position."""


class RedisReplay:
    def __init__(self, layer: Source, group: str, member_id: str, since: Position) -> None:
        self.group = group
        self.member_id = member_id
        self.size = layer.page_size
        self.position = since
        self._layer = layer
        self._checked = False
        self._told = False  # a gap notice was just given: the next entry's number is the base
        self._empty = 0
        self._done = False

    async def page(self) -> list[Delivery] | None:
        if self._done:
            return None
        async with self._layer.replay_slots:
            try:
                if not self._checked:
                    notice = await self._check()
                    self._checked = True
                    if notice is not None:
                        return [notice]
                entries, full = await self._layer.read_page(self.group, self.position.id)
            except REDIS_ERRORS as exc:
                raise LayerUnavailable(f"cannot read {self.group!r}: {exc}") from exc
            # No await from here on: the reader cannot fan out before the member is live again.
            page: list[Delivery] = []
            for delivery in entries:
                self._next(delivery, page)
            if full:
                return page
            self._empty = 0 if entries else self._empty + 1
            gone = self._empty >= EMPTY_READS
            position = self._layer.rejoin(self, gone=gone)
            if position is None:
                return page
            if gone and position != self.position:
                page.append(gap(self.group, "trimmed", position))
            self._done = True
            return page or None

    async def _check(self) -> Delivery | None:
        """Where the member's position stands in the stream as it is now."""
        since = self.position
        epoch, seq, exists = await self._layer.head(self.group)
        if epoch is None or not exists:
            self.position = Position(NO_EPOCH, START, 0)
            return None if since.epoch == NO_EPOCH else gap(self.group, "reset", self.position)
        if since.epoch == NO_EPOCH:  # joined before the stream began: all of it is new
            self.position = Position(epoch, START, 0)
            return None
        if since.epoch != epoch:
            self.position = Position(epoch, START, 0)
            self._told = True
            return gap(self.group, "reset", self.position)
        if seq < since.seq:  # the stream's history went backwards: numbers will be reused
            self._layer.pages.forget(self.group)
            self.position = Position(epoch, since.id, seq)
            self._told = True
            return gap(self.group, "reset", self.position)
        return None

    def _next(self, delivery: Delivery, page: list[Delivery]) -> None:
        at, current = delivery.position, self.position
        assert at is not None
        if current.epoch == NO_EPOCH:
            current = Position(at.epoch, START, 0)
        if self._told:
            self._told = False
        elif at.epoch != current.epoch or at.seq <= current.seq:
            self._layer.pages.forget(self.group)
            after = current.id if at.epoch == current.epoch else START
            page.append(gap(self.group, "reset", Position(at.epoch, after, at.seq - 1)))
        elif at.seq > current.seq + 1:
            page.append(gap(self.group, "trimmed", Position(at.epoch, current.id, at.seq - 1)))
        self.position = at
        page.append(delivery)


class PageCache:
    """Full pages of decoded entries by (group, the id they follow), least recently used out
    first, bounded by the bytes of the entries they hold."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[tuple[str, str], tuple[list[Delivery], int]] = OrderedDict()
        self._bytes = 0

    def get(self, group: str, after: str) -> list[Delivery] | None:
        found = self._pages.get((group, after))
        if found is None:
            return None
        self._pages.move_to_end((group, after))
        return found[0]

    def put(self, group: str, after: str, page: list[Delivery], size: int) -> None:
        if size > self.max_bytes or (group, after) in self._pages:
            return
        self._pages[group, after] = (page, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, dropped) = self._pages.popitem(last=False)
            self._bytes -= dropped

    def forget(self, group: str) -> None:
        for key in [key for key in self._pages if key[0] == group]:
            self._bytes -= self._pages.pop(key)[1]
