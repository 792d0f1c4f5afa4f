"""The Redis pub/sub layer: fast, at-most-once.

One PUBLISH per broadcast (SPUBLISH on a Cluster), never retried after a timeout (Redis may have
run it); with an idempotency key (a task's id), one script that publishes at most once per key.
Per process, one subscriber (see ``redis_subscriber``) receives each broadcast once; it is
unpacked once and handed to the local members. When Redis goes away the subscriber reconnects
with backoff and resubscribes; sockets stay open, and what was published meanwhile is lost (that
is pub/sub).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from ..cursor import Position
from ..delivery import unpack
from ..exceptions import LayerUnavailable
from .base import Member
from .local import LocalGroups
from .redis_common import REDIS_ERRORS, Keys, answers
from .redis_scripts import PUBLISH_ONCE
from .redis_subscriber import Subscriber
from .redis_target import RedisTarget, close_client

__all__ = ["RedisPubSubLayer"]

log = logging.getLogger("taskcast.layers.redis")


class RedisPubSubLayer:
    keeps_messages = False

    def __init__(self, url: str, prefix: str, *, idempotency_window: int = 3600) -> None:
        self.keys = Keys(prefix)
        self.idempotency_window = idempotency_window
        self.target = RedisTarget.parse(url)
        self._publish_command = "SPUBLISH" if self.target.sharded else "PUBLISH"
        self._redis = self.target.async_client(idempotent=False)
        self._publish_once = self._redis.register_script(PUBLISH_ONCE)
        self._publish = self._redis.spublish if self.target.sharded else self._redis.publish
        self._groups = LocalGroups()
        self._subscriber = Subscriber(
            self.target, self.target.async_client(retries=0), self._received
        )
        self.lag_observer: Callable[[float], None] | None = None  # nothing kept: no lag

    @property
    def reconnects(self) -> int:
        return self._subscriber.reconnects

    async def group_add(
        self, group: str, member: Member, *, since: Position | None = None
    ) -> Position | None:
        self._groups.add(group, member)
        try:
            await self._subscriber.add(self.keys.channel(group))
        except REDIS_ERRORS as exc:  # where a Cluster's slot lives, with no node answering
            await self.group_discard(group, member)
            raise LayerUnavailable(f"cannot join {group!r}: {exc}") from exc
        return None

    async def group_discard(self, group: str, member: Member) -> None:
        if self._groups.discard(group, member):
            await self._subscriber.discard(self.keys.channel(group))

    async def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        channel = self.keys.channel(group)
        try:
            if key is None:
                await self._publish(channel, data)
            else:
                dedupe = self.keys.dedupe(group, key)
                args: list[bytes | str | int] = [
                    channel,
                    data,
                    self.idempotency_window,
                    self._publish_command,
                ]
                await self._publish_once(keys=[dedupe], args=args)
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot publish to {group!r}: {exc}") from exc

    def check_position(self, position: Position) -> Position:
        return position  # nothing kept: positions are ignored

    async def flush(self) -> None:
        for group in list(self._groups):
            with contextlib.suppress(*REDIS_ERRORS):
                await self._subscriber.discard(self.keys.channel(group))
        self._groups.clear()

    async def ready(self) -> bool:
        return await answers(self._redis)

    async def close(self) -> None:
        await self._subscriber.close()
        self._groups.clear()
        await close_client(self._redis)

    def _received(self, channel: bytes, data: bytes) -> None:
        group = self.keys.group_of(channel)
        try:
            delivery = unpack(data, group)
        except ValueError:
            log.warning("dropped an undecodable broadcast on %r", channel)
            return
        self._groups.deliver(group, delivery)
