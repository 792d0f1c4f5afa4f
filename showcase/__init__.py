"""The multi-layer showcase: four consumers on four layers; and the seed app's system echo and
rooms."""

from __future__ import annotations

from taskcast import Consumer

from .consumers import AnalyticsConsumer, ChatConsumer, NotificationConsumer, ReliableChatConsumer
from .jobs import BackgroundJobsConsumer, ShowcaseJobWatcher
from .seed import RoomConsumer, SystemConsumer

ENDPOINTS: dict[str, type[Consumer]] = {
    "/ws/chat": ChatConsumer,
    "/ws/reliable": ReliableChatConsumer,
    "/ws/notifications": NotificationConsumer,
    "/ws/analytics": AnalyticsConsumer,
    "/ws/system": SystemConsumer,
    "/ws/room/{room_name}": RoomConsumer,
    "/ws/background_jobs": BackgroundJobsConsumer,
    "/ws/jobs/{job_id}": ShowcaseJobWatcher,
}

__all__ = [
    "ENDPOINTS",
    "AnalyticsConsumer",
    "BackgroundJobsConsumer",
    "ChatConsumer",
    "NotificationConsumer",
    "ReliableChatConsumer",
    "RoomConsumer",
    "ShowcaseJobWatcher",
    "SystemConsumer",
]
