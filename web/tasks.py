"""Enqueueing Celery tasks from the web tier, by name, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from celery import Celery


class TaskQueue:
    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    async def send(self, name: str, kwargs: Mapping[str, object]) -> str:
        """Enqueue task ``name``; returns its id. Publishing to the broker blocks, so it runs in a
        thread rather than on the loop that serves the sockets."""
        result = await asyncio.to_thread(self.celery.send_task, name, kwargs=dict(kwargs))
        return str(result.id)
