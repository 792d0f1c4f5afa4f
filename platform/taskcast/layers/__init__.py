"""Channel layers: the contract, the in-memory and Redis layers, and the registry by alias."""

from __future__ import annotations

from .base import ChannelLayer, Member, SyncGroupSender
from .memory import InMemoryLayer, MemoryConfig
from .redis_backend import RedisPubSubConfig, RedisReliableConfig
from .redis_pubsub import RedisPubSubLayer
from .redis_reliable import RedisReliableLayer
from .redis_sync import RedisPubSubSender, RedisReliableSender
from .registry import (
    BackendConfig,
    LayerConfig,
    LayerRegistry,
    build_layer,
    build_sync_sender,
    layer_config,
)

__all__ = [
    "BackendConfig",
    "ChannelLayer",
    "InMemoryLayer",
    "LayerConfig",
    "LayerRegistry",
    "Member",
    "MemoryConfig",
    "RedisPubSubConfig",
    "RedisPubSubLayer",
    "RedisPubSubSender",
    "RedisReliableConfig",
    "RedisReliableLayer",
    "RedisReliableSender",
    "SyncGroupSender",
    "build_layer",
    "build_sync_sender",
    "layer_config",
]
