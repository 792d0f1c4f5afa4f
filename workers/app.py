"""The Celery app, built from the settings: ``celery -A workers worker|beat|flower|call``."""

from __future__ import annotations

from celery import Celery

from web.settings import BROKER_RESTORE_SWEEP, Settings
from workers import broker


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.load()
    app = Celery(
        "workers",
        broker=settings.broker_url,
        backend=broker.result_backend_url(settings.result_backend),
        task_cls=broker.RetryingTask,
    )
    # Every Celery key (queues, results, bindings) under the settings' key prefix.
    prefix = {"global_keyprefix": f"{settings.key_prefix}:"}
    # A sweep for tasks of dead workers every BROKER_RESTORE_SWEEP seconds (kombu's default is
    # 100): the idempotency window counts on it (Settings.idempotency_window).
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": BROKER_RESTORE_SWEEP,
        "unacked_restore_throttle": 1,
        **prefix,
    }
    app.conf.update(
        include=["workers.tasks", "workers.jobs"],
        task_default_queue=settings.celery_queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=24 * 3600,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # Redis out of memory (or away) is waited out, never a reason to exit or drop a task:
        # see workers.broker.
        broker_channel_error_retry=True,
        worker_consumer="workers.broker:WorkerConsumer",
        result_backend_always_retry=True,
        # From half a second, doubling to 10 s: a few lines a spell, not one every 10 ms.
        result_backend_base_sleep_between_retries_ms=500,
        broker_transport_options=transport,
        result_backend_transport_options=prefix,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        timezone="UTC",
        # One beat at a time: RedBeat keeps the schedule in Redis under the key prefix and holds
        # a lock there, so a second beat (another replica, a restart overlap) waits instead of
        # sending every announcement twice; it takes over within the lock's 30 s if the first dies.
        beat_scheduler="workers.beat:Scheduler",
        redbeat_redis_url=settings.broker_url,
        redbeat_key_prefix=f"{settings.key_prefix}:redbeat:",
        redbeat_lock_timeout=30,
        beat_max_loop_interval=5,
        beat_schedule={
            "periodic-announcements": {
                "task": "workers.tasks.periodic_announcements",
                "schedule": settings.announcement_interval,
            },
            "analytics-summary": {
                "task": "workers.tasks.publish_analytics_summary",
                "schedule": settings.analytics_summary_interval,
            },
        },
    )
    app.conf.taskcast_settings = settings
    return app


app = create_celery()
