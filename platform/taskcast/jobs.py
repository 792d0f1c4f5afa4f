"""A job: a Celery task whose lifecycle is streamed, resumable, to whoever holds its watch token.

A task opts in with the ``StreamedTask`` base class; the library appends its events to the
job's group (``job:<task id>``) on a reliable layer, each once (keyed by task id, state and
attempt, so a redelivered or retried task appends nothing twice):

    queued → started → progress … → retry (attempt, reason) → started → … → succeeded | failed

``self.progress(current, total, message)`` inside the task reports progress. ``JobWatcher``
(mounted at a route with ``{job_id}``) replays a job's history to a watcher that arrives at any
time, then streams it live; it requires the job's watch token (``watch_token``: an HMAC of the
job id with a server secret), so nobody watches a job by guessing its id.

    class Watcher(JobWatcher):
        layer_alias = "jobs"
        def secret(self) -> bytes | None: ...

    class Report(StreamedTask):
        watcher = Watcher
        def publisher(self) -> SyncPublisher: ...

    @app.task(bind=True, base=Report)
    def crunch(self, n): ...; self.progress(1, n); ...
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any, ClassVar, Literal

from celery import Task
from pydantic import BaseModel, Field, JsonValue, SecretStr

from .consumer import Consumer
from .exceptions import ConnectionRefused
from .handlers import event_handler
from .messages import BaseMessage
from .publish import SyncPublisher

__all__ = [
    "JobEvent",
    "JobEventPayload",
    "JobWatcher",
    "StreamedTask",
    "queued_event",
    "watch_token",
]

log = logging.getLogger("taskcast.jobs")

MAX_RESULT_BYTES = 64 * 1024  # a result streamed to watchers, as JSON
MAX_MESSAGE_CHARS = 1000  # a progress message
JobState = Literal["queued", "started", "progress", "retry", "succeeded", "failed"]
WATCH_PARAM = "watch"


class JobEventPayload(BaseModel):
    """One step of a job's life; the fields besides ``job_id`` and ``state`` belong to states."""

    job_id: str
    state: JobState
    attempt: int | None = None  # started, retry: 1 for the first run
    reason: str | None = None  # retry: why
    current: int | None = Field(None, ge=0)  # progress
    total: int | None = Field(None, ge=0)  # progress
    message: str | None = None  # progress: optional text; succeeded: why no result
    result: JsonValue = None  # succeeded
    error_type: str | None = None  # failed (no traceback)
    error: str | None = None  # failed


class JobEvent(BaseMessage):
    """An event of a job's life, as its watchers receive it."""

    action: Literal["job_event"] = "job_event"
    payload: JobEventPayload


def watch_token(secret: bytes, job_id: str) -> str:
    """The token that lets its holder watch ``job_id``."""
    return hmac.new(secret, job_id.encode(), hashlib.sha256).hexdigest()


class JobWatcher(Consumer):
    """Watches one job (the route's ``{job_id}``) from the start of its kept history, with its
    watch token (``?watch=``): missing, wrong, or no secret configured → closed with 4403."""

    layer_alias = "jobs"
    groups = ("job:{job_id}",)
    replay_from_start = True
    tags = ("jobs",)
    query_parameters: ClassVar[dict[str, str]] = {
        WATCH_PARAM: "The job's watch token, handed out with the job; without it, or with "
        "another job's, the socket is closed with 4403."
    }

    def secret(self) -> bytes | str | SecretStr | None:
        """The server secret watch tokens are signed with (None: watching is off)."""
        return None

    async def authenticate(self) -> None:
        await super().authenticate()  # the app's own guard (tokens), if any
        secret = _secret_bytes(self.secret())
        given = self.websocket.query_params.get(WATCH_PARAM, "")
        job_id = str(self.websocket.path_params.get("job_id", ""))
        expected = watch_token(secret, job_id).encode() if secret else b""
        if not secret or not hmac.compare_digest(given.encode(), expected):
            raise ConnectionRefused(4403, "a valid watch token is required for this job")

    @event_handler(summary="A step of the job's life")
    async def job_event(self, event: JobEvent) -> JobEvent:
        return event


class StreamedTask(Task):  # type: ignore[misc]
    """A Celery task base whose lifecycle reaches ``watcher``'s group for the job."""

    watcher: ClassVar[type[Consumer]] = JobWatcher

    def publisher(self) -> SyncPublisher:
        raise NotImplementedError("a StreamedTask needs publisher()")

    def publish_event(self, job_id: str, state: JobState, key: str, **fields: Any) -> None:
        """Append one event; a failure (the layer's Redis away, a job id no group can have, a
        field out of range) is logged in one line and never stops or loses the task."""
        try:
            event = JobEvent(payload=JobEventPayload(job_id=job_id, state=state, **fields))
            to = {"job_id": job_id}
            self.publisher().publish(self.watcher, event, to=to, key=f"{job_id}:{key}")
        except Exception as exc:
            log.warning("job %r: its %s event was not streamed: %s", job_id, state, _one_line(exc))

    # Celery's hooks ----------------------------------------------------------------------------

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        # A task sent by name (`celery call`) has nobody to say "queued" before it: say it here,
        # under the key a sender uses, so it is said once either way.
        self.publish_event(task_id, "queued", "queued")
        attempt = self.request.retries + 1
        self.publish_event(task_id, "started", f"started:{attempt}", attempt=attempt)

    def progress(self, current: int, total: int, message: str | None = None) -> None:
        """Report progress from inside the task (one event per ``current`` per attempt)."""
        job_id = self.request.id
        key = f"progress:{self.request.retries + 1}:{current}"
        text = None if message is None else str(message)[:MAX_MESSAGE_CHARS]
        self.publish_event(job_id, "progress", key, current=current, total=total, message=text)

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        attempt = self.request.retries + 1
        self.publish_event(
            task_id, "retry", f"retry:{attempt}", attempt=attempt, reason=_one_line(exc)
        )

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        result, note = streamable(retval)
        self.publish_event(task_id, "succeeded", "succeeded", result=result, message=note)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        self.publish_event(
            task_id, "failed", "failed", error_type=type(exc).__name__, error=_one_line(exc)
        )


def streamable(value: Any) -> tuple[JsonValue, str | None]:
    """A result as JSON a watcher can take: what JSON cannot say is said as text (a datetime,
    bytes; keys become strings), and a result over ``MAX_RESULT_BYTES`` is left out with a
    note — the job always ends with its event."""
    try:
        text = json.dumps(value, default=str, allow_nan=False, ensure_ascii=False)
    except Exception:  # not JSON (NaN, too deep, a __str__ that raises...): its repr, or less
        try:
            text = json.dumps(repr(value)[:MAX_RESULT_BYTES], ensure_ascii=False)
        except Exception:
            text = json.dumps(f"<a {type(value).__name__} that cannot be shown>")
    size = len(text.encode())
    if size > MAX_RESULT_BYTES:
        return None, f"the result is too large to stream ({size} bytes)"
    result: JsonValue = json.loads(text)
    return result, None


def _secret_bytes(secret: bytes | str | SecretStr | None) -> bytes | None:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    if isinstance(secret, str):
        secret = secret.encode()
    return secret or None


def _one_line(exc: BaseException) -> str:
    try:
        text = " ".join(str(exc).split())
    except Exception:  # an exception whose message cannot be made
        text = ""
    return text[:500] or type(exc).__name__


def queued_event(job_id: str) -> tuple[JobEvent, dict[str, str], str]:
    """What a sender publishes right after queuing a job: the event, its address and its key
    (the key the worker's own "queued" uses: said once either way)."""
    event = JobEvent(payload=JobEventPayload(job_id=job_id, state="queued"))
    return event, {"job_id": job_id}, f"{job_id}:queued"
