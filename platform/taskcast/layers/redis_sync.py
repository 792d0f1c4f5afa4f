"""Sync senders for the Redis layers, for processes without an event loop (Celery workers).

One sync client per sender, reused across calls; redis-py's pool notices a fork and opens new
connections in the child, so a sender built before the fork stays safe after it. They write exactly
what the async layers write: a PUBLISH of the packed bytes, or the same append script.
"""

from __future__ import annotations

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..exceptions import LayerUnavailable
from .redis_common import APPEND_SCRIPT, REDIS_ERRORS, Keys

__all__ = ["RedisPubSubSender", "RedisReliableSender"]


def _client(url: str) -> Redis:
    return Redis.from_url(url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=2)


class RedisPubSubSender:
    def __init__(self, url: str, prefix: str) -> None:
        self.keys = Keys(prefix)
        self._redis = _client(url)

    def group_send(self, group: str, data: bytes, *, key: str | None = None) -> None:
        try:
            self._redis.publish(self.keys.channel(group), data)
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot publish to {group!r}: {exc}") from exc

    def close(self) -> None:
        self._redis.close()


class RedisReliableSender:
    def __init__(self, url: str, prefix: str, *, expiry: int, capacity: int) -> None:
        self.keys = Keys(prefix)
        self.expiry = expiry
        self.capacity = capacity
        self._redis = _client(url)
        self._append = self._redis.register_script(APPEND_SCRIPT)

    def group_send(self, group: str, data: bytes, *, key: str | None = None) -> None:
        dedupe = "" if key is None else self.keys.dedupe(group, key)
        keys = [self.keys.stream(group), self.keys.meta(group), dedupe]
        try:
            self._append(keys=keys, args=[data, self.capacity, self.expiry])
        except REDIS_ERRORS as exc:
            raise LayerUnavailable(f"cannot append to {group!r}: {exc}") from exc

    def close(self) -> None:
        self._redis.close()
