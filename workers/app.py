"""The Celery app, built from the settings: ``celery -A workers worker|beat|flower|call``."""

from __future__ import annotations

from celery import Celery

from showcase.queue import celery_conf
from showcase.settings import Settings
from workers import broker


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.load()
    app = Celery(
        "workers",
        backend=broker.result_backend_url(settings.result_backend),
        task_cls=broker.RetryingTask,
    )
    app.conf.update(celery_conf(settings))
    app.conf.update(
        include=["workers.tasks", "workers.jobs"],
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
        worker_send_task_events=True,
        task_track_started=True,
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
