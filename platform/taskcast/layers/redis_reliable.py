"""The Redis reliable layer: messages kept per group, resumable from a position.

Each broadcast is appended once to the group's stream (one script call: idempotency key, append,
trim to capacity and age, expire when idle); every append carries a key (the caller's, or one
made here), so that redis-py's retry of a timed-out call cannot append twice; the same script
publishes the entry on the group's channel. A transient broadcast is only published: delivered to
the members present, not kept, not numbered. Each process subscribes to the channels of the
groups it has members in (see ``redis_subscriber``), so that a broadcast costs each process one
message, however many groups it holds, and fans each entry out once. What a process missed (its
connection was lost, a notification did not come) it reads from the stream, from the last entry
it delivered. Every kept entry carries the stream's epoch and number; with its id it is the
position clients resume from (opaque to everything but this layer).

A member that joins with ``since``, or whose socket has no room for a kept entry, is handed a
``RedisReplay`` (see ``redis_replay``) and skipped by the reader until the replay has caught up;
after that, entries the replay already delivered (up to its ``floor``) are skipped. So each
entry reaches each member once, and a catch-up is paced by the member's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from ..cursor import Position
from ..delivery import Delivery, unpack
from ..exceptions import LayerUnavailable
from .base import Member
from .local import LocalGroups
from .redis_common import REDIS_ERRORS, RETRY_WINDOW, Keys, answers
from .redis_replay import (
    NO_EPOCH,
    START,
    Entries,
    Head,
    Page,
    PageCache,
    RedisReplay,
    canonical,
    entry,
    entry_position,
    id_key,
    live_notice,
    sent_at,
)
from .redis_scripts import APPEND, TRANSIENT
from .redis_subscriber import Subscriber
from .redis_target import RedisTarget, close_client

__all__ = ["NO_EPOCH", "RedisReliableLayer"]

log = logging.getLogger("taskcast.layers.redis")

BATCH = 1_000  # entries a read of missed ones takes at a time


@dataclass
class _Stream:
    """The layer's state for one group with local members: the last entries it delivered, the
    members being caught up, and those caught up ahead of it (up to their floor). While the
    group is being joined (``joining``), its messages wait there."""

    last_id: str
    epoch: str | None
    seq: int
    behind: dict[str, RedisReplay] = field(default_factory=dict)
    floors: dict[str, Position] = field(default_factory=dict)
    joining: list[bytes] | None = None
    joined: asyncio.Event = field(default_factory=asyncio.Event)

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
        self.target = RedisTarget.parse(url)
        self._publish_command = "SPUBLISH" if self.target.sharded else "PUBLISH"
        self._redis = self.target.async_client()
        self._append = self._redis.register_script(APPEND)
        self._transient = self._redis.register_script(TRANSIENT)
        self._groups = LocalGroups()
        self._streams: dict[str, _Stream] = {}
        self._subscriber = Subscriber(
            self.target, self.target.async_client(retries=0), self._received, self._resync
        )
        # Called with each entry's age (seconds) as it is fanned out; set by the app.
        self.lag_observer: Callable[[float], None] | None = None

    @property
    def reconnects(self) -> int:
        return self._subscriber.reconnects

    async def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        window = RETRY_WINDOW if key is None else self.idempotency_window
        dedupe = self.keys.dedupe(group, key or uuid.uuid4().hex)
        channel, publish = self.keys.channel(group), self._publish_command
        try:
            if transient:
                await self._transient(keys=[dedupe], args=[data, window, channel, publish])
            else:
                keys = [self.keys.stream(group), self.keys.meta(group), dedupe]
                args: list[bytes | str | int] = [
                    data,
                    self.capacity,
                    self.expiry,
                    window,
                    channel,
                    publish,
                ]
                await self._append(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot append to {group!r}: {exc}") from exc

    async def group_add(
        self, group: str, member: Member, *, since: Position | None = None
    ) -> Position | None:
        if since is not None:
            since = self.check_position(since)
        try:
            stream = self._streams.get(group)
            if stream is None:
                stream = await self._join(group)
            else:
                await stream.joined.wait()  # another member's join of it, bounded by Redis's
            if self._streams.get(group) is not stream:
                raise ConnectionError(f"{group!r} could not be joined")
            self._groups.add(group, member)
            # From here the layer fans out to the member: it has what the layer had.
            position = stream.position() if since is None else since
            if since is not None:
                self._fall_behind(group, stream, member, since)
            return position
        except REDIS_ERRORS as exc:
            await self.group_discard(group, member)
            raise LayerUnavailable(f"cannot join {group!r}: {exc}") from exc

    def check_position(self, position: Position) -> Position:
        """``position`` with its id in canonical form; ``ValueError`` when it is not an id of a
        Redis stream."""
        return canonical(position)

    async def group_discard(self, group: str, member: Member) -> None:
        if (stream := self._streams.get(group)) is not None:
            stream.behind.pop(member.member_id, None)
            stream.floors.pop(member.member_id, None)
        if self._groups.discard(group, member):
            self._streams.pop(group, None)
            await self._subscriber.discard(self.keys.channel(group))

    async def flush(self) -> None:
        for group in list(self._streams):
            with contextlib.suppress(*REDIS_ERRORS):
                await self._subscriber.discard(self.keys.channel(group))
        self._groups.clear()
        self._streams.clear()

    async def ready(self) -> bool:
        return await answers(self._redis)

    async def close(self) -> None:
        await self._subscriber.close()
        await self.flush()
        await close_client(self._redis)

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
            delivery = entry(group, entry_id, fields)
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

    async def _join(self, group: str) -> _Stream:
        """Subscribe to the group's channel, then find where its stream ends: the layer starts
        there. Messages that come meanwhile wait, then go through like any other (those the
        end already covers are skipped)."""
        stream = self._streams[group] = _Stream(START, None, 0, joining=[])
        try:
            await self._subscriber.add(self.keys.channel(group))
            newest = cast(Entries, await self._redis.xrevrange(self.keys.stream(group), count=1))
        except BaseException:
            if self._streams.get(group) is stream:
                del self._streams[group]
                await self._subscriber.discard(self.keys.channel(group))
            raise
        finally:
            stream.joined.set()
        if newest:
            stream.epoch, stream.last_id, stream.seq = entry_position(newest[0][0], newest[0][1])
        while stream.joining:  # no await but in _take's reads: more may come meanwhile
            await self._take(group, stream, stream.joining.pop(0))
        stream.joining = None
        return stream

    async def _received(self, channel: bytes, payload: bytes) -> None:
        group = self.keys.group_of(channel)
        stream = self._streams.get(group)
        if stream is None:
            return
        if stream.joining is not None:
            stream.joining.append(payload)
            return
        await self._take(group, stream, payload)

    async def _take(self, group: str, stream: _Stream, payload: bytes) -> None:
        head, _, data = payload.partition(b"\n")
        if head == b"T":  # transient: to the members present
            try:
                delivery = unpack(data, group)
            except ValueError:
                log.warning("dropped an undecodable transient broadcast in group %r", group)
                return
            self._deliver(group, stream, delivery, None)
            return
        try:
            _, entry_id, epoch, seq = head.decode().split(" ")
            at = Position(epoch, entry_id, int(seq))
        except ValueError:
            log.warning("dropped an undecodable notification in group %r", group)
            return
        if at.epoch == stream.epoch and at.seq > stream.seq + 1:
            await self._fill(group, stream)  # notifications missed: read them from the stream
            return
        try:
            entry = unpack(data, group, at, sent_at(entry_id))
        except ValueError:
            log.warning("dropped an undecodable entry %r in group %r", entry_id, group)
            stream.last_id = entry_id  # read past it (its members see a gap)
            return
        self._fan_out(group, stream, entry)

    async def _resync(self, channels: list[bytes]) -> None:
        """After the subscriber's connection was lost: what each group missed, from its stream."""
        for channel in channels:
            group = self.keys.group_of(channel)
            stream = self._streams.get(group)
            if stream is not None and stream.joining is None:
                await self._fill(group, stream)

    async def _fill(self, group: str, stream: _Stream) -> None:
        while True:
            entries = cast(
                Entries,
                await self._redis.xrange(
                    self.keys.stream(group), f"({stream.last_id}", count=BATCH
                ),
            )
            if self._streams.get(group) is not stream:
                return  # left meanwhile
            for entry_id, fields in entries:
                kept = entry(group, entry_id, fields)
                if kept is None:
                    stream.last_id = entry_id.decode()
                else:
                    self._fan_out(group, stream, kept)
            if len(entries) < BATCH:
                return

    def _fan_out(self, group: str, stream: _Stream, entry: Delivery) -> None:
        at, before = entry.position, stream.position()
        assert at is not None
        if at.epoch == stream.epoch and id_key(at.id) <= id_key(stream.last_id):
            return  # read before this process's members joined, or read again after a loss
        if stream.epoch is not None:
            notice = live_notice(group, before, at)
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
