"""The wire protocol between a client and a consumer: JSON text frames in the message envelope.

Client → server: ``{"action": str, "payload": ..., "ref"?: str}``; the server's replies carry the
same ``ref``. Anything that cannot be handled becomes an ``error`` frame; nothing here raises.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError

from .handlers import Handler, HandlerTable
from .messages import BaseMessage, ErrorCode, ErrorItem, ErrorMessage

__all__ = [
    "MAX_REF_LENGTH",
    "Accepted",
    "Rejected",
    "close_reason",
    "decode",
    "encode",
    "ref_of",
    "utf8_size",
    "with_ref",
]

MAX_REF_LENGTH = 128
# The largest frame whose ref a rate-limited error answers: reading it is a parse, which the
# limit is there to spare (a larger request's error comes without its ref).
REF_SCAN_LIMIT = 2048
# A \uD800 to \uDFFF escape: JSON allows one alone; no UTF-8 text (a reply, a broadcast) can.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def encode(message: BaseMessage, ref: str | None = None) -> str:
    """The frame's JSON text (UTF-8, not ASCII-escaped), with ``ref`` when given."""
    return with_ref(message.model_dump_json(), ref)


def with_ref(frame: str, ref: str | None) -> str:
    """An encoded frame with ``ref`` added when given (a reply's, or an error's that answers
    a frame)."""
    if ref is None:
        return frame
    return f'{frame[:-1]},"ref":{json.dumps(ref, ensure_ascii=False)}}}'


def ref_of(text: str) -> str | None:
    """The ``ref`` of a frame that is refused before it is decoded (rate-limited), so that its
    error answers it: ``None`` where it has none a reply could carry, or is over
    ``REF_SCAN_LIMIT`` characters."""
    if len(text) > REF_SCAN_LIMIT or _SURROGATE_ESCAPE.search(text):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    ref = data.get("ref") if isinstance(data, dict) else None
    return ref if isinstance(ref, str) and len(ref) <= MAX_REF_LENGTH else None


@dataclass(frozen=True, slots=True)
class Accepted:
    message: BaseMessage
    handler: Handler
    ref: str | None


@dataclass(frozen=True, slots=True)
class Rejected:
    error: ErrorMessage
    ref: str | None = None


def _reject(
    code: ErrorCode, detail: str, ref: str | None = None, errors: list[ErrorItem] | None = None
) -> Rejected:
    return Rejected(ErrorMessage.of(code, detail, errors), ref)


def _shown(value: str, limit: int = 64) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def decode(text: str, table: HandlerTable) -> Accepted | Rejected:
    """Parse and validate one client frame against a consumer's handlers."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return _reject("invalid_json", f"The frame is not valid JSON: {exc}")
    except RecursionError:
        return _reject("invalid_json", "The frame's JSON is nested too deeply")
    if _SURROGATE_ESCAPE.search(text) and not _encodable(data):
        return _reject("invalid_json", "The frame's JSON has an unpaired surrogate escape")
    if not isinstance(data, dict):
        return _reject("invalid_message", "A frame must be a JSON object with an action")
    ref = data.pop("ref", None)
    if ref is not None and (not isinstance(ref, str) or len(ref) > MAX_REF_LENGTH):
        return _reject("invalid_message", f"ref must be a string of at most {MAX_REF_LENGTH} chars")
    action = data.get("action")
    if not isinstance(action, str):
        detail = "The frame has no action" if action is None else "action must be a string"
        return _reject("invalid_message", detail, ref)
    handler = table.ws.get(action)
    if handler is None:
        if action in table.events:
            detail = f"{_shown(action)} is an event sent by the server; clients cannot send it"
        else:
            detail = f"Unknown action {_shown(action)}"
        return _reject("unknown_action", f"{detail}; accepted: {', '.join(sorted(table.ws))}", ref)
    try:
        message = table.incoming.validate_python(data)
    except ValidationError as exc:
        return _reject("invalid_payload", f"Invalid {action!r} frame", ref, _items(exc, table))
    except RecursionError:
        return _reject("invalid_payload", f"Invalid {action!r} frame: nested too deeply", ref)
    return Accepted(message, handler, ref)


def utf8_size(text: str, limit: int) -> int:
    """The frame's size in bytes as far as a ``limit`` check needs it: a str of n chars is n to
    4n bytes in UTF-8, so it is encoded only when the answer depends on it."""
    if len(text) > limit or len(text) * 4 <= limit:
        return len(text)
    return len(text.encode())


def _encodable(data: object) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _items(exc: ValidationError, table: HandlerTable) -> list[ErrorItem]:
    # A discriminated union puts the matched tag first in each location; clients never saw it.
    skip = 1 if len(table.ws) > 1 else 0
    return [
        ErrorItem(loc=list(error["loc"][skip:]), msg=error["msg"], type=error["type"])
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def close_reason(reason: str) -> str:
    """``reason`` cut to the 123 bytes of UTF-8 a close frame has room for."""
    return reason.encode()[:123].decode(errors="ignore")
