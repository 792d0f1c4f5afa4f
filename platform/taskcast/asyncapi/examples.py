"""Examples of frames, made from their JSON Schemas: every field, required or not, with a value
the schema accepts — its const or first enum value, its example or default where it gives one,
else a plausible value for the field's name and type, within its lengths and bounds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..cursor import Position, encode_cursor
from .schema_tables import schema_name

__all__ = ["ENVELOPE_FIELDS", "SENT_AT", "frame_examples", "value_for"]

Json = dict[str, Any]

# What the envelope adds around a message's own fields: filled in by ``frame_examples``.
ENVELOPE_FIELDS = ("ref", "cursor", "sent_at", "replayed")

_WHEN = datetime(2026, 11, 26, 12, tzinfo=UTC)
SENT_AT = _WHEN.isoformat(timespec="milliseconds").replace("+00:00", "Z")
_CURSOR = encode_cursor({"room": Position("k7q2", f"{int(_WHEN.timestamp() * 1000)}-0", 42)})
_REF = "7"
_MAX_DEPTH = 8

# Plausible values by "Model.field", then by field name; used only where the type fits.
_HINTS: dict[str, object] = {
    "ErrorPayload.detail": "Invalid 'chat' frame",
    "ErrorItem.type": "missing",
    "GapPayload.detail": "messages after your position are no longer retained",
    "loc": ["payload", "message"],
    "msg": "Field required",
    "message": "Hello, everyone!",
    "content": "Translate this sentence, please.",
    "group": "chat",
    "room_name": "lobby",
    "user": "alice",
    "event": "page_view",
    "reason": "worker lost",
    "error_type": "ValueError",
    "error": "the input could not be parsed",
    "watch": "b64url-watch-token",
    "data": {"path": "/dashboard"},
    "result": {"words": 42},
    "attempt": 1,
    "current": 3,
    "total": 10,
}
_FORMATS: dict[str, str] = {
    "date-time": SENT_AT,
    "date": SENT_AT[:10],
    "time": SENT_AT[11:],
    "email": "alice@example.com",
    "uri": "https://example.com/",
    "uuid": "8f14e45f-ea2b-4c39-9d5e-3b4f6c0a1d27",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}


def frame_examples(
    action: str, schema: Json, schemas: Json, *, with_ref: bool = False
) -> list[Json]:
    """AsyncAPI ``examples`` for a frame whose schema is ``schema``: the envelope with its
    ``payload``; a ``ref`` where the frame answers one (``with_ref``); where the schema carries a
    ``cursor``, that and ``sent_at``, and a second example as replayed on catch-up."""
    properties: Json = schema.get("properties", {})
    frame = {
        name: value_for(sub, schemas, name=name)
        for name, sub in properties.items()
        if name not in ENVELOPE_FIELDS
    }
    if with_ref and "ref" in properties:
        frame["ref"] = _REF
    if "cursor" not in properties:
        return [{"name": action, "payload": frame}]
    frame["cursor"] = _CURSOR
    if "sent_at" in properties:
        frame["sent_at"] = SENT_AT
    live = {"name": action, "summary": "Live, with its resume position", "payload": frame}
    replayed = {
        "name": f"{action}_replayed",
        "summary": "Replayed on catch-up, to a client that reconnected with ?cursor=",
        "payload": {**frame, "replayed": True},
    }
    return [live, replayed]


def value_for(
    schema: Json, schemas: Json, *, name: str = "", owner: str = "", depth: int = 0
) -> Any:
    """A value that ``schema`` accepts (``schemas``: what its ``$ref`` s name)."""
    if "$ref" in schema:
        target = schema_name(schema) or ""
        resolved = {**schemas.get(target, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
        return value_for(resolved, schemas, name=name, owner=target, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("default") is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return value_for(options[0], schemas, name=name, owner=owner, depth=depth + 1)
    if "allOf" in schema:
        parts = [value_for(s, schemas, name=name, owner=owner, depth=depth + 1)
                 for s in schema["allOf"]]  # fmt: skip
        if all(isinstance(p, dict) for p in parts):
            return {k: v for p in parts for k, v in p.items()}
        return parts[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    hint = _HINTS.get(f"{owner}.{name}", _HINTS.get(name))
    if kind == "object" or "properties" in schema:
        return _object(schema, schemas, owner=schema.get("title", owner), depth=depth)
    if kind == "array":
        return _array(schema, schemas, name=name, owner=owner, hint=hint, depth=depth)
    if kind == "string":
        return _string(schema, name, hint)
    if kind in ("integer", "number"):
        return _number(schema, kind, hint)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return hint if hint is not None else {"key": "value"}  # any JSON


def _object(schema: Json, schemas: Json, *, owner: str, depth: int) -> Json:
    if depth >= _MAX_DEPTH:
        return {}
    properties: Json = schema.get("properties", {})
    value = {
        key: value_for(sub, schemas, name=key, owner=owner, depth=depth + 1)
        for key, sub in properties.items()
    }
    extra = schema.get("additionalProperties")
    if not properties and isinstance(extra, dict):
        value["key"] = value_for(extra, schemas, name="key", owner=owner, depth=depth + 1)
    return value


def _array(
    schema: Json, schemas: Json, *, name: str, owner: str, hint: object, depth: int
) -> list[Any]:
    if isinstance(hint, list) and len(hint) <= schema.get("maxItems", len(hint)):
        return hint
    if depth >= _MAX_DEPTH:
        return []
    items = schema.get("items", {})
    item = value_for(items if isinstance(items, dict) else {}, schemas, name=name, owner=owner,
                     depth=depth + 1)  # fmt: skip
    count = max(1, int(schema.get("minItems", 1)))
    return [item] * min(count, int(schema.get("maxItems", count)))


def _string(schema: Json, name: str, hint: object) -> str:
    value = _FORMATS.get(str(schema.get("format")))
    if value is None:
        if isinstance(hint, str):
            value = hint
        elif name.endswith("_id") or name == "id":
            value = _FORMATS["uuid"]
        else:
            value = "example"
        pattern = schema.get("pattern")
        if pattern and not _fits(pattern, value):
            value = "example"
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(value) < low:
        value += "x" * (low - len(value))
    if high is not None and len(value) > int(high):
        value = value[: int(high)]
    return value


def _fits(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:  # JSON Schema dialects Python's re does not read (\p{L}): trust the hint
        return True


def _number(schema: Json, kind: str, hint: object) -> int | float:
    value: float = hint if isinstance(hint, int | float) and not isinstance(hint, bool) else 1
    if kind == "number" and hint is None:
        value = 1.5
    step = 1 if kind == "integer" else 0.5
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + step)
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - step)
    return int(value) if kind == "integer" else value
