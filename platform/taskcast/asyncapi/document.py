"""The AsyncAPI 3.0.0 document, read from consumers, their handlers and their message models.

One channel per endpoint; a ``receive`` operation per client action (with its reply where the
handler returns one); a ``send`` operation per message the server sends — replies, broadcasts,
event-driven frames, connect/disconnect notices, errors, and on layers that keep messages the loss
notice (``gap``) and the ``cursor`` (with ``sent_at``) that frames carry and the URL takes back.
Such a channel is marked ``x-taskcast-reliable: true``, and each of its send operations says
whether its messages are kept (``x-taskcast-retained``): kept ones reach a client that resumes
later; transient ones (presence notices) only the clients connected at the time. Every message
has examples made from its schema (``examples.py``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.routing import BaseRoute, WebSocketRoute

from ..consumer import Consumer, ConsumerApp
from ..messages import BaseMessage, ErrorMessage, GapMessage
from ..protocol import MAX_REF_LENGTH
from .examples import frame_examples

__all__ = ["build_document", "consumer_routes"]

Json = dict[str, Any]


def consumer_routes(routes: Iterable[BaseRoute]) -> dict[str, ConsumerApp]:
    """The consumer endpoints among an app's routes, by path."""
    return {
        route.path: route.endpoint
        for route in routes
        if isinstance(route, WebSocketRoute) and isinstance(route.endpoint, ConsumerApp)
    }


def build_document(
    endpoints: Mapping[str, ConsumerApp],
    *,
    title: str,
    version: str,
    host: str,
    description: str = "",
    protocol: str = "ws",
) -> Json:
    """The document for ``endpoints`` (path → consumer app), served at ``host``."""
    builder = _Builder()
    for path, app in endpoints.items():
        builder.add(
            path, app.consumer, keeps_messages=bool(getattr(app.layer, "keeps_messages", False))
        )
    builder.add_examples()
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version, "description": description or title},
        "defaultContentType": "application/json",
        "servers": {"default": {"host": host, "protocol": protocol, "description": "This server"}},
        "channels": builder.channels,
        "operations": builder.operations,
        "components": {"messages": builder.messages, "schemas": builder.schemas},
    }


def _doc(obj: object) -> tuple[str | None, str | None]:
    """The first paragraph of ``obj``'s docstring on one line, and the rest with its paragraphs
    and ``- `` list items kept (the page renders them)."""
    text = inspect.getdoc(obj) or ""
    if not text:
        return None, None
    first, _, rest = text.partition("\n\n")
    return " ".join(first.split()), _blocks(rest)


def _blocks(text: str) -> str | None:
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        # A list item starts a line; every other line continues the one before it.
        joined = "\n".join(lines)
        blocks.append(re.sub(r"\n(?!- )", " ", joined))
    return "\n\n".join(b for b in blocks if b) or None


_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _parameter(name: str, consumer: type[Consumer]) -> Json:
    used = [t.text for t in consumer.group_templates if name in t.fields]
    text = "A path parameter of the endpoint's URL (percent-encoded)."
    if used:
        text += (
            f" It names the socket's group{'s' if len(used) > 1 else ''} ({', '.join(used)}):"
            " by default at most 64 letters, marks and digits of any script and _ . ~ -, with a"
            " letter or digit; anything else is refused with close code 4400 before anything is"
            " joined."
        )
    return {"description": text}


def _ident(text: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", text)
    return words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:] if w)


class _Builder:
    def __init__(self) -> None:
        self.channels: Json = {}
        self.operations: Json = {}
        self.messages: Json = {}
        self.schemas: Json = {}
        self._answering: set[str] = set()  # messages that carry a request's ref

    def add(self, path: str, consumer: type[Consumer], *, keeps_messages: bool) -> None:
        channel_id = _ident(path.strip("/") or "root")
        summary, details = _doc(consumer)
        # Starlette's {name:converter} is AsyncAPI's {name}, a channel parameter.
        address = _PARAM.sub(r"{\1}", path)
        channel: Json = {"address": address, "title": consumer.__name__, "messages": {}}
        if summary:
            channel["description"] = f"{summary}\n\n{details}" if details else summary
        if names := _PARAM.findall(path):
            channel["parameters"] = {name: _parameter(name, consumer) for name in names}
        if keeps_messages:
            query = _CURSOR_QUERY
            if consumer.query_parameters:  # the consumer's own (a job's watch token)
                own = {name: {"type": "string", "description": text}
                       for name, text in consumer.query_parameters.items()}  # fmt: skip
                query = {**query, "properties": {**query["properties"], **own}}
                query["required"] = sorted(consumer.query_parameters)
            channel["bindings"] = {"ws": {"bindingVersion": "0.1.0", "query": query}}
            channel["x-taskcast-reliable"] = True
        self.channels[channel_id] = channel
        tags = [{"name": tag} for tag in consumer.tags]

        def ref(
            model: type[BaseMessage], *, carries_cursor: bool = False, answers: bool = False
        ) -> Json:
            key = self._message(model, carries_cursor=carries_cursor)
            if answers:
                self._answering.add(key)
            channel["messages"][key] = {"$ref": f"#/components/messages/{key}"}
            return {"$ref": f"#/channels/{channel_id}/messages/{key}"}

        def operation(
            name: str, body: Json, spec_tags: Iterable[str] = (), *, retained: bool | None = None
        ) -> None:
            if keeps_messages and retained is not None:
                body["x-taskcast-retained"] = retained
                body["description"] = f"{body.get('description', '')} " + (
                    "Kept: a client that reconnects with its cursor receives it."
                    if retained
                    else "Transient: only clients connected at the time receive it; not kept."
                )
            all_tags = tags + [{"name": t} for t in spec_tags if {"name": t} not in tags]
            if all_tags:
                body["tags"] = all_tags
            self.operations[f"{channel_id}{name[:1].upper()}{name[1:]}"] = {
                "channel": {"$ref": f"#/channels/{channel_id}"},
                **body,
            }

        for action, handler in sorted(consumer.handlers.ws.items()):
            body: Json = {"action": "receive", "messages": [ref(handler.input_type, answers=True)]}
            body |= _texts(handler.summary, handler.spec.description or _doc(handler.func)[1])
            if handler.outputs:
                replies = [ref(model, answers=True) for model in handler.outputs]
                body["reply"] = {
                    "channel": {"$ref": f"#/channels/{channel_id}"},
                    "messages": replies,
                }
            operation(f"receive_{action}", body, handler.spec.tags)
            if handler.outputs:
                reply = {"action": "send", "messages": replies}
                reply |= _texts(f"Reply to {action}", "Sent to the client that sent the frame.")
                operation(f"send_reply_to_{action}", reply, handler.spec.tags)
            for model in handler.spec.broadcasts:
                sent = {"action": "send", "messages": [ref(model, carries_cursor=keeps_messages)]}
                sent |= _texts(
                    f"Broadcast by {action}",
                    f"Sent to every member of the groups when a client sends {action}.",
                )
                operation(f"send_{model.action_name}_after_{action}", sent, retained=True)
        for action, handler in sorted(consumer.handlers.events.items()):
            if not handler.outputs:
                continue
            sent = {
                "action": "send",
                "messages": [ref(m, carries_cursor=keeps_messages) for m in handler.outputs],
            }
            sent |= _texts(
                handler.summary, f"Sent when the event {action} is published to the groups."
            )
            operation(f"send_on_{action}", sent, handler.spec.tags, retained=True)
        notices = consumer.notices
        if notices:
            sent = {
                "action": "send",
                "messages": [ref(m, carries_cursor=keeps_messages) for m in notices],
            }
            sent |= _texts(
                "Connect and disconnect notices",
                "Broadcast to the groups when a client joins or leaves.",
            )
            operation("send_notices", sent, retained=not consumer.transient_notices)
        errors = {"action": "send", "messages": [ref(ErrorMessage, answers=True)]}
        errors |= _texts("Errors", "Sent when a frame cannot be handled; the socket stays open.")
        operation("send_error", errors)
        if keeps_messages:
            gap = {"action": "send", "messages": [ref(GapMessage, carries_cursor=True)]}
            gap |= _texts("Loss notice", _doc(GapMessage)[0])
            operation("send_gap", gap)

    def _message(self, model: type[BaseMessage], *, carries_cursor: bool) -> str:
        key = model.__name__ + ("WithCursor" if carries_cursor else "")
        if key in self.messages:
            return key
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        self.schemas.update(schema.pop("$defs", {}))
        properties = schema.setdefault("properties", {})
        if "action" in properties:  # always in a frame (its default is the model's own name)
            others = [name for name in schema.get("required", []) if name != "action"]
            schema["required"] = ["action", *others]
        properties["ref"] = {
            "type": "string",
            "maxLength": MAX_REF_LENGTH,
            "description": "Set by the client; a reply carries the request's ref.",
        }
        if carries_cursor:
            properties["cursor"] = {
                "type": "string",
                "description": "Opaque resume position: reconnect with ?cursor=<it> to resume.",
            }
            if model is not GapMessage:  # a notice, not a kept message
                properties["sent_at"] = {
                    "type": "string",
                    "format": "date-time",
                    "description": "When the layer kept the message: ISO 8601, UTC, milliseconds"
                    " (where the layer knows it).",
                }
            properties["replayed"] = {
                "type": "boolean",
                "description": "True on what a resuming client receives before the live frames.",
            }
        summary, details = _doc(model)
        message: Json = {
            "name": model.action_name,
            "title": model.__name__,
            "payload": schema,
        }
        message |= _texts(summary, details)
        self.messages[key] = message
        return key

    def add_examples(self) -> None:
        """Every message's examples, once every schema its payload names is known."""
        for key, message in self.messages.items():
            message["examples"] = frame_examples(
                message["name"], message["payload"], self.schemas, with_ref=key in self._answering
            )


def _texts(summary: str | None, description: str | None) -> Json:
    texts: Json = {}
    if summary:
        texts["summary"] = summary
    if description:
        texts["description"] = description
    return texts


_CURSOR_QUERY: Json = {
    "type": "object",
    "properties": {
        "cursor": {
            "type": "string",
            "description": "The last cursor received: the server first sends what was missed.",
        }
    },
}
