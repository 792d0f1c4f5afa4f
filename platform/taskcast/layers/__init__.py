"""Channel layers: the contract, the in-memory layer, and the registry of layers by alias."""

from __future__ import annotations

from .base import ChannelLayer, Member, SyncGroupSender
from .memory import InMemoryLayer
from .registry import LayerConfig, LayerRegistry, build_layer

__all__ = [
    "ChannelLayer",
    "InMemoryLayer",
    "LayerConfig",
    "LayerRegistry",
    "Member",
    "SyncGroupSender",
    "build_layer",
]
