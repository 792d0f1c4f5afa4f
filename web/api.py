"""HTTP endpoints that trigger broadcasts: ``POST /api/broadcast``."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from showcase.analytics import AnalyticsLimits
from showcase.jobs import JobInput, start_job, watch_path
from showcase.messages import MessageText
from showcase.settings import Settings
from taskcast import InvalidAddress

log = logging.getLogger("web.api")

# A request body is refused past this, before it is read: room for a 4,096-character message in
# the most escaped JSON there is (12 bytes a character: "\ud83d\ude00"), and little more.
MAX_BODY_BYTES = 64 * 1024

TASKS = {
    "chat": ("workers.tasks.send_chat_message", "message"),
    "reliable": ("workers.tasks.send_reliable_message", "message"),
    "notifications": ("workers.tasks.send_notification", "message"),
    "analytics": ("workers.tasks.send_analytics_event", "event"),
}


class BroadcastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Literal["chat", "reliable", "notifications", "analytics"]
    message: MessageText
    # notifications only: to this signed-in user alone (every socket they have open)
    user: str | None = None

    @model_validator(mode="after")
    def _user_for_notifications(self) -> BroadcastRequest:
        if self.user is not None and self.target != "notifications":
            raise ValueError("user is for the notifications target only")
        return self


async def broadcast(request: Request) -> Response:
    """Enqueue the task that broadcasts ``message`` to ``target``: 202 with the task id.
    Needs ``Authorization: Bearer <TASKCAST_BROADCAST_TOKEN>``; with no token set, it is off."""
    settings: Settings = request.app.state.settings
    if settings.broadcast_token is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    if not _bearer_is(request, [settings.broadcast_token.get_secret_value()]):
        return unauthorized()
    body = await _read(request, settings, BroadcastRequest)
    if isinstance(body, Response):
        return body
    if body.target == "analytics":  # the rule the task applies: refused here, not in the task
        try:
            AnalyticsLimits.of(settings).event(body.message)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
    name, argument = TASKS[body.target]
    kwargs: dict[str, object] = {argument: body.message}
    if body.user is not None:
        try:
            kwargs["user"] = settings.address_rules().check("user", body.user)
        except InvalidAddress as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
    try:
        task_id = await request.app.state.tasks.send(name, kwargs)
    except Exception as exc:  # the broker is away, full, or refusing: say so, once, briefly
        log.warning("could not enqueue %s: %s", name, exc)
        return JSONResponse(
            {"detail": "the task queue is unavailable; try again shortly"}, status_code=503
        )
    return JSONResponse({"task_id": task_id, "task": name}, status_code=202)


async def _body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to pass ``limit`` (by its declared length,
    or while it streams in): a large body is never read whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class JobRequestBody(JobInput):
    model_config = ConfigDict(extra="forbid")


async def start_job_endpoint(request: Request) -> Response:
    """``POST /api/jobs {type, content}``: 202 with the ``job_id`` and the ``watch`` path.
    Open when the showcase is open; with WebSocket tokens set, a bearer token among them that
    opens ``/ws/background_jobs`` (what the same client could do over a socket)."""
    settings: Settings = request.app.state.settings
    allowed = request.app.state.job_tokens
    if allowed is not None and not _bearer_is(request, allowed):
        return unauthorized()
    body = await _read(request, settings, JobRequestBody)
    if isinstance(body, Response):
        return body
    if not request.app.state.jobs_bucket.take():  # one for the process: no flooding the worker
        return JSONResponse(
            {"detail": "too many jobs; slow down"}, status_code=429, headers={"Retry-After": "1"}
        )
    try:
        job_id = await start_job(request.app, body.type, body.content)
    except Exception as exc:
        log.warning("could not start a job: %s", exc)
        return JSONResponse(
            {"detail": "the task queue is unavailable; try again shortly"}, status_code=503
        )
    return JSONResponse(
        {"job_id": job_id, "watch": watch_path(request.app, job_id)}, status_code=202
    )


JOBS_PATH = "/ws/background_jobs"


def job_tokens(settings: Settings) -> list[str] | None:
    """The tokens ``POST /api/jobs`` takes: those that open ``JOBS_PATH`` (None: no tokens
    set, the endpoint is open)."""
    authenticator = settings.token_authenticator()
    if authenticator is None:
        return None
    grants = authenticator.tokens.items()
    return [t for t, g in grants if g.paths is None or JOBS_PATH in g.paths]


def unauthorized() -> Response:
    return JSONResponse(
        {"detail": "a valid bearer token is required"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _bearer_is(request: Request, tokens: list[str]) -> bool:
    """Whether the request's bearer token is one of ``tokens`` (compared as bytes, in constant
    time per token: any header, even one that is not ASCII, is just refused)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    sent = given.strip().encode()
    matches = [hmac.compare_digest(sent, token.encode()) for token in tokens]
    return scheme.lower() == "bearer" and any(matches)


M = TypeVar("M", bound=BaseModel)


async def _read(request: Request, settings: Settings, model: type[M]) -> M | Response:
    """The body as ``model``, or the answer to give instead: 408 for a body that trickles, 413
    past the limit (before it is read), 422 for a bad one; a client gone mid-body gets 400."""
    try:
        async with asyncio.timeout(settings.handshake_timeout):
            raw = await _body(request, MAX_BODY_BYTES)
    except TimeoutError:
        return JSONResponse({"detail": "the body took too long"}, status_code=408)
    except ClientDisconnect:  # nobody to answer
        return Response(status_code=400)
    if raw is None:
        return JSONResponse(
            {"detail": f"the body is larger than {MAX_BODY_BYTES} bytes"}, status_code=413
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        return JSONResponse({"detail": errors}, status_code=422)
