"""The seed's background jobs on Celery (``/ws/background_jobs``: a job's result goes back to
the one socket that queued it), and watching any job's life (``/ws/jobs/{job_id}``)."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from taskcast import BaseMessage, Consumer, event_handler, ws_handler
from taskcast.guards import TokenBucket
from taskcast.jobs import JobWatcher, queued_event, watch_token

from .messages import MessageText

log = logging.getLogger("showcase.jobs")

JOB_TASK = "workers.jobs.run_job"
JOB_TYPES = ("translate", "analyze", "generate", "default")


class JobInput(BaseModel):
    type: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    content: MessageText


class JobRequest(BaseMessage):
    """A job to run: its type (translate, analyze, generate; anything else runs default)."""

    action: Literal["job"] = "job"
    payload: JobInput


class JobStatusPayload(BaseModel):
    status: Literal["connected", "queuing", "queued", "result", "error"]
    message: str
    job_id: str | None = None  # queued
    watch: str | None = None  # queued: where to watch the job's life (/ws/jobs/…?watch=…)


class JobStatusMessage(BaseMessage):
    """Where a job of this socket's is: queuing, queued (its id, where to watch it), result."""

    action: Literal["job_status"] = "job_status"
    payload: JobStatusPayload


class JobDonePayload(BaseModel):
    job_id: str
    message: str


class JobDone(BaseMessage):
    """A job's result, from the worker, for the socket that queued it."""

    action: Literal["job_done"] = "job_done"
    payload: JobDonePayload


def _status(status: str, message: str, **fields: str | None) -> JobStatusMessage:
    return JobStatusMessage.model_validate(
        {"payload": {"status": status, "message": message, **fields}}
    )


class ShowcaseJobWatcher(JobWatcher):
    """Watch one job's life: every event kept, in order, then live ones (needs ``?watch=``)."""

    layer_alias = "jobs"

    def secret(self) -> SecretStr | None:
        settings = getattr(self.websocket.app.state, "settings", None)
        secret: SecretStr | None = getattr(settings, "job_secret", None)
        return secret


class BackgroundJobsConsumer(Consumer):
    """The seed's background jobs, run by the Celery worker: the result comes back to the
    socket that queued the job, and to no other."""

    layer_alias = "chat"
    groups = ("jobs:{connection}",)
    tags = ("jobs", "seed")

    async def on_connect(self) -> None:
        self._jobs = job_bucket(self.websocket.app)
        await self.send(_status("connected", "🔄 Background Job Processor: Connected!"))

    @ws_handler(
        summary="Queue a job",
        description="Answered with job_status queuing, then queued (or error); the result "
        "follows as job_status result when the worker is done.",
    )
    async def handle_job(self, message: JobRequest) -> JobStatusMessage:
        kind, content = message.payload.type, message.payload.content
        await self.send(_status("queuing", f"⏳ Queuing {kind} job: {content}"))
        if not self._jobs.take():
            return _status("error", "❌ Error queuing job: too many jobs; slow down")
        try:
            job_id = await start_job(self.websocket.app, kind, content, reply_to=self.address)
        except Exception as exc:  # the broker is away, full or stalled
            return _status("error", f"❌ Error queuing job: {type(exc).__name__}")
        return _status(
            "queued",
            f"📋 Job {job_id} queued successfully!",
            job_id=job_id,
            watch=watch_path(self.websocket.app, job_id),
        )

    @event_handler(summary="The job's result, for the socket that queued it")
    async def job_done(self, event: JobDone) -> JobStatusMessage:
        return _status("result", event.payload.message)


async def start_job(app: object, kind: str, content: str, reply_to: str | None = None) -> str:
    """Queue the seed's job as a Celery task and say it is queued on its stream; its id."""
    state = app.state  # type: ignore[attr-defined]
    job_id: str = await state.tasks.send(
        JOB_TASK, {"type": kind, "content": content, "reply_to": reply_to}
    )
    event, to, key = queued_event(job_id)
    try:
        await state.publisher.publish(ShowcaseJobWatcher, event, to=to, key=key)
    except Exception as exc:  # queued all the same: the worker says "queued" as it starts
        log.warning("job %s: its queued event was not streamed: %s", job_id, exc)
    return job_id


def job_bucket(app: object) -> TokenBucket:
    """How many jobs one client may start (``TASKCAST_JOB_RATE`` a second, with a burst)."""
    settings = getattr(getattr(app, "state", None), "settings", None)
    if settings is None:
        return TokenBucket(2.0, 10)
    return TokenBucket(settings.job_rate, settings.job_burst)


def watch_path(app: object, job_id: str) -> str | None:
    """Where to watch ``job_id``: ``/ws/jobs/<id>?watch=<token>`` (None: no secret, no watching)."""
    secret = app.state.settings.job_secret  # type: ignore[attr-defined]
    if secret is None:
        return None
    return f"/ws/jobs/{job_id}?watch={watch_token(secret.get_secret_value().encode(), job_id)}"
