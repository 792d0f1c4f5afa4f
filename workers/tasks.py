"""The tasks: what the seed's external sender did, plus the analytics pipeline.

Call them by name: ``celery -A workers call workers.tasks.send_chat_message -a '["hi"]'``.
They publish through one sync publisher per worker process, retry with backoff while Redis is
away, and pass their task id as the idempotency key of every broadcast, on pub/sub and reliable
layers alike, so that a task delivered twice (its worker killed mid-task, a retry after a
broadcast went out) broadcasts once: the key is kept for the settings' ``idempotency_window``
(the visibility timeout plus the longest retry backoff). Bad arguments fail the task with a
``ValueError`` that says what was wrong, before anything is broadcast.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from celery import Celery, Task, shared_task
from pydantic import JsonValue, TypeAdapter, ValidationError

from showcase import AnalyticsConsumer, ChatConsumer, NotificationConsumer, ReliableChatConsumer
from showcase.analytics import AnalyticsLimits
from showcase.messages import (
    AnalyticsEvent,
    AnalyticsPayload,
    MessageText,
    SystemNotify,
    SystemPeriodicNotify,
)
from showcase.settings import TASK_RETRY_BACKOFF_MAX, Settings
from taskcast import BaseMessage, Consumer, InvalidAddress, LayerUnavailable, SyncPublisher
from taskcast.layers.redis_target import RedisTarget
from workers.analytics import AnalyticsCounts

RETRY: dict[str, Any] = {
    "autoretry_for": (LayerUnavailable, redis.RedisError),
    "retry_backoff": True,
    "retry_backoff_max": TASK_RETRY_BACKOFF_MAX,  # below the visibility timeout (settings check)
    "retry_jitter": True,
    "max_retries": 10,
}
SEED_EVENTS = [
    "user_login:john_doe",
    "page_view:/dashboard",
    "button_click:export_data",
    "session_duration:1234",
    "error:api_timeout",
]
SUMMARY_TITLE = "📈 Analytics summary"
UNCHANGED = "unchanged since the last summary: nothing broadcast"


@dataclass(frozen=True)
class Resources:
    """What the tasks of one Celery app share in a worker process: built on first use, reused
    by every task after (redis-py's pools notice a fork and reconnect in the child)."""

    settings: Settings
    publisher: SyncPublisher
    store: redis.Redis

    def key(self, name: str) -> str:
        return f"{self.settings.key_prefix}:{name}"


@cache
def resources(app: Celery) -> Resources:
    settings: Settings = app.conf.taskcast_settings
    return Resources(
        settings,
        SyncPublisher.from_configs(settings.layer_configs(), settings.address_rules()),
        # REDIS_URL's Redis, whichever topology: a primary behind Sentinel or a Cluster (each
        # key one slot: the scripts here touch one key each).
        RedisTarget.parse(settings.redis_url).sync_client(idempotent=False),
    )


def _publish(
    task: Task,
    consumer: type[Consumer],
    event: BaseMessage,
    key: str | None = None,
    to: dict[str, str] | None = None,
) -> None:
    """Publish once per ``key``: by default the task's id."""
    resources(task.app).publisher.publish(consumer, event, to=to, key=key or task.request.id)


def _text(value: object, name: str) -> str:
    """A message as every way in takes it (``MessageText``: not blank, at most 4,096 chars)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
    text: str = _check(_MESSAGE, value, name)
    return text


def _check(adapter: TypeAdapter[Any], value: object, name: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid {name}: {problems}") from None


@shared_task(bind=True, **RETRY)
def send_chat_message(
    self: Task, message: str = "🔔 System announcement: Welcome to the chat!"
) -> str:
    """Broadcast a system notice to the chat room (pub/sub)."""
    text = _text(message, "message")
    _publish(self, ChatConsumer, SystemNotify(payload=text))
    return f"sent to the chat room: {text}"


@shared_task(bind=True, **RETRY)
def send_reliable_message(
    self: Task,
    message: str = "🔒 Important: System maintenance scheduled for tonight",
    hold: float = 0.0,
) -> str:
    """Broadcast a system notice to the reliable room, once even if the task runs twice.
    ``hold`` keeps the task running that many seconds after publishing: a way to watch a worker
    killed mid-task redeliver it without a second broadcast."""
    text = _text(message, "message")
    if not isinstance(hold, int | float) or not 0 <= hold <= 60:
        raise ValueError(f"hold must be a number of seconds from 0 to 60, not {hold!r}")
    _publish(self, ReliableChatConsumer, SystemNotify(payload=text))
    time.sleep(hold)
    return f"sent to the reliable room: {text}"


@shared_task(bind=True, **RETRY)
def send_notification(
    self: Task, message: str = "🚨 Alert: High CPU usage detected on server", user: Any = None
) -> str:
    """Broadcast a system notification to every notifications client (pub/sub), or with
    ``user`` to that signed-in user alone, on every socket they have open."""
    text = _text(message, "message")
    if user is None:
        _publish(self, NotificationConsumer, SystemNotify(payload=text))
        return f"sent to notifications: {text}"
    try:
        name = resources(self.app).settings.address_rules().check("user", user)
    except InvalidAddress as exc:
        raise ValueError(f"invalid user: {exc}") from None
    _publish(self, NotificationConsumer, SystemNotify(payload=text), to={"user": name})
    return f"sent to {name}'s notifications: {text}"


_DATA: TypeAdapter[JsonValue] = TypeAdapter(JsonValue)
_MESSAGE: TypeAdapter[str] = TypeAdapter(MessageText)
_EVENTS: TypeAdapter[list[str | AnalyticsPayload]] = TypeAdapter(list[str | AnalyticsPayload])


@shared_task(bind=True, **RETRY)
def send_analytics_event(self: Task, event: str, data: Any = None) -> str:
    """Broadcast one analytics event, with optional JSON data, to the analytics clients."""
    payload = _analytics_payload(self, event, data)
    _publish(self, AnalyticsConsumer, AnalyticsEvent(payload=payload), key=self.request.id)
    return f"sent analytics event {payload.event}"


@shared_task(bind=True, **RETRY)
def send_analytics_events(self: Task, events: Any = None) -> str:
    """Broadcast several analytics events (names, or {"event", "data"} objects) in order;
    by default the seed's five."""
    items = _check(_EVENTS, SEED_EVENTS if events is None else events, "events")
    # All checked before the first is broadcast: a bad item fails the task with none sent.
    payloads = [
        _analytics_payload(self, item, None, f"events[{n}].")
        if isinstance(item, str)
        else _analytics_payload(self, item.event, item.data, f"events[{n}].")
        for n, item in enumerate(items)
    ]
    for n, payload in enumerate(payloads):
        event = AnalyticsEvent(payload=payload)
        _publish(self, AnalyticsConsumer, event, key=f"{self.request.id}:{n}")
    return f"sent {len(items)} analytics events"


@shared_task(bind=True, **RETRY)
def periodic_announcements(self: Task) -> str:
    """Run by beat: alternately a chat announcement (odd runs) and a periodic system status
    notification (even runs), numbered across restarts."""
    shared = resources(self.app)
    # The run's number, kept by task id: a redelivered run tells the same number (and its
    # broadcast, keyed by the task id too, does not go out again).
    mine = shared.key(f"announcements:{self.request.id}")
    if shared.store.get(mine) is None:
        n = shared.store.incr(shared.key("announcements"))
        shared.store.set(mine, n, nx=True, ex=shared.settings.idempotency_window)
    n = int(shared.store.get(mine) or 0)
    if n % 2:
        text = f"⏰ Hourly chat announcement #{n}"
        _publish(self, ChatConsumer, SystemNotify(payload=text))
    else:
        text = f"🔔 System status update #{n}"
        _publish(self, NotificationConsumer, SystemPeriodicNotify(payload=text))
    return text


def _analytics_payload(
    task: Task, event: object, data: object, field: str = ""
) -> AnalyticsPayload:
    """An event from outside, checked as the analytics consumer checks a client's."""
    limits = AnalyticsLimits.of(resources(task.app).settings)
    name = limits.event(event, f"{field}event")
    return AnalyticsPayload(
        event=name, data=limits.data(_check(_DATA, data, f"{field}data"), f"{field}data")
    )


@cache
def analytics_counts(app: Celery) -> AnalyticsCounts:
    """The analytics counts of one Celery app, under ``<key prefix>:analytics``."""
    shared = resources(app)
    settings = shared.settings
    return AnalyticsCounts(
        shared.store,
        shared.key("analytics"),
        settings.analytics_window,
        settings.analytics_max_names,
    )


@shared_task(bind=True, **RETRY)
def record_analytics_event(self: Task, event: str, data: Any = None) -> str:
    """Count one analytics event a client sent, by name, in the rolling window; returns the name
    it was counted under: its own, or "(other)" when the window's latest bucket is full."""
    payload = _analytics_payload(self, event, data)
    return analytics_counts(self.app).record(payload.event)


@shared_task(bind=True, **RETRY)
def publish_analytics_summary(self: Task) -> dict[str, int] | str:
    """Run by beat: broadcast the counts of the rolling window to the analytics clients when
    they changed since the last summary; returns the counts broadcast, or ``UNCHANGED``."""
    # A task run without a worker (apply) has no id: one of its own, not the last caller's.
    summary = analytics_counts(self.app).summarise(self.request.id or uuid.uuid4().hex)
    if not summary.changed:
        return UNCHANGED
    payload = AnalyticsPayload(event=SUMMARY_TITLE, data=summary.counts)
    _publish(self, AnalyticsConsumer, AnalyticsEvent(payload=payload), key=self.request.id)
    return summary.counts
