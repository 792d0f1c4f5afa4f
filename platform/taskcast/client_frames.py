"""What the client hands over: frames (typed with the app's classes when it has them) and the
errors that end a request or the client. See ``taskcast.client``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .consumer import Consumer
from .exceptions import TaskcastError
from .messages import BaseMessage, ErrorMessage, GapMessage, PongMessage
from .protocol import encode

__all__ = ["Frame", "Refused", "RequestFailed", "encode_frame", "message_types", "parse_frame"]


@dataclass(frozen=True)
class Frame:
    """One frame from the server. ``message``: the payload as the app's model, when the client
    knows the action's class and the payload is valid for it."""

    action: str
    payload: Any
    ref: str | None = None
    cursor: str | None = None
    replayed: bool = False
    sent_at: datetime | None = None
    message: BaseMessage | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def as_json(self) -> str:
        return json.dumps(dict(self.raw), ensure_ascii=False)


class Refused(TaskcastError):
    """The server closed the socket with a code that a retry would meet again."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed {code}{': ' + reason if reason else ''}")
        self.code, self.reason = code, reason


class RequestFailed(TaskcastError):
    """A request's reply was an error frame (``frame.payload``: code, detail, errors)."""

    def __init__(self, frame: Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        super().__init__(f"{payload.get('code', 'error')}: {payload.get('detail', '')}")
        self.frame = frame


def parse_frame(data: dict[str, Any], models: Mapping[str, type[BaseMessage]]) -> Frame:
    """A decoded frame (an object with a string action) as a ``Frame``, typed when ``models``
    has its action's class."""
    model = models.get(data["action"])
    message = None
    if model is not None:
        with contextlib.suppress(ValidationError):
            message = model.model_validate(
                {"action": data["action"], "payload": data.get("payload")}
            )
    sent_at = None
    if isinstance(data.get("sent_at"), str):
        with contextlib.suppress(ValueError):
            sent_at = datetime.fromisoformat(data["sent_at"])
    ref, cursor = data.get("ref"), data.get("cursor")
    return Frame(
        action=data["action"],
        payload=data.get("payload"),
        ref=ref if isinstance(ref, str) else None,
        cursor=cursor if isinstance(cursor, str) else None,
        replayed=data.get("replayed") is True,
        sent_at=sent_at,
        message=message,
        raw=data,
    )


def message_types(
    source: type[Consumer] | Iterable[type[BaseMessage]],
) -> dict[str, type[BaseMessage]]:
    """The message classes by action: a consumer's (what it sends and what it takes, with the
    protocol's own), or the ones given."""
    if isinstance(source, type) and issubclass(source, Consumer):
        handlers = source.handlers
        models: list[type[BaseMessage]] = [ErrorMessage, GapMessage, PongMessage]
        for handler in handlers.ws.values():
            models += [handler.input_type, *handler.outputs, *handler.spec.broadcasts]
        for handler in handlers.events.values():
            models += handler.outputs
        models += source.notices
    else:
        models = list(source)
    return {model.action_name: model for model in models}


def encode_frame(message: BaseMessage | str, payload: Any, ref: str | None) -> str:
    if isinstance(message, BaseMessage):
        return encode(message, ref)
    frame: dict[str, Any] = {"action": message, "payload": payload}
    if ref is not None:
        frame["ref"] = ref
    return json.dumps(frame, ensure_ascii=False)
