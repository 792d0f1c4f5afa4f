"""HTTP endpoints that trigger broadcasts: ``POST /api/broadcast``."""

from __future__ import annotations

import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .settings import Settings

TASKS = {
    "chat": ("workers.tasks.send_chat_message", "message"),
    "reliable": ("workers.tasks.send_reliable_message", "message"),
    "notifications": ("workers.tasks.send_notification", "message"),
    "analytics": ("workers.tasks.send_analytics_event", "event"),
}


class BroadcastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: Literal["chat", "reliable", "notifications", "analytics"]
    message: str = Field(min_length=1, max_length=4096)


async def broadcast(request: Request) -> Response:
    """Enqueue the task that broadcasts ``message`` to ``target``: 202 with the task id.
    Needs ``Authorization: Bearer <TASKCAST_BROADCAST_TOKEN>``; with no token set, it is off."""
    settings: Settings = request.app.state.settings
    if settings.broadcast_token is None:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.broadcast_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        return JSONResponse(
            {"detail": "a valid bearer token is required"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        body = BroadcastRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        return JSONResponse({"detail": errors}, status_code=422)
    name, argument = TASKS[body.target]
    task_id = await request.app.state.tasks.send(name, {argument: body.message})
    return JSONResponse({"task_id": task_id, "task": name}, status_code=202)
