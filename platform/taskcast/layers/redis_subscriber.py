"""A process's subscriptions to its groups' channels, for both Redis layers.

One subscriber connection per layer per process, subscribed to a group's channel while the
process has members in it; on a Cluster, one per node that owns such a channel, with sharded
subscriptions (``SSUBSCRIBE``), so that a broadcast travels only to the node of its slot and
from there to the processes that want it. A reader task per connection hands each message to
the layer once. A lost connection is made again with backoff (on a Cluster, after finding
where each channel's slot lives now, say after a failover) and resubscribed; sockets stay open.
A layer that can fetch what it missed meanwhile (the reliable one, from its streams) is told
which channels to catch up on, once they are subscribed again, and their messages are held
back until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from .redis_common import REDIS_ERRORS, Backoff
from .redis_target import RedisTarget, close_client

__all__ = ["Subscriber"]

log = logging.getLogger("taskcast.layers.redis")

SUBSCRIBE_WAIT = 2.0  # how long a join waits for Redis to confirm a new subscription

OnMessage = Callable[[bytes, bytes], Awaitable[None] | None]  # channel, data
OnResync = Callable[[list[bytes]], Awaitable[None]]  # channels whose messages may be missing


class Subscriber:
    def __init__(
        self,
        target: RedisTarget,
        client: Redis,
        on_message: OnMessage,
        on_resync: OnResync | None = None,
    ) -> None:
        self.target = target
        self._client = client  # commands (a Cluster client: where slots live)
        self.on_message = on_message
        self.on_resync = on_resync
        self._shards: dict[str, _Shard] = {}
        self._route: dict[bytes, str] = {}
        self.closing = False

    @property
    def reconnects(self) -> int:
        return sum(shard.reconnects for shard in self._shards.values())

    async def add(self, channel: bytes) -> None:
        """Subscribe; returns once Redis confirmed it (at most ``SUBSCRIBE_WAIT`` seconds)."""
        await (await self._shard(channel)).add(channel)

    async def discard(self, channel: bytes) -> None:
        shard = self._shards.get(self._route.pop(channel, ""))
        if shard is not None:
            await shard.discard(channel)

    async def close(self) -> None:
        self.closing = True
        for shard in self._shards.values():
            await shard.stop()
        self._shards.clear()
        self._route.clear()
        await close_client(self._client)

    async def _shard(self, channel: bytes) -> _Shard:
        name = self._route.get(channel)
        if name is None:
            name = self._route[channel] = await self._node_of(channel)
        shard = self._shards.get(name)
        if shard is None:
            shard = self._shards[name] = _Shard(self, name)
        return shard

    async def _node_of(self, channel: bytes) -> str:
        if not self.target.sharded:
            return ""
        await self._client.initialize()  # once: where the slots live
        node = self._client.get_node_from_key(channel)  # type: ignore[attr-defined]
        return str(node.name)

    def connect(self, name: str) -> Redis:
        """A client for one shard's subscriber connection."""
        if not self.target.sharded:
            return self._client
        host, _, port = name.rpartition(":")
        return self.target.node_client(host, int(port))

    async def reroute(self, shard: _Shard) -> None:
        """After a Cluster shard's connection failed: learn where slots live now and move the
        channels that belong elsewhere to their node's shard."""
        if not self.target.sharded:
            return
        with contextlib.suppress(*REDIS_ERRORS):
            await self._client.nodes_manager.initialize()  # type: ignore[attr-defined]
        for channel in list(shard.channels):
            name = await self._node_of(channel)
            if name != shard.name:
                shard.channels.discard(channel)
                self._route[channel] = name
                moved = self._shards.get(name) or self._shards.setdefault(name, _Shard(self, name))
                await moved.add(channel, catch_up=True)


class _Shard:
    """One subscriber connection and its reader."""

    def __init__(self, owner: Subscriber, name: str) -> None:
        self.owner, self.name = owner, name
        self.channels: set[bytes] = set()
        self.reconnects = 0
        self.down_since: float | None = None
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._resync = asyncio.Event()
        self._wake = asyncio.Event()  # a join waits: connect now
        self._failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmed: dict[bytes, asyncio.Future[None]] = {}
        self._pending: dict[bytes, int] = {}
        self._held: set[bytes] = set()  # resubscribed, not caught up yet: messages dropped
        self._catch_up: set[bytes] = set()
        self._sharded = owner.target.sharded

    def _want(self, channel: bytes, catch_up: bool) -> bool:
        """Note ``channel`` as wanted (the reader subscribes it when it connects); true when
        it was not."""
        if channel in self.channels:
            return False
        self.channels.add(channel)
        self._confirmed[channel] = asyncio.get_running_loop().create_future()
        if catch_up and self.owner.on_resync is not None:
            self._catch_up.add(channel)
            self._held.add(channel)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name=f"taskcast-sub-{self.name}")
        return True

    async def add(self, channel: bytes, *, catch_up: bool = False) -> None:
        """Subscribe ``channel``; ``catch_up``: its messages may have been missed (it moved
        here from another node): held back until the layer caught up on it."""
        if self._want(channel, catch_up) and self._pubsub is not None:
            await self._subscribe(self._pubsub, [channel])
        confirmed = self._confirmed.get(channel)
        if confirmed is not None and not confirmed.done():
            # Wait until Redis has the subscription, so that what is broadcast after this join
            # (the member's own join notice, say) reaches the member; while the connection is
            # down, until the reader's next try (made now, not after its backoff) fails.
            self._wake.set()
            await asyncio.wait(
                (confirmed, self._failed), timeout=SUBSCRIBE_WAIT, return_when="FIRST_COMPLETED"
            )

    async def discard(self, channel: bytes) -> None:
        self.channels.discard(channel)
        self._confirmed.pop(channel, None)
        self._held.discard(channel)
        self._catch_up.discard(channel)
        if self._pubsub is not None:
            try:
                if self._sharded:
                    await self._pubsub.sunsubscribe(channel)
                else:
                    await self._pubsub.unsubscribe(channel)
            except REDIS_ERRORS:
                self._resync.set()  # the reader reconnects with the channels still wanted

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            client = self._client
            if client is not None:  # closing its connection ends a read in progress
                await client.connection_pool.disconnect()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(reader, 5)
        if self._client is not None and self._client is not self.owner._client:
            await self._client.aclose()

    async def _subscribe(self, pubsub: PubSub, channels: list[bytes]) -> None:
        for channel in channels:
            self._pending[channel] = self._pending.get(channel, 0) + 1
        try:
            if self._sharded:  # one slot a command
                for channel in channels:
                    await pubsub.ssubscribe(channel)
            else:
                await pubsub.subscribe(*channels)
        except REDIS_ERRORS:
            self._resync.set()

    async def _read(self) -> None:
        backoff = Backoff()
        first = True
        while not self.owner.closing:
            if self._client is None:
                self._client = self.owner.connect(self.name)
            pubsub = self._client.pubsub()
            try:
                self._pending.clear()
                self._resync.clear()
                await pubsub.connect()  # type: ignore[no-untyped-call]
                await pubsub.ping()
                if not first and self.owner.on_resync is not None:
                    self._catch_up |= self.channels
                self._held = set(self._catch_up)
                # Before subscribing: a join from here on subscribes its channel itself.
                self._pubsub = pubsub
                if self.channels:
                    await self._subscribe(pubsub, list(self.channels))
                if self.down_since is not None:
                    down = time.monotonic() - self.down_since
                    log.info("subscriber %s reconnected after %.2fs", self.where, down)
                    self.down_since = None
                backoff.reset()
                first = False
                while not self._resync.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self._handle(message)
                    if self._catch_up and not self._pending:
                        await self._resynced()
            except Exception as exc:  # whatever it was, the reader lives on: it reconnects
                if self.owner.closing:
                    return
                if not isinstance(exc, REDIS_ERRORS):
                    log.exception("subscriber %s failed; reconnecting", self.where)
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    log.warning("subscriber %s lost Redis (%s); reconnecting", self.where, exc)
                self.reconnects += 1
                first = False
                await self._drop_client()
                self._failed.set_result(None)
                self._failed = asyncio.get_running_loop().create_future()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), backoff.next())
                with contextlib.suppress(*REDIS_ERRORS):  # else: this node again, later
                    await self.owner.reroute(self)
                if not self.channels:  # all moved to other nodes: this one is not needed
                    self._reader, self.down_since = None, None
                    return
            finally:
                self._pubsub = None
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    @property
    def where(self) -> str:
        return self.name or self.owner.target.describe()

    async def _drop_client(self) -> None:
        """On a Cluster, a node's client is made again (its node may have a new address)."""
        if self._sharded and self._client is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._client.aclose()
            self._client = None

    async def _resynced(self) -> None:
        channels = [c for c in self._catch_up if c in self.channels]
        assert self.owner.on_resync is not None
        await self.owner.on_resync(channels)
        self._catch_up.clear()
        self._held.clear()

    async def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind in ("message", "smessage"):
            if channel in self._held or channel not in self.channels:
                return  # its catch-up reads it; or left
            result = self.owner.on_message(channel, message["data"])
            if inspect.isawaitable(result):
                await result
        elif kind in ("subscribe", "ssubscribe"):
            left = self._pending.pop(channel, 1) - 1
            if left > 0:  # more subscribes of it on their way (a leave and a join between)
                self._pending[channel] = left
            confirmed = self._confirmed.get(channel)
            if left <= 0 and confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == "sunsubscribe" and channel in self.channels and channel not in self._pending:
            # Not ours: the Cluster moved the channel's slot to another node.
            self._resync.set()
            raise ConnectionResetError(f"{channel!r} moved to another node")
