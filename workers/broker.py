"""Riding out Redis trouble in the worker: Redis away, or refusing writes because it is out of
memory (``maxmemory`` reached under ``noeviction``). Nothing a worker holds is dropped meanwhile:
it waits, with backoff and one log line, and carries on by itself once Redis takes writes again.

- A worker that starts while Redis refuses writes retries its start (Celery would exit with
  "Unrecoverable error": the lock kombu takes to restore unacknowledged messages is a write).
- Storing a task's state (started, retry, success, failure) waits instead of failing the task.
- A task whose retry cannot be queued waits where it is, its message still unacknowledged,
  instead of being rejected (which drops it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import Task
from celery.backends.redis import RedisBackend
from celery.exceptions import Reject
from celery.worker.consumer import Consumer

from taskcast.layers.redis_common import Backoff as Delays

logger = logging.getLogger(__name__)
MAX_WAIT = 10.0  # seconds between two tries, at most


class Backoff:
    """The layers' reconnect delays (exponential with jitter), from 0.5 s up to ``MAX_WAIT``;
    says so in the log once per spell."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.tries = 0
        self._delays = Delays(0.5, MAX_WAIT)

    def delay(self, exc: BaseException) -> float:
        """How long to wait before the next try (the first failure of a spell is logged)."""
        if self.tries == 0:
            logger.warning("%s: %s; trying again until Redis takes it", self.what, _reason(exc))
        self.tries += 1
        return self._delays.next()

    def wait(self, exc: BaseException) -> None:
        time.sleep(self.delay(exc))

    def done(self) -> None:
        if self.tries:
            logger.warning("%s: done after %d tries", self.what, self.tries + 1)
        self.tries = 0
        self._delays.reset()


WAITED_OUT = (redis.OutOfMemoryError, redis.ConnectionError, redis.TimeoutError)


def _redis_trouble(exc: BaseException | None) -> BaseException | None:
    """Redis being away or full, wherever it sits in the chain of causes (Celery and kombu wrap
    redis-py's errors, with or without ``from``)."""
    while exc is not None and not isinstance(exc, WAITED_OUT):
        exc = exc.__cause__ or exc.__context__
    return exc


def _reason(exc: BaseException) -> str:
    """The error in one line: the Redis trouble under it, if any."""
    cause = _redis_trouble(exc) or exc
    return f"{type(cause).__name__}: {cause}"


class WorkerConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, retrying a start that Redis refuses with backoff (Celery, with
    ``broker_channel_error_retry``, would retry five times a second, a traceback each second)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = Backoff("the worker cannot start consuming")

    def connect(self) -> Any:
        connection = super().connect()
        self._refused.done()
        return connection

    def on_connection_error_before_connected(self, exc: BaseException) -> None:
        if isinstance(exc, self.connection_errors):
            super().on_connection_error_before_connected(exc)  # Celery backs off itself
        else:
            self._refused.wait(exc)


class ResultBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result backend, counting "out of memory" among the errors worth waiting
    out (with ``result_backend_always_retry``): a task's state is stored once Redis has room."""

    def exception_safe_to_retry(self, exc: BaseException) -> bool:
        return isinstance(exc, redis.OutOfMemoryError) or bool(super().exception_safe_to_retry(exc))


class Untraced(logging.Filter):
    """Celery and kombu log each retry of a backend write, and each sweep the broker refused,
    with a traceback; for Redis being away or full, keep the line and drop the traceback (a
    spell of minutes would write hundreds)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _redis_trouble(record.exc_info[1]) is not None:
            reason = _reason(record.exc_info[1]).replace("%", "%%")
            record.msg = f"{record.msg} ({reason})"
            record.exc_info = None
        return True


class RetryingTask(Task):  # type: ignore[misc]
    """A task whose retry survives a broker that cannot take the retry message: Celery would
    reject (drop) the message it is running; this waits, the message unacknowledged (a worker
    that dies meanwhile leaves it to be redelivered), and queues the retry once it can."""

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        refused = Backoff(f"task {self.name}[{self.request.id}] cannot queue its retry")
        while True:
            try:
                return super().retry(*args, **kwargs)
            except Reject as reject:
                refused.wait(reject.reason if isinstance(reject.reason, Exception) else reject)
            except BaseException:  # Retry: queued
                refused.done()
                raise


def result_backend_url(url: str) -> str:
    """``url`` with Redis's result backend swapped for ``ResultBackend``; others unchanged."""
    scheme = url.partition("://")[0]
    return f"{__name__}:ResultBackend+{url}" if scheme in ("redis", "rediss") else url


for _name in (
    "celery.backends.base",
    "celery.beat",
    "kombu.asynchronous.hub",
    "kombu.asynchronous.timer",
):
    logging.getLogger(_name).addFilter(Untraced())
