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
import logging
import re
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Literal, NamedTuple, Protocol

from ..cursor import Position
from ..delivery import Delivery, unpack
from ..exceptions import LayerUnavailable
from ..messages import GapMessage
from .redis_common import REDIS_ERRORS

__all__ = [
    "NO_EPOCH",
    "START",
    "Entries",
    "Head",
    "Page",
    "PageCache",
    "RedisReplay",
    "canonical",
    "canonical_id",
    "entry",
    "entry_position",
    "gap",
    "id_key",
    "live_notice",
]

log = logging.getLogger("taskcast.layers.redis")

NO_EPOCH = "-"  # the position of a group whose stream does not exist (yet)
START = "0-0"
EMPTY_READS = 3  # empty pages in a row while the reader is ahead: what it read is gone
FIRST_READ = 32  # entries a catch-up's first read asks for, before it knows their size


_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_U64 = 2**64  # a stream id's two parts are unsigned 64-bit numbers
_EPOCH = re.compile(r"-|\d{1,12}\.\d{1,6}")  # NO_EPOCH, or the seconds.microseconds Redis began it


def canonical(position: Position) -> Position:
    """``position`` with its id in canonical form; ``ValueError`` when it is not one this
    layer makes (an epoch as the append script writes it, a stream entry id)."""
    if not _EPOCH.fullmatch(position.epoch):
        raise ValueError("not an epoch of a stream")
    return position._replace(id=canonical_id(position.id))


def canonical_id(entry_id: str) -> str:
    """A stream entry id in canonical form ("007-0" and "7-0" are one position, and one cached
    page); ``ValueError`` for anything else."""
    match = _ID.fullmatch(entry_id)
    if match is None or not all(int(part) < _U64 for part in match.groups()):
        raise ValueError("not a stream entry id")
    return "-".join(str(int(part)) for part in match.groups())


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Head(NamedTuple):
    """A stream as it is now: its epoch and last number (from its meta hash), and its newest
    entry's id (``None``: no stream)."""

    epoch: str | None
    seq: int
    newest: str | None


class Page(NamedTuple):
    """What one read found: the decodable entries (shared, marked replayed), the id of the last
    entry it covers (decodable or not), the bytes of their data, and whether more may follow
    (the read was full, or cut at ``page_bytes``)."""

    deliveries: list[Delivery]
    last_id: str
    size: int
    more: bool


def gap(group: str, reason: Literal["trimmed", "reset"], position: Position) -> Delivery:
    """A loss notice; ``position`` is where a client resumes to get what comes next."""
    return Delivery(group, gap=GapMessage.of(group, reason), position=position)


class Source(Protocol):
    """What a replay needs of its layer."""

    page_size: int
    page_bytes: int
    replay_slots: asyncio.Semaphore
    pages: PageCache

    async def head(self, group: str) -> Head: ...

    async def read_page(self, group: str, epoch: str, after: str, count: int) -> Page:
        """Up to ``count`` entries after ``after`` (a full page of ``epoch`` may come from the
        cache)."""

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
        # Entries a read asks for: the page size, fewer when they are large (a page holds at
        # most about ``page_bytes`` of data, so that a socket's share of a catch-up stays small).
        self._count = min(layer.page_size, FIRST_READ)

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
                count = self._count
                read = await self._layer.read_page(
                    self.group, self.position.epoch, self.position.id, count
                )
            except REDIS_ERRORS as exc:
                raise LayerUnavailable(f"cannot read {self.group!r}: {exc}") from exc
            # No await from here on: the reader cannot fan out before the member is live again.
            page: list[Delivery] = []
            for delivery in read.deliveries:
                self._next(delivery, page)
            if id_key(read.last_id) > id_key(self.position.id):  # past undecodable entries
                self.position = self.position._replace(id=read.last_id)
            if read.deliveries:
                each = max(1, read.size // len(read.deliveries))
                self._count = max(1, min(self._layer.page_size, self._layer.page_bytes // each))
            if read.more:
                return page
            self._empty = 0 if read.size or read.deliveries else self._empty + 1
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
        epoch, seq, newest = await self._layer.head(self.group)
        if epoch is None or newest is None:
            self.position = Position(NO_EPOCH, START, 0)
            return None if since.epoch == NO_EPOCH else gap(self.group, "reset", self.position)
        if since.epoch == NO_EPOCH:  # joined before the stream began: all of it is new
            self.position = Position(epoch, START, 0)
            return None
        if since.epoch != epoch:
            self.position = Position(epoch, START, 0)
            self._told = True
            return gap(self.group, "reset", self.position)
        if id_key(since.id) > id_key(newest):
            # Past the newest entry: a stream restored from an older snapshot, or a forged id.
            # What the client holds cannot be placed: from the stream's end on, then.
            self._layer.pages.forget(self.group)
            self.position = Position(epoch, newest, seq)
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


PageKey = tuple[str, str, str, int]  # group, epoch, the id the page follows, entries asked


class PageCache:
    """Pages that did not end the stream, by what they were read for, least recently used out
    first, bounded by the bytes of the entries they hold."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[PageKey, Page] = OrderedDict()
        self._bytes = 0

    def get(self, key: PageKey) -> Page | None:
        found = self._pages.get(key)
        if found is not None:
            self._pages.move_to_end(key)
        return found

    def put(self, key: PageKey, page: Page) -> None:
        if page.size > self.max_bytes or key in self._pages:
            return
        self._pages[key] = page
        self._bytes += page.size
        while self._bytes > self.max_bytes:
            _, dropped = self._pages.popitem(last=False)
            self._bytes -= dropped.size

    def forget(self, group: str) -> None:
        for key in [key for key in self._pages if key[0] == group]:
            self._bytes -= self._pages.pop(key).size


# Entries as the layer reads them ------------------------------------------------------------

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def live_notice(group: str, before: Position, at: Position) -> Delivery | None:
    """The gap notice the reader owes its members between ``before`` and ``at``, if any."""
    if at.epoch != before.epoch:
        # The stream was lost and began again: what this process had not read is gone.
        return gap(group, "reset", Position(at.epoch, START, 0))
    if at.seq <= before.seq:
        # The numbers went backwards (Redis restored from an older snapshot).
        return gap(group, "reset", Position(at.epoch, before.id, at.seq - 1))
    if at.seq > before.seq + 1:
        # Entries were trimmed before this process read them (it fell behind capacity).
        return gap(group, "trimmed", Position(at.epoch, before.id, at.seq - 1))
    return None


def entry_position(entry_id: bytes, fields: dict[bytes, bytes]) -> Position:
    return Position(fields[b"e"].decode(), entry_id.decode(), int(fields[b"n"]))


def sent_at(entry_id: str) -> str | None:
    """When Redis kept an entry: its id's milliseconds, as ISO 8601 UTC (``None`` for an id
    that is not a stream id)."""
    try:
        when = datetime.fromtimestamp(int(entry_id.partition("-")[0]) / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(group: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Delivery | None:
    try:
        position = entry_position(entry_id, fields)
        return unpack(fields[b"d"], group, position, sent_at(position.id))
    except (KeyError, ValueError):
        log.warning("dropped an undecodable entry %r in group %r", entry_id, group)
        return None
