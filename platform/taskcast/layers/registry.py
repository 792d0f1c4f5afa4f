"""Layers by alias, built from configuration."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt, model_validator

from .base import ChannelLayer, SyncGroupSender
from .memory import InMemoryLayer
from .redis_pubsub import RedisPubSubLayer
from .redis_reliable import RedisReliableLayer
from .redis_sync import RedisPubSubSender, RedisReliableSender

__all__ = ["LayerConfig", "LayerRegistry", "build_layer", "build_sync_sender"]

LayerKind = Literal["memory", "redis_pubsub", "redis_reliable"]


class LayerConfig(BaseModel):
    """How to build one layer. ``expiry`` (seconds a message is kept) and ``capacity`` (messages
    kept per group) are required by, and only used by, ``redis_reliable``, with its catch-up
    limits: ``page_size`` (entries a catch-up reads at a time, so a socket holds at most about
    two pages of one) and ``replay_concurrency`` (catch-up reads at once per process).
    ``idempotency_window``: how long a send's key (a task id) makes a repeat of it a no-op: at
    least the longest a task can be redelivered after it ran."""

    model_config = ConfigDict(frozen=True)

    kind: LayerKind = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "taskcast"
    expiry: PositiveInt | None = None
    capacity: PositiveInt | None = None
    idempotency_window: PositiveInt = 3660
    page_size: PositiveInt = 100
    replay_concurrency: PositiveInt = 16

    @model_validator(mode="after")
    def _reliable_needs_limits(self) -> LayerConfig:
        if self.kind == "redis_reliable" and (self.expiry is None or self.capacity is None):
            raise ValueError("a redis_reliable layer needs expiry and capacity")
        return self


def build_layer(config: LayerConfig) -> ChannelLayer:
    match config.kind:
        case "memory":
            return InMemoryLayer()
        case "redis_pubsub":
            return RedisPubSubLayer(
                config.url, config.prefix, idempotency_window=config.idempotency_window
            )
        case "redis_reliable":
            assert config.expiry is not None and config.capacity is not None
            return RedisReliableLayer(
                config.url,
                config.prefix,
                expiry=config.expiry,
                capacity=config.capacity,
                idempotency_window=config.idempotency_window,
                page_size=config.page_size,
                replay_concurrency=config.replay_concurrency,
            )


def build_sync_sender(config: LayerConfig) -> SyncGroupSender:
    """The sync side of a Redis layer (there is none for the in-memory layer: it lives in one
    process; use ``InMemoryLayer.sync_sender()`` from a thread of that process)."""
    match config.kind:
        case "memory":
            raise ValueError("the in-memory layer has no sync sender for other processes")
        case "redis_pubsub":
            return RedisPubSubSender(
                config.url, config.prefix, idempotency_window=config.idempotency_window
            )
        case "redis_reliable":
            assert config.expiry is not None and config.capacity is not None
            return RedisReliableSender(
                config.url,
                config.prefix,
                expiry=config.expiry,
                capacity=config.capacity,
                idempotency_window=config.idempotency_window,
            )


class LayerRegistry(Mapping[str, ChannelLayer]):
    """The process's layers by alias; closing the registry closes them all."""

    def __init__(self, layers: Mapping[str, ChannelLayer]) -> None:
        self._layers = dict(layers)

    @classmethod
    def from_configs(cls, configs: Mapping[str, LayerConfig]) -> LayerRegistry:
        return cls({alias: build_layer(config) for alias, config in configs.items()})

    def __getitem__(self, alias: str) -> ChannelLayer:
        try:
            return self._layers[alias]
        except KeyError:
            known = ", ".join(sorted(self._layers)) or "none"
            raise KeyError(f"no layer with alias {alias!r} (configured: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    async def ready(self) -> dict[str, bool]:
        """Each layer's readiness, by alias."""
        return {alias: await layer.ready() for alias, layer in self._layers.items()}

    async def close(self) -> None:
        for layer in self._layers.values():
            await layer.close()
