"""Taskcast: typed real-time events from background tasks to browsers.

The public API is what ``__all__`` names; the modules behind it are free to change.
"""

from __future__ import annotations

from .addresses import AddressRules
from .consumer import Consumer, ConsumerApp, ConsumerOptions
from .cursor import Position
from .delivery import Delivery
from .exceptions import (
    ConnectionRefused,
    DefinitionError,
    InvalidAddress,
    InvalidPayload,
    LayerUnavailable,
    PublishError,
    TaskcastError,
)
from .handlers import HandlerSpec, event_handler, ws_handler
from .layers import (
    ChannelLayer,
    InMemoryLayer,
    LayerConfig,
    LayerRegistry,
    RedisPubSubLayer,
    RedisReliableLayer,
    SyncGroupSender,
    layer_config,
)
from .messages import (
    BaseMessage,
    ErrorMessage,
    ErrorPayload,
    GapMessage,
    GapPayload,
    PingMessage,
    PongMessage,
)
from .outbox import Overflow
from .publish import Publisher, SyncPublisher

__all__ = [
    "AddressRules",
    "BaseMessage",
    "ChannelLayer",
    "ConnectionRefused",
    "Consumer",
    "ConsumerApp",
    "ConsumerOptions",
    "DefinitionError",
    "Delivery",
    "ErrorMessage",
    "ErrorPayload",
    "GapMessage",
    "GapPayload",
    "HandlerSpec",
    "InMemoryLayer",
    "InvalidAddress",
    "InvalidPayload",
    "LayerConfig",
    "LayerRegistry",
    "LayerUnavailable",
    "Overflow",
    "PingMessage",
    "PongMessage",
    "Position",
    "PublishError",
    "Publisher",
    "RedisPubSubLayer",
    "RedisReliableLayer",
    "SyncGroupSender",
    "SyncPublisher",
    "TaskcastError",
    "event_handler",
    "layer_config",
    "ws_handler",
]
