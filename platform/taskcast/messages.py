"""Typed messages: the frames clients and servers exchange, and the events layers carry.

Every message is ``{"action": <name>, "payload": <data>}``. A subclass names its action with a
one-value ``Literal`` and that value as default; anything else is refused when the class is defined.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

from .exceptions import DefinitionError

__all__ = [
    "BaseMessage",
    "ErrorCode",
    "ErrorItem",
    "ErrorMessage",
    "ErrorPayload",
    "GapMessage",
    "GapPayload",
    "PingMessage",
    "PongMessage",
]


class BaseMessage(BaseModel):
    """Base of every typed message; subclasses declare ``action: Literal["name"] = "name"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action_name: ClassVar[str]

    action: str
    payload: Any = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields["action"]
        values = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
        if len(values) != 1 or not isinstance(values[0], str) or field.default != values[0]:
            raise DefinitionError(
                f"{cls.__qualname__} must name its action with a one-value Literal and that "
                f'value as default, e.g. action: Literal["{_snake(cls.__name__)}"] = '
                f'"{_snake(cls.__name__)}"'
            )
        cls.action_name = values[0]


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class PingMessage(BaseMessage):
    """Connectivity check; answered with ``pong``."""

    action: Literal["ping"] = "ping"
    payload: None = None


class PongMessage(BaseMessage):
    """The answer to ``ping``."""

    action: Literal["pong"] = "pong"
    payload: None = None


ErrorCode = Literal[
    "invalid_json",
    "invalid_frame",
    "invalid_message",
    "unknown_action",
    "invalid_payload",
    "invalid_cursor",
    "rate_limited",
    "unavailable",
    "internal_error",
]


class ErrorItem(BaseModel):
    """One validation problem: where (``loc``), what (``msg``) and its kind (``type``)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorPayload(BaseModel):
    code: ErrorCode
    detail: str
    errors: list[ErrorItem] | None = Field(default=None, exclude_if=lambda value: value is None)


class ErrorMessage(BaseMessage):
    """Sent when a frame cannot be handled; the socket stays open."""

    action: Literal["error"] = "error"
    payload: ErrorPayload

    @classmethod
    def of(
        cls, code: ErrorCode, detail: str, errors: list[ErrorItem] | None = None
    ) -> ErrorMessage:
        return cls(payload=ErrorPayload(code=code, detail=detail, errors=errors))


class GapPayload(BaseModel):
    group: str
    reason: Literal["trimmed", "reset"]
    detail: str


class GapMessage(BaseMessage):
    """Sent on a reliable layer before the first message after a loss: ``trimmed`` when messages
    after the client's position expired or passed the capacity, ``reset`` when the group's stream
    was lost with its data (Redis restarted without persistence, or the group stayed idle past its
    expiry). The frames after it continue from what is retained."""

    action: Literal["gap"] = "gap"
    payload: GapPayload

    @classmethod
    def of(cls, group: str, reason: Literal["trimmed", "reset"]) -> GapMessage:
        detail = (
            "messages after your position are no longer retained"
            if reason == "trimmed"
            else "the group's message history was reset; earlier messages are lost"
        )
        return cls(payload=GapPayload(group=group, reason=reason, detail=detail))
