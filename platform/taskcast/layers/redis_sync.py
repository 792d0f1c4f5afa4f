"""Sync senders for the Redis layers, for processes without an event loop (Celery workers).

One sync client per sender, reused across calls; redis-py's pool notices a fork and opens new
connections in the child, so a sender built before the fork stays safe after it. They write exactly
what the async layers write, with the same rules: a PUBLISH is never retried after a timeout (a
task's key makes it at most once per key), and every reliable append carries an idempotency key.
"""

from __future__ import annotations

import uuid

from ..exceptions import LayerUnavailable
from .redis_common import REDIS_ERRORS, RETRY_WINDOW, Keys
from .redis_scripts import APPEND, PUBLISH_ONCE, TRANSIENT
from .redis_target import RedisTarget, close_sync_client

__all__ = ["RedisPubSubSender", "RedisReliableSender"]


class RedisPubSubSender:
    def __init__(self, url: str, prefix: str, *, idempotency_window: int = 3600) -> None:
        self.keys = Keys(prefix)
        self.idempotency_window = idempotency_window
        target = RedisTarget.parse(url)
        self._publish = "SPUBLISH" if target.sharded else "PUBLISH"
        self._redis = target.sync_client(idempotent=False)
        self._publish_once = self._redis.register_script(PUBLISH_ONCE)
        self._send = self._redis.spublish if target.sharded else self._redis.publish

    def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        channel = self.keys.channel(group)
        try:
            if key is None:
                self._send(channel, data)
            else:
                dedupe = self.keys.dedupe(group, key)
                args: list[bytes | str | int] = [
                    channel,
                    data,
                    self.idempotency_window,
                    self._publish,
                ]
                self._publish_once(keys=[dedupe], args=args)
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot publish to {group!r}: {exc}") from exc

    def close(self) -> None:
        close_sync_client(self._redis)


class RedisReliableSender:
    def __init__(
        self, url: str, prefix: str, *, expiry: int, capacity: int, idempotency_window: int = 3600
    ) -> None:
        self.keys = Keys(prefix)
        self.expiry = expiry
        self.capacity = capacity
        self.idempotency_window = idempotency_window
        target = RedisTarget.parse(url)
        self._publish = "SPUBLISH" if target.sharded else "PUBLISH"
        self._redis = target.sync_client(idempotent=True)
        self._append = self._redis.register_script(APPEND)
        self._transient = self._redis.register_script(TRANSIENT)

    def group_send(
        self, group: str, data: bytes, *, key: str | None = None, transient: bool = False
    ) -> None:
        window = RETRY_WINDOW if key is None else self.idempotency_window
        dedupe = self.keys.dedupe(group, key or uuid.uuid4().hex)
        channel, publish = self.keys.channel(group), self._publish
        try:
            if transient:
                self._transient(keys=[dedupe], args=[data, window, channel, publish])
            else:
                keys = [self.keys.stream(group), self.keys.meta(group), dedupe]
                self._append(
                    keys=keys, args=[data, self.capacity, self.expiry, window, channel, publish]
                )
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot append to {group!r}: {exc}") from exc

    def close(self) -> None:
        close_sync_client(self._redis)
