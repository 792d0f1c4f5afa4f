"""Taskcast: typed real-time events from background tasks to browsers.

The public API is what ``__all__`` names; the modules behind it are free to change.
"""

from __future__ import annotations

from .consumer import Consumer, ConsumerApp, ConsumerOptions
from .delivery import Delivery
from .exceptions import ConnectionRefused, DefinitionError, PublishError, TaskcastError
from .handlers import HandlerSpec, event_handler, ws_handler
from .layers import ChannelLayer, InMemoryLayer, LayerConfig, LayerRegistry, SyncGroupSender
from .messages import BaseMessage, ErrorMessage, ErrorPayload, PingMessage, PongMessage
from .outbox import Overflow
from .publish import Publisher, SyncPublisher

__all__ = [
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
    "HandlerSpec",
    "InMemoryLayer",
    "LayerConfig",
    "LayerRegistry",
    "Overflow",
    "PingMessage",
    "PongMessage",
    "PublishError",
    "Publisher",
    "SyncGroupSender",
    "SyncPublisher",
    "TaskcastError",
    "event_handler",
    "ws_handler",
]
