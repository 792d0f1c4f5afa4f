"""The Redis backend: its configuration, and the layers and sync senders it builds.

``redis_pubsub``: fast, at-most-once (see ``redis_pubsub``). ``redis_reliable``: messages kept
per group with ``expiry`` (seconds) and ``capacity`` (messages), resumable (``redis_reliable``).
Either speaks to one node, a Sentinel-managed primary or a Cluster, by its URL's scheme (see
``redis_target``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt, field_validator

from .redis_pubsub import RedisPubSubLayer
from .redis_reliable import RedisReliableLayer
from .redis_sync import RedisPubSubSender, RedisReliableSender
from .redis_target import RedisTarget

__all__ = ["RedisPubSubConfig", "RedisReliableConfig"]


class _RedisConfig(BaseModel):
    """``url``: which Redis (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``,
    ``redis+cluster://``). ``prefix``: every key and channel of the layer begins with it (no
    braces: they would break the Cluster's hash tags). ``idempotency_window``: how long a send's
    key (a task id) makes a repeat of it a no-op: at least the longest a task can be redelivered
    after it ran."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "taskcast"
    idempotency_window: PositiveInt = 3660

    @field_validator("url")
    @classmethod
    def _a_redis(cls, url: str) -> str:
        RedisTarget.parse(url)
        return url

    @field_validator("prefix")
    @classmethod
    def _no_braces(cls, prefix: str) -> str:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("a key prefix must be non-empty, without braces")
        return prefix

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        # The URL may carry a password: shown without it.
        for name, value in super().__repr_args__():
            yield name, RedisTarget.parse(value).describe() if name == "url" else value


class RedisPubSubConfig(_RedisConfig):
    kind: Literal["redis_pubsub"] = "redis_pubsub"

    def build_layer(self) -> RedisPubSubLayer:
        return RedisPubSubLayer(self.url, self.prefix, idempotency_window=self.idempotency_window)

    def build_sync_sender(self) -> RedisPubSubSender:
        return RedisPubSubSender(self.url, self.prefix, idempotency_window=self.idempotency_window)


class RedisReliableConfig(_RedisConfig):
    """Also ``expiry`` (seconds a message is kept) and ``capacity`` (messages kept per group),
    with the catch-up limits: ``page_size`` (entries a catch-up reads at a time, so a socket
    holds at most about two pages of one) and ``replay_concurrency`` (catch-up reads at once
    per process)."""

    kind: Literal["redis_reliable"] = "redis_reliable"
    expiry: PositiveInt
    capacity: PositiveInt
    page_size: PositiveInt = 100
    replay_concurrency: PositiveInt = 16

    def build_layer(self) -> RedisReliableLayer:
        return RedisReliableLayer(
            self.url,
            self.prefix,
            expiry=self.expiry,
            capacity=self.capacity,
            idempotency_window=self.idempotency_window,
            page_size=self.page_size,
            replay_concurrency=self.replay_concurrency,
        )

    def build_sync_sender(self) -> RedisReliableSender:
        return RedisReliableSender(
            self.url,
            self.prefix,
            expiry=self.expiry,
            capacity=self.capacity,
            idempotency_window=self.idempotency_window,
        )
