"""Channel layers: the contract, the in-memory and Redis layers, and the registry by alias."""

from __future__ import annotations

from .base import ChannelLayer, Member, SyncGroupSender
from .memory import InMemoryLayer
from .redis_pubsub import RedisPubSubLayer
from .redis_reliable import RedisReliableLayer
from .redis_sync import RedisPubSubSender, RedisReliableSender
from .registry import LayerConfig, LayerRegistry, build_layer, build_sync_sender

__all__ = [
    "ChannelLayer",
    "InMemoryLayer",
    "LayerConfig",
    "LayerRegistry",
    "Member",
    "RedisPubSubLayer",
    "RedisPubSubSender",
    "RedisReliableLayer",
    "RedisReliableSender",
    "SyncGroupSender",
    "build_layer",
    "build_sync_sender",
]
