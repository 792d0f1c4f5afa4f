"""The Celery configuration web and workers share: where tasks are queued and how. The web tier
builds a sending-only app from it (``producer``); the workers build theirs on it
(``workers.app``), so that neither imports the other."""

from __future__ import annotations

from typing import Any

from celery import Celery

from showcase.settings import BROKER_RESTORE_SWEEP, Settings

__all__ = ["celery_conf", "producer"]


def celery_conf(settings: Settings) -> dict[str, Any]:
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
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": prefix,
        "task_default_queue": settings.celery_queue,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_send_sent_event": True,
        "timezone": "UTC",
    }


def producer(settings: Settings) -> Celery:
    """A Celery app that only sends the workers' tasks, by name."""
    app = Celery("workers", set_as_current=False)
    app.conf.update(celery_conf(settings))
    return app
