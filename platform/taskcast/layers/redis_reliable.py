"""The Redis reliable layer: messages kept per group, resumable from a position.

Each broadcast is appended once to the group's stream (one script call: idempotency key, append,
trim to capacity and age, expire when idle); every append carries a key (the caller's, or one
made here), so that redis-py's retry of a timed-out call cannot append twice. A transient
broadcast goes to the group's short live stream instead: delivered to the members present, not
kept, not numbered. One reader task per process blocks on the streams of the groups it has
members in, from the last ids it delivered, and fans each entry out once. Every kept entry
carries the stream's epoch and number; with its id it is the position clients resume from.

A member that joins with ``since``, or whose socket has no room for a kept entry, is handed a
``RedisReplay`` (see ``redis_replay``) and skipped by the reader until the replay has caught up;
after that, entries the replay already delivered (up to its ``floor``) are skipped. So each
entry reaches each member once, and a catch-up is paced by the member's socket.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from ..cursor import Position, id_key
from ..delivery import Delivery, unpack
from ..exceptions import LayerUnavailable
from .base import Member
from .local import LocalGroups
from .redis_common import (
    REDIS_ERRORS,
    RETRY_WINDOW,
    Backoff,
    Keys,
    answers,
    async_client,
    stop_reader,
)
from .redis_replay import NO_EPOCH, START, Head, Page, PageCache, RedisReplay, gap
from .redis_scripts import APPEND, TRANSIENT

__all__ = ["NO_EPOCH", "RedisReliableLayer"]

log = logging.getLogger("taskcast.layers.redis")

BLOCK_MS = 5_000
BATCH = 1_000

Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass
class _Stream:
    """The reader's state for one group with local members: the last entries it delivered, the
    members being caught up, and those caught up ahead of it (up to their floor)."""

    last_id: str
    epoch: str | None
    seq: int
    live_id: str = START
    behind: dict[str, RedisReplay] = field(default_factory=dict)
    floors: dict[str, Position] = field(default_factory=dict)

    def position(self) -> Position:
        return Position(self.epoch or NO_EPOCH, self.last_id, self.seq)


class RedisReliableLayer:
    keeps_messages = True

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        expiry: int,
        capacity: int,
        idempotency_window: int = 3600,
        page_size: int = 100,
        page_bytes: int = 256 << 10,
        replay_concurrency: int = 16,
        page_cache_bytes: int = 8 << 20,
    ) -> None:
        self.keys = Keys(prefix)
        self.expiry = expiry
        self.capacity = capacity
        self.idempotency_window = idempotency_window
        self.page_size = page_size
        self.page_bytes = page_bytes
        self.replay_slots = asyncio.Semaphore(replay_concurrency)
        self.pages = PageCache(page_cache_bytes)
        self._redis = async_client(url)
        self._read_redis = async_client(url, retries=0, timeout=BLOCK_MS / 1000 + 5)
        self._append = self._redis.register_script(APPEND)
        self._transient = self._redis.register_script(TRANSIENT)
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

    async def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        window = RETRY_WINDOW if key is None else self.idempotency_window
        dedupe = self.keys.dedupe(group, key or uuid.uuid4().hex)
        try:
            if transient:
                await self._transient(
                    keys=[self.keys.live(group), self.keys.meta(group), dedupe], args=[data, window]
                )
            else:
                keys = [self.keys.stream(group), self.keys.meta(group), dedupe]
                await self._append(keys=keys, args=[data, self.capacity, self.expiry, window])
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot append to {group!r}: {exc}") from exc

    async def group_add(
        self, group: str, member: Member, *, since: Position | None = None
    ) -> Position | None:
        try:
            if group not in self._streams:
                self._streams.setdefault(group, await self._tail(group))
            stream = self._streams[group]
            first = self._groups.add(group, member)
            # From here the reader fans out to the member: it has what the reader had.
            position = stream.position() if since is None else since
            if since is not None:
                self._fall_behind(group, stream, member, since)
            if first:
                self._changed.set()
                if self._reader is None:
                    self._reader = asyncio.create_task(self._read(), name="taskcast-stream-reader")
                else:
                    await self._wake_reader()
            return position
        except REDIS_ERRORS as exc:
            await self.group_discard(group, member)
            raise LayerUnavailable(f"cannot join {group!r}: {exc}") from exc

    async def group_discard(self, group: str, member: Member) -> None:
        if (stream := self._streams.get(group)) is not None:
            stream.behind.pop(member.member_id, None)
            stream.floors.pop(member.member_id, None)
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

    # Catch-ups (the Source a RedisReplay reads) ------------------------------------------------

    async def head(self, group: str) -> Head:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(self.keys.meta(group), "epoch", "seq")
        pipe.xrevrange(self.keys.stream(group), count=1)
        (epoch, seq), newest = await pipe.execute()
        return Head(
            epoch.decode() if epoch else None,
            int(seq or 0),
            newest[0][0].decode() if newest else None,
        )

    async def read_page(self, group: str, epoch: str, after: str, count: int) -> Page:
        key = (group, epoch, after, count)
        page = self.pages.get(key)
        if page is not None:
            return page
        stream_key = self.keys.stream(group)
        entries = cast(Entries, await self._redis.xrange(stream_key, f"({after}", count=count))
        deliveries: list[Delivery] = []
        size, last_id, taken = 0, after, 0
        for entry_id, fields in entries:
            if size >= self.page_bytes:  # the rest on the next read: a page stays small
                break
            size += len(fields.get(b"d", b""))
            last_id, taken = entry_id.decode(), taken + 1
            delivery = _entry(group, entry_id, fields)
            if delivery is not None:
                delivery.replayed = True
                deliveries.append(delivery)
        page = Page(deliveries, last_id, size, taken < len(entries) or len(entries) == count)
        if page.more and all(d.position and d.position.epoch == epoch for d in deliveries):
            self.pages.put(key, page)
        return page

    def rejoin(self, replay: RedisReplay, *, gone: bool = False) -> Position | None:
        stream = self._streams.get(replay.group)
        if stream is None or stream.behind.get(replay.member_id) is not replay:
            return replay.position  # the member left: nothing more to read
        at = replay.position
        if (
            stream.epoch is not None
            and at.epoch == stream.epoch
            and id_key(at.id) < id_key(stream.last_id)
        ):
            if not gone:
                return None
            at = stream.position()
        del stream.behind[replay.member_id]
        if at.id != START:
            stream.floors[replay.member_id] = at
        return at

    def _fall_behind(self, group: str, stream: _Stream, member: Member, since: Position) -> None:
        stream.floors.pop(member.member_id, None)
        replay = stream.behind[member.member_id] = RedisReplay(self, group, member.member_id, since)
        member.replay(replay)

    # The reader --------------------------------------------------------------------------------

    async def _tail(self, group: str) -> _Stream:
        """Where the reader starts in a group: after its newest entries."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrevrange(self.keys.stream(group), count=1)
        pipe.xrevrange(self.keys.live(group), count=1)
        kept, live = cast(tuple[Entries, Entries], await pipe.execute())
        stream = _Stream(START, None, 0, live[0][0].decode() if live else START)
        if kept:
            stream.epoch, stream.last_id, stream.seq = _position(kept[0][0], kept[0][1])
        return stream

    async def _read(self) -> None:
        backoff = Backoff()
        while not self._closing:
            if not self._groups:
                self._changed.clear()
                await self._changed.wait()
                continue
            streams: dict[Any, Any] = {self._wake_key: self._wake_id}
            names: dict[bytes, tuple[str, bool]] = {}
            for group, stream in self._streams.items():
                kept, live = self.keys.stream(group), self.keys.live(group)
                streams[kept], streams[live] = stream.last_id, stream.live_id
                names[kept.encode()], names[live.encode()] = (group, False), (group, True)
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
            read: dict[str, tuple[Entries, Entries]] = {}
            for key, entries in result:
                if key == self._wake_key.encode():
                    self._wake_id = entries[-1][0].decode()
                    continue
                name, is_live = names[key]
                kept_entries, live_entries = read.setdefault(name, ([], []))
                (live_entries if is_live else kept_entries).extend(entries)
            for name, (kept_entries, live_entries) in read.items():
                self._fan_out(name, kept_entries, live_entries)

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

    def _fan_out(self, group: str, kept: Entries, live: Entries) -> None:
        stream = self._streams.get(group)
        if stream is None:
            return
        for is_live, entry_id, fields in _in_order(kept, live):
            if is_live:
                if id_key(entry_id.decode()) <= id_key(stream.live_id):
                    continue  # read before this process's members joined
                stream.live_id = entry_id.decode()
                try:
                    delivery = unpack(fields[b"d"], group)
                except (KeyError, ValueError):
                    log.warning("dropped an undecodable live entry in group %r", group)
                    continue
                self._deliver(group, stream, delivery, None)
                continue
            entry = _entry(group, entry_id, fields)
            if entry is None or entry.position is None:
                stream.last_id = entry_id.decode()  # read past it (its members see a gap)
                continue
            at, before = entry.position, stream.position()
            if at.epoch == stream.epoch and id_key(at.id) <= id_key(stream.last_id):
                continue  # read before this process's members joined (a read still in flight)
            if stream.epoch is not None:
                notice = _notice(group, before, at)
                if notice is not None:
                    if notice.gap is not None and notice.gap.payload.reason == "reset":
                        self.pages.forget(group)
                    self._deliver(group, stream, notice, before)
            stream.epoch, stream.last_id, stream.seq = at
            if self.lag_observer is not None:
                self.lag_observer(time.time() - id_key(at.id)[0] / 1000)
            self._deliver(group, stream, entry, before)

    def _deliver(
        self, group: str, stream: _Stream, delivery: Delivery, before: Position | None
    ) -> None:
        """Hand ``delivery`` to the group's live members; one with no room for a kept entry
        falls behind, to be caught up from ``before``."""
        members = self._groups.members(group)
        if not stream.behind and not stream.floors:
            for member in tuple(members.values()):
                if not member.deliver(delivery) and before is not None:
                    self._fall_behind(group, stream, member, before)
            return
        at = delivery.position
        if at is None:  # transient: to every member present, whether caught up or not
            for member in tuple(members.values()):
                member.deliver(delivery)
            return
        for member_id, member in tuple(members.items()):
            if member_id in stream.behind:
                continue
            floor = stream.floors.get(member_id)
            if floor is not None:
                if at.epoch == floor.epoch and id_key(at.id) <= id_key(floor.id):
                    continue  # its catch-up delivered this already
                del stream.floors[member_id]
            if not member.deliver(delivery) and before is not None:
                self._fall_behind(group, stream, member, before)


def _notice(group: str, before: Position, at: Position) -> Delivery | None:
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


def _in_order(kept: Entries, live: Entries) -> Iterator[tuple[bool, bytes, dict[bytes, bytes]]]:
    """A group's kept and live entries of one read, in the order they were sent: a live entry
    goes after the kept message whose number it noted. (Across reads the order holds anyway: a
    read returns everything sent to both streams before it.)"""
    if not live:
        return ((False, entry_id, fields) for entry_id, fields in kept)
    tagged = (
        ((int(f.get(b"n", 0)), False, i, f) for i, f in kept),
        ((int(f.get(b"a", 0)), True, i, f) for i, f in live),
    )
    return ((is_live, i, f) for _, is_live, i, f in heapq.merge(*tagged))


def _position(entry_id: bytes, fields: dict[bytes, bytes]) -> Position:
    return Position(fields[b"e"].decode(), entry_id.decode(), int(fields[b"n"]))


def _entry(group: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Delivery | None:
    try:
        return unpack(fields[b"d"], group, _position(entry_id, fields))
    except (KeyError, ValueError):
        log.warning("dropped an undecodable entry %r in group %r", entry_id, group)
        return None
