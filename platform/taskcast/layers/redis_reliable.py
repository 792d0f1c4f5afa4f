"""The Redis reliable layer: messages kept per group, resumable from a position.

Each broadcast is appended once to the group's stream (one script call: idempotency key, append,
trim to capacity and age, expire when idle). One reader task per process blocks on the streams of
the groups it has members in, from the last id it delivered, and fans each entry out once. Every
entry carries the stream's epoch; with its id it is the position clients resume from.

A member that joins with ``since`` is caught up first: a gap notice if messages after its position
are gone, then every retained entry after it, in order. Live entries that the reader fans out
meanwhile are held and passed on after; until the reader has passed the last entry the catch-up
delivered, the member is skipped for entries it already has. So each entry reaches it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from ..cursor import Position, id_key
from ..delivery import Delivery, unpack
from ..exceptions import LayerUnavailable
from ..messages import GapMessage
from .base import Member
from .local import LocalGroups
from .redis_common import (
    APPEND_SCRIPT,
    REDIS_ERRORS,
    Backoff,
    Keys,
    answers,
    async_client,
    stop_reader,
)

__all__ = ["NO_EPOCH", "RedisReliableLayer"]

log = logging.getLogger("taskcast.layers.redis")

NO_EPOCH = "-"  # the position of a group whose stream does not exist (yet)
START = "0-0"
BLOCK_MS = 5_000
BATCH = 1_000

Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class _Joining:
    """A member being caught up: what the reader fanned out meanwhile (``held``, until the catch-up
    ends), then the last id the catch-up delivered (``floor``)."""

    held: list[Delivery] | None = field(default_factory=list)
    floor: tuple[int, int] = (0, 0)


@dataclass
class _Stream:
    """The reader's state for one group with local members: the last entry it delivered."""

    last_id: str
    epoch: str | None
    seq: int
    joining: dict[str, _Joining] = field(default_factory=dict)


class RedisReliableLayer:
    keeps_messages = True

    def __init__(self, url: str, prefix: str, *, expiry: int, capacity: int) -> None:
        self.keys = Keys(prefix)
        self.expiry = expiry
        self.capacity = capacity
        self._redis = async_client(url)
        self._read_redis = async_client(url, retries=0, timeout=BLOCK_MS / 1000 + 5)
        self._append = self._redis.register_script(APPEND_SCRIPT)
        self._groups = LocalGroups()
        self._streams: dict[str, _Stream] = {}
        self._changed = asyncio.Event()
        self._wake_key = f"{prefix}:wake:{uuid.uuid4().hex}"
        self._wake_id = "0-0"
        self._closing = False
        # Called with each entry's age (seconds) as the reader fans it out; set by the app.
        self.lag_observer: Callable[[float], None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self.reconnects = 0

    async def group_send(self, group: str, data: bytes, *, key: str | None = None) -> None:
        dedupe = "" if key is None else self.keys.dedupe(group, key)
        keys = [self.keys.stream(group), self.keys.meta(group), dedupe]
        try:
            await self._append(keys=keys, args=[data, self.capacity, self.expiry])
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot append to {group!r}: {exc}") from exc

    async def group_add(self, group: str, member: Member, *, since: Position | None = None) -> None:
        try:
            if group not in self._streams:
                self._streams.setdefault(group, await self._tail(group))
            stream = self._streams[group]
            if self._groups.add(group, member):
                self._changed.set()
                if self._reader is None:
                    self._reader = asyncio.create_task(self._read(), name="taskcast-stream-reader")
                else:
                    await self._wake_reader()
            if since is None:
                return
            joining = stream.joining[member.member_id] = _Joining()
            try:
                joining.floor = await self._catch_up(group, member, since)
            except BaseException:
                stream.joining.pop(member.member_id, None)
                raise
            # No await from here on: the reader cannot fan out in between.
            for delivery in joining.held or ():
                if _after(delivery, joining.floor):
                    member.deliver(delivery)
            joining.held = None
            if id_key(stream.last_id) >= joining.floor:
                del stream.joining[member.member_id]
        except REDIS_ERRORS as exc:
            await self.group_discard(group, member)
            raise LayerUnavailable(f"cannot join {group!r}: {exc}") from exc

    async def group_discard(self, group: str, member: Member) -> None:
        if (stream := self._streams.get(group)) is not None:
            stream.joining.pop(member.member_id, None)
        if self._groups.discard(group, member):
            self._streams.pop(group, None)

    async def flush(self) -> None:
        self._groups.clear()
        self._streams.clear()

    async def ready(self) -> bool:
        return await answers(self._redis)

    async def close(self) -> None:
        self._closing = True
        await stop_reader(self._reader, self._read_redis)
        self._reader = None
        await self.flush()
        await self._redis.aclose()
        await self._read_redis.aclose()

    async def _tail(self, group: str) -> _Stream:
        """Where the reader starts in a group: after its newest entry."""
        entries = cast(Entries, await self._redis.xrevrange(self.keys.stream(group), count=1))
        if not entries:
            return _Stream(START, None, 0)
        position = _position(entries[0][0], entries[0][1])
        return _Stream(position.id, position.epoch, position.seq)

    async def _catch_up(self, group: str, member: Member, since: Position) -> tuple[int, int]:
        """Deliver to ``member`` what came after ``since`` (after a gap notice if some of it is
        gone); returns the last id delivered."""
        stream_key = self.keys.stream(group)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(self.keys.meta(group), "epoch")
        pipe.exists(stream_key)
        raw_epoch, exists = await pipe.execute()
        if not raw_epoch or not exists:
            if since.epoch != NO_EPOCH:
                self._gap(member, group, "reset", Position(NO_EPOCH, START, 0))
            return id_key(START)
        epoch = raw_epoch.decode()
        after, seq = (since.id, since.seq) if since.epoch == epoch else (START, 0)
        told = since.epoch not in (epoch, NO_EPOCH)
        if told:
            self._gap(member, group, "reset", Position(epoch, START, 0))
        while True:
            entries = cast(Entries, await self._redis.xrange(stream_key, f"({after}", count=BATCH))
            for entry_id, fields in entries:
                delivery = _entry(group, entry_id, fields)
                if delivery is None or delivery.position is None:
                    continue
                delivery.replayed = True
                if delivery.position.seq > seq + 1 and not told:
                    self._gap(member, group, "trimmed", Position(epoch, after, seq))
                told = True
                after, seq = delivery.position.id, delivery.position.seq
                member.deliver(delivery)
            if len(entries) < BATCH:
                return id_key(after)

    @staticmethod
    def _gap(
        member: Member, group: str, reason: Literal["trimmed", "reset"], position: Position
    ) -> None:
        member.deliver(_gap(group, reason, position))

    async def _read(self) -> None:
        backoff = Backoff()
        while not self._closing:
            if not self._groups:
                self._changed.clear()
                await self._changed.wait()
                continue
            streams: dict[Any, Any] = {self._wake_key: self._wake_id}
            streams.update((self.keys.stream(g), s.last_id) for g, s in self._streams.items())
            try:
                result = await self._xread(streams)
            except REDIS_ERRORS as exc:
                if self._closing:
                    return
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
                if key == self._wake_key.encode():
                    self._wake_id = entries[-1][0].decode()
                else:
                    self._fan_out(key.decode()[len(self.keys.prefix) + len(":stream:") :], entries)

    async def _wake_reader(self) -> None:
        """Make the reader's blocking read return, so that it reads a new group's stream too.
        An entry on the process's own wake stream does it with no race: a read sent after the
        entry returns at once."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1)
        pipe.expire(self._wake_key, 60)
        await pipe.execute()

    async def _xread(self, streams: dict[Any, Any]) -> list[tuple[bytes, Entries]]:
        result = await self._read_redis.xread(streams, count=BATCH, block=BLOCK_MS)
        return cast(list[tuple[bytes, Entries]], result or [])

    def _fan_out(self, group: str, entries: Entries) -> None:
        stream = self._streams.get(group)
        if stream is None:
            return
        for entry_id, fields in entries:
            delivery = _entry(group, entry_id, fields)
            if delivery is None or delivery.position is None:
                continue
            position = delivery.position
            if position.epoch == stream.epoch and id_key(position.id) <= id_key(stream.last_id):
                continue  # read before this process's members joined (a read still in flight)
            if stream.epoch is not None and position.epoch != stream.epoch:
                # The stream was lost and began again: what this process had not read is gone.
                self._deliver(group, stream, _gap(group, "reset", position))
            elif stream.epoch is not None and position.seq > stream.seq + 1:
                # Entries were trimmed before this process read them (it fell behind capacity).
                self._deliver(group, stream, _gap(group, "trimmed", position))
            stream.epoch, stream.last_id, stream.seq = position
            if self.lag_observer is not None:
                self.lag_observer(time.time() - id_key(position.id)[0] / 1000)
            self._deliver(group, stream, delivery)

    def _deliver(self, group: str, stream: _Stream, delivery: Delivery) -> None:
        for member_id, joining in tuple(stream.joining.items()):
            if joining.held is not None:
                joining.held.append(delivery)
            elif _after(delivery, joining.floor):
                del stream.joining[member_id]  # caught up with the reader: a member like any other
        self._groups.deliver(group, delivery, skip=stream.joining)


def _after(delivery: Delivery, floor: tuple[int, int]) -> bool:
    return delivery.position is None or id_key(delivery.position.id) > floor


def _position(entry_id: bytes, fields: dict[bytes, bytes]) -> Position:
    return Position(fields[b"e"].decode(), entry_id.decode(), int(fields[b"n"]))


def _gap(group: str, reason: Literal["trimmed", "reset"], position: Position) -> Delivery:
    return Delivery(group, gap=GapMessage.of(group, reason), position=position)


def _entry(group: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Delivery | None:
    try:
        return unpack(fields[b"d"], group, _position(entry_id, fields))
    except (KeyError, ValueError):
        log.warning("dropped an undecodable entry %r in group %r", entry_id, group)
        return None
