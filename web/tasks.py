"""Enqueueing Celery tasks from the web tier, by name, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial

from celery import Celery

# One try and one retry, each bounded by the socket timeout: a stalled broker answers 503.
RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}


class TaskQueue:
    def __init__(self, celery: Celery, timeout: float = 3.0) -> None:
        # Without a socket timeout, a broker that stalls (Redis paused, a network that drops
        # packets) holds each request, and the thread it waits in, for ever.
        options = dict(celery.conf.broker_transport_options or {})
        options |= {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        celery.conf.broker_transport_options = options
        self.celery = celery
        self.deadline = timeout * 2 + 1

    async def send(self, name: str, kwargs: Mapping[str, object]) -> str:
        """Enqueue task ``name``; returns its id, or raises (the broker away, full or stalled:
        ``TimeoutError`` past the deadline). Publishing to the broker blocks, so it runs in a
        thread rather than on the loop that serves the sockets."""
        send = partial(self.celery.send_task, name, kwargs=dict(kwargs), retry_policy=RETRY_POLICY)
        result = await asyncio.wait_for(asyncio.to_thread(send), self.deadline)
        return str(result.id)
