"""Beat's scheduler: celery-redbeat's (the schedule and a lock in Redis, so one beat runs and
another waits), riding out Redis trouble. RedBeat lets any Redis error out of a tick, and beat
exits (under honcho, taking the web tier and the worker down with it); here a tick that Redis
refuses (away, or out of memory) is tried again with backoff, and beat carries on by itself."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import redis
from redbeat import RedBeatScheduler
from redbeat.schedulers import acquire_distributed_beat_lock
from redis.exceptions import LockError

from workers.broker import Backoff

logger = logging.getLogger(__name__)


class Scheduler(RedBeatScheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._trouble = Backoff("beat cannot reach its schedule in Redis")
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        """Write the schedule into Redis, waiting until Redis takes it."""
        while True:
            try:
                super().setup_schedule()
                break
            except redis.RedisError as exc:
                self._trouble.wait(exc)
        self._trouble.done()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            if self.lock_key and self.lock is None:  # the lock at start failed (Redis refused)
                self._take_lock()
            interval: float = super().tick(*args, **kwargs)
        except LockError:
            # The lock expired while Redis refused its renewal, and maybe another beat holds
            # it now: wait for it like a beat that starts, sending nothing meanwhile.
            logger.warning("beat lost its lock (Redis refused its renewal); waiting for it")
            self.lock = None
            return 0.5
        except redis.RedisError as exc:
            return self._trouble.delay(exc)
        self._trouble.done()
        return interval

    def _take_lock(self) -> None:
        """RedBeat's own start-up step (it blocks while another beat holds the lock)."""
        acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=self))
