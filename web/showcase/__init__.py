"""The multi-layer showcase: four consumers on four layers."""

from __future__ import annotations

from taskcast import Consumer

from .consumers import AnalyticsConsumer, ChatConsumer, NotificationConsumer, ReliableChatConsumer

ENDPOINTS: dict[str, type[Consumer]] = {
    "/ws/chat": ChatConsumer,
    "/ws/reliable": ReliableChatConsumer,
    "/ws/notifications": NotificationConsumer,
    "/ws/analytics": AnalyticsConsumer,
}

__all__ = [
    "ENDPOINTS",
    "AnalyticsConsumer",
    "ChatConsumer",
    "NotificationConsumer",
    "ReliableChatConsumer",
]
