"""The Redis reliable layer: messages kept per group, resumable from a position.

Each broadcast is appended once to the group's stream (one script call: idempotency key, append,
trim to capacity and age, expire when idle). One reader task per process blocks on the streams of
the groups it has members in, from the last id it delivered, and fans each entry out once. Every
entry carries the stream's epoch; with its id it is the position clients resume from.

A member that joins with ``since`` is caught up first: a gap notice if messages after its position
are gone, then every retained entry after it, in order; live entries that arrive meanwhile are held
and passed on after, skipping those the catch-up delivered, so each entry reaches it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ..cursor import Position, id_key
from ..delivery import Delivery, unpack
from ..exceptions import LayerUnavailable
from ..messages import GapMessage
from .base import Member
from .local import LocalGroups
from .redis_common import APPEND_SCRIPT, REDIS_ERRORS, Backoff, Keys, async_client

__all__ = ["NO_EPOCH", "RedisReliableLayer"]

log = logging.getLogger("taskcast.layers.redis")

NO_EPOCH = "-"  # the position of a group whose stream does not exist (yet)
START = "0-0"
BLOCK_MS = 5_000
BATCH = 1_000

Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class _Stream:
    """The reader's state for one group with local members."""

    last_id: str
    epoch: str | None
    catching_up: dict[str, list[Delivery]] = field(default_factory=dict)


class RedisReliableLayer:
    keeps_messages = True

    def __init__(self, url: str, prefix: str, *, expiry: int, capacity: int) -> None:
        self.keys = Keys(prefix)
        self.expiry = expiry
        self.capacity = capacity
        self._redis = async_client(url)
        self._read_redis = async_client(url, retries=0)
        self._append = self._redis.register_script(APPEND_SCRIPT)
        self._groups = LocalGroups()
        self._streams: dict[str, _Stream] = {}
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self.reconnects = 0

    async def group_send(self, group: str, data: bytes, *, key: str | None = None) -> None:
        dedupe = "" if key is None else self.keys.dedupe(group, key)
        keys = [self.keys.stream(group), self.keys.epoch(group), dedupe]
        try:
            await self._append(keys=keys, args=[data, self.capacity, self.expiry])
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot append to {group!r}: {exc}") from exc

    async def group_add(self, group: str, member: Member, *, since: Position | None = None) -> None:
        try:
            if group not in self._streams:
                last_id, epoch = await self._tail(group)
                self._streams.setdefault(group, _Stream(last_id, epoch))
            stream = self._streams[group]
            if self._groups.add(group, member):
                self._changed.set()
                if self._reader is None:
                    self._reader = asyncio.create_task(self._read(), name="taskcast-stream-reader")
            if since is None:
                return
            held: list[Delivery] = []
            stream.catching_up[member.member_id] = held
            try:
                caught_up_to = await self._catch_up(group, member, since)
                for delivery in held:  # no await from here on: nothing new can slip in between
                    if delivery.position is None or id_key(delivery.position.id) > caught_up_to:
                        member.deliver(delivery)
            finally:
                stream.catching_up.pop(member.member_id, None)
        except REDIS_ERRORS as exc:
            await self.group_discard(group, member)
            raise LayerUnavailable(f"cannot join {group!r}: {exc}") from exc

    async def group_discard(self, group: str, member: Member) -> None:
        if self._groups.discard(group, member):
            self._streams.pop(group, None)

    async def flush(self) -> None:
        self._groups.clear()
        self._streams.clear()

    async def ready(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), 2))
        except REDIS_ERRORS:
            return False

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self.flush()
        await self._redis.aclose()
        await self._read_redis.aclose()

    async def _tail(self, group: str) -> tuple[str, str | None]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrevrange(self.keys.stream(group), "+", "-", count=1)
        pipe.get(self.keys.epoch(group))
        last, epoch = await pipe.execute()
        return (last[0][0].decode() if last else START), (epoch.decode() if epoch else None)

    async def _catch_up(self, group: str, member: Member, since: Position) -> tuple[int, int]:
        """Deliver to ``member`` what came after ``since``; returns the last id delivered."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(self.keys.epoch(group))
        pipe.xinfo_stream(self.keys.stream(group))
        raw_epoch, info = await pipe.execute(raise_on_error=False)
        if isinstance(raw_epoch, BaseException):
            raise raw_epoch
        exists = raw_epoch is not None and not isinstance(info, BaseException)
        if not exists:
            if since.epoch != NO_EPOCH:
                self._gap(member, group, "reset", Position(NO_EPOCH, START))
            return id_key(START)
        epoch = raw_epoch.decode()
        start = since.id if since.epoch == epoch else START
        if since.epoch not in (epoch, NO_EPOCH):
            self._gap(member, group, "reset", Position(epoch, START))
        elif _trimmed_after(start, info):
            self._gap(member, group, "trimmed", Position(epoch, start))
        last = start
        while True:
            stream = self.keys.stream(group)
            entries = cast(Entries, await self._redis.xrange(stream, f"({last}", "+", count=BATCH))
            for entry_id, fields in entries:
                last = entry_id.decode()
                delivery = _entry(group, last, fields)
                if delivery is not None:
                    member.deliver(delivery)
            if len(entries) < BATCH:
                return id_key(last)

    @staticmethod
    def _gap(
        member: Member, group: str, reason: Literal["trimmed", "reset"], position: Position
    ) -> None:
        member.deliver(Delivery(group, gap=GapMessage.of(group, reason), position=position))

    async def _read(self) -> None:
        backoff = Backoff()
        while True:
            streams = {
                self.keys.stream(g): s.last_id
                for g, s in self._streams.items()
                if g in self._groups
            }
            self._changed.clear()
            if not streams:
                await self._changed.wait()
                continue
            read = asyncio.ensure_future(self._xread(streams))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                done, _ = await asyncio.wait({read, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                if not read.done():
                    # A group gained its first member (or the layer closes): read again with it.
                    # Cancelling drops the connection mid-reply; nothing is lost, as the ids
                    # only move on delivery.
                    read.cancel()
                    with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                        await read
            if read not in done:
                continue
            try:
                result = read.result()
            except REDIS_ERRORS as exc:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("stream reader lost Redis (%s); reconnecting", exc)
                self.reconnects += 1
                await asyncio.sleep(backoff.next())
                continue
            if self._down_since is not None:
                down = time.monotonic() - self._down_since
                log.info("stream reader reconnected after %.2fs", down)
                self._down_since = None
            backoff.reset()
            for key, entries in result:
                self._fan_out(key.decode()[len(self.keys.prefix) + len(":stream:") :], entries)

    async def _xread(self, streams: dict[Any, Any]) -> list[tuple[bytes, Entries]]:
        result = await self._read_redis.xread(streams, count=BATCH, block=BLOCK_MS)
        return cast(list[tuple[bytes, Entries]], result or [])

    def _fan_out(self, group: str, entries: Entries) -> None:
        stream = self._streams.get(group)
        if stream is None:
            return
        for entry_id, fields in entries:
            stream.last_id = entry_id.decode()
            delivery = _entry(group, stream.last_id, fields)
            if delivery is None or delivery.position is None:
                continue
            epoch = delivery.position.epoch
            if stream.epoch is not None and epoch != stream.epoch:
                # The stream was lost and began again: what this process had not read is gone.
                gap = Delivery(group, gap=GapMessage.of(group, "reset"), position=delivery.position)
                self._deliver(group, stream, gap)
            stream.epoch = epoch
            self._deliver(group, stream, delivery)

    def _deliver(self, group: str, stream: _Stream, delivery: Delivery) -> None:
        for held in stream.catching_up.values():
            held.append(delivery)
        self._groups.deliver(group, delivery, skip=stream.catching_up)


def _entry(group: str, entry_id: str, fields: dict[bytes, bytes]) -> Delivery | None:
    try:
        return unpack(fields[b"d"], group, Position(fields[b"e"].decode(), entry_id))
    except (KeyError, ValueError):
        log.warning("dropped an undecodable entry %s in group %r", entry_id, group)
        return None


def _trimmed_after(start: str, info: dict[str, Any]) -> bool:
    """Whether entries after ``start`` were trimmed: the stream no longer holds ``start`` itself
    (or, from the very start, holds fewer entries than were ever added)."""
    if start == START:
        return bool(info["entries-added"] > info["length"])
    first = info.get("first-entry")
    if not first:  # everything was trimmed
        last = id_key(info["last-generated-id"].decode())
        return bool(info["entries-added"] > 0 and last > id_key(start))
    return id_key(first[0].decode()) > id_key(start)
