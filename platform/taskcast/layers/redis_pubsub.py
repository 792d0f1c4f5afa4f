"""The Redis pub/sub layer: fast, at-most-once.

One PUBLISH per broadcast, never retried after a timeout (Redis may have run it); with
an idempotency key (a task's id), one script that publishes at most once per key. Per process,
one subscriber connection, subscribed to a group's channel while the process has members in it.
A reader task receives each broadcast once, unpacks it once and hands it to the local members.
When Redis goes away the reader reconnects with backoff and resubscribes; sockets stay open, and
what was published meanwhile is lost (that is pub/sub).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.asyncio.client import PubSub

from ..cursor import Position
from ..delivery import unpack
from ..exceptions import LayerUnavailable
from .base import Member
from .local import LocalGroups
from .redis_common import REDIS_ERRORS, Backoff, Keys, answers, async_client, stop_reader
from .redis_scripts import PUBLISH_ONCE

__all__ = ["RedisPubSubLayer"]

log = logging.getLogger("taskcast.layers.redis")

SUBSCRIBE_WAIT = 2.0  # how long a join waits for Redis to confirm a new subscription


class RedisPubSubLayer:
    keeps_messages = False

    def __init__(self, url: str, prefix: str, *, idempotency_window: int = 3600) -> None:
        self.keys = Keys(prefix)
        self.idempotency_window = idempotency_window
        self._redis = async_client(url, idempotent=False)
        self._publish_once = self._redis.register_script(PUBLISH_ONCE)
        self._sub_redis = async_client(url, retries=0)
        self._groups = LocalGroups()
        self._confirmed: dict[bytes, asyncio.Future[None]] = {}
        self._pending: dict[bytes, int] = {}
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._resync = asyncio.Event()
        self._down_since: float | None = None
        self.reconnects = 0
        self._closing = False

    async def group_add(
        self, group: str, member: Member, *, since: Position | None = None
    ) -> Position | None:
        channel = self.keys.channel(group)
        if self._groups.add(group, member):
            self._confirmed[channel] = asyncio.get_running_loop().create_future()
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="taskcast-pubsub-reader")
            elif self._pubsub is not None:
                await self._subscribe(self._pubsub, [channel])
        confirmed = self._confirmed.get(channel)
        if confirmed is not None and not confirmed.done() and self._down_since is None:
            # Wait until Redis has the subscription, so that what is broadcast after this join
            # (the member's own join notice, say) reaches the member. Shielded: the future is
            # shared with other joins.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
        return None

    async def group_discard(self, group: str, member: Member) -> None:
        if not self._groups.discard(group, member):
            return
        channel = self.keys.channel(group)
        self._confirmed.pop(channel, None)
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(channel)
            except REDIS_ERRORS:
                self._resync.set()  # the reader reconnects with the channels still wanted

    async def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        channel = self.keys.channel(group)
        try:
            if key is None:
                await self._redis.publish(channel, data)
            else:
                dedupe = self.keys.dedupe(group, key)
                await self._publish_once(
                    keys=[dedupe], args=[channel, data, self.idempotency_window]
                )
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot publish to {group!r}: {exc}") from exc

    async def flush(self) -> None:
        for group in self._groups:
            if self._pubsub is not None:
                with contextlib.suppress(*REDIS_ERRORS):
                    await self._pubsub.unsubscribe(self.keys.channel(group))
        self._groups.clear()
        self._confirmed.clear()

    async def ready(self) -> bool:
        return await answers(self._redis)

    async def close(self) -> None:
        self._closing = True
        await stop_reader(self._reader, self._sub_redis)
        self._reader = None
        self._groups.clear()
        await self._redis.aclose()
        await self._sub_redis.aclose()

    async def _subscribe(self, pubsub: PubSub, channels: list[bytes]) -> None:
        for channel in channels:
            self._pending[channel] = self._pending.get(channel, 0) + 1
        try:
            await pubsub.subscribe(*channels)
        except REDIS_ERRORS:
            self._resync.set()

    async def _read(self) -> None:
        backoff = Backoff()
        while not self._closing:
            pubsub = self._sub_redis.pubsub()
            try:
                self._pending.clear()
                self._resync.clear()
                await pubsub.connect()  # type: ignore[no-untyped-call]
                await pubsub.ping()
                wanted = [self.keys.channel(group) for group in self._groups]
                if wanted:
                    await self._subscribe(pubsub, wanted)
                self._pubsub = pubsub
                if self._down_since is not None:
                    log.info("pub/sub reconnected after %.2fs", time.monotonic() - self._down_since)
                    self._down_since = None
                backoff.reset()
                while not self._resync.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._handle(message)
            except REDIS_ERRORS as exc:
                if self._closing:
                    return
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    log.warning("pub/sub connection lost (%s); reconnecting", exc)
                self.reconnects += 1
                await asyncio.sleep(backoff.next())
            finally:
                self._pubsub = None
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind == "message":
            group = channel[len(self.keys.prefix) + 1 :].decode()
            try:
                delivery = unpack(message["data"], group)
            except ValueError:
                log.warning("dropped an undecodable broadcast on %r", channel)
                return
            self._groups.deliver(group, delivery)
        elif kind == "subscribe":
            left = self._pending.pop(channel, 1) - 1
            if left > 0:  # more subscribes of it on their way (a leave and a join between)
                self._pending[channel] = left
            confirmed = self._confirmed.get(channel)
            if left <= 0 and confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
