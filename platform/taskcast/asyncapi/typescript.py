"""TypeScript declarations for ``taskcast.js``, from an app's AsyncAPI document.

Each endpoint becomes an interface of what a client sends (action → payload), what the server
sends, and the replies to requests; ``connect`` is declared once per endpoint, keyed by its path,
so ``connect("/ws/reliable").send("reliable_chat", {message})`` type-checks. JSON Schemas turn
into TypeScript types: object properties (``?`` where not required), string, number, integer,
boolean, null, arrays, enum and const as literal unions, ``$ref`` to named types, anyOf/oneOf
as unions; anything else is ``unknown``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .schema_tables import schema_name

__all__ = ["declarations"]

Json = dict[str, Any]

_SIMPLE = {name: name for name in ("string", "number", "boolean", "null")} | {"integer": "number"}
_IDENT = re.compile(r"^[A-Za-z_$][\w$]*$")
# The module's own names: a schema called so is renamed rather than shadowing one.
_API = {"Frame", "State", "StateChange", "Options", "Client", "Channel", "AnyChannel", "Channels"}
_API |= {"Payload", "Timeout", "RequestArgs", "Received", "connect"}

_MODULE_API = """\
export type State = "connecting" | "open" | "reconnecting" | "closed";
export interface StateChange {
  state: State;
  code?: number;
  reason?: string;
  delay?: number; // ms until the next attempt (reconnecting)
  attempt?: number;
}
export interface Frame<A extends string = string, P = unknown> {
  action: A;
  payload: P;
  ref?: string;
  cursor?: string;
  sent_at?: string;
  replayed?: boolean;
}
export interface Options {
  token?: string;
  cursor?: string;
  storage?: "session" | "memory";
  backoff?: { first?: number; max?: number };
  requestTimeout?: number;
  openTimeout?: number;
  heartbeat?: number; // ms; 0: never
  WebSocket?: new (url: string) => WebSocket;
}
export interface Channel {
  sends: object;
  receives: object;
  replies: object;
}
/** An endpoint the declarations do not know: any action, any payload. */
export interface AnyChannel extends Channel {
  sends: Record<string, unknown>;
  receives: Record<string, unknown>;
  replies: Record<string, Frame>;
}
type Payload<P> = null extends P ? [payload?: P] : [payload: P];
type Timeout = { timeout?: number };
type RequestArgs<P> = null extends P
  ? [payload?: P, options?: Timeout]
  : [payload: P, options?: Timeout];
type Received<C extends Channel> = {
  [A in keyof C["receives"] & string]: Frame<A, C["receives"][A]>;
}[keyof C["receives"] & string];
export interface Client<C extends Channel = AnyChannel> {
  readonly url: string;
  readonly state: State;
  readonly cursor: string | null;
  on(name: "frame", fn: (frame: Received<C>) => void): () => void;
  on(name: "state", fn: (change: StateChange) => void): () => void;
  on<A extends keyof C["receives"] & string>(
    name: A,
    fn: (payload: C["receives"][A], frame: Frame<A, C["receives"][A]>) => void,
  ): () => void;
  send<A extends keyof C["sends"] & string>(action: A, ...payload: Payload<C["sends"][A]>): boolean;
  /** Only the actions the endpoint answers (others would only time out). */
  request<A extends keyof C["sends"] & keyof C["replies"] & string>(
    action: A,
    ...args: RequestArgs<C["sends"][A]>
  ): Promise<C["replies"][A]>;
  close(code?: number, reason?: string): void;
}
"""


def declarations(document: Json) -> str:
    """The ``.d.ts`` text for ``document`` (what ``/asyncapi.json`` serves): save it as
    ``taskcast.d.ts`` beside ``taskcast.js``."""
    info = document.get("info", {})
    schemas: Json = document.get("components", {}).get("schemas", {})
    ts = _Types({name: _name(name) for name in schemas})
    lines = [
        f"// TypeScript declarations for taskcast.js: {info.get('title', '')} "
        f"{info.get('version', '')}, from its AsyncAPI document.",
        "// Save as taskcast.d.ts beside taskcast.js. Generated: do not edit.",
        "",
        _MODULE_API,
    ]
    for name, schema in schemas.items():
        lines += _comment(schema.get("description"), "")
        lines.append(f"export type {ts.names[name]} = {ts.type(schema, '')};")
    lines.append("")
    channels: dict[str, str] = {}  # address → interface name
    for channel_id, channel in document.get("channels", {}).items():
        interface = _name(channel_id[:1].upper() + channel_id[1:])
        channels[channel["address"]] = interface
        lines += _comment(channel.get("description"), "")
        lines.append(f"export interface {interface} extends Channel {{")
        for part, entries in _parts(document, channel_id, ts).items():
            lines.append(f"  {part}: {{")
            lines += [f"    {_key(action)}: {text};" for action, text in entries.items()]
            lines.append("  };")
        lines += ["}", ""]
    lines.append("export interface Channels {")
    lines += [f"  {json.dumps(address)}: {name};" for address, name in channels.items()]
    lines += ["}", ""]
    # Fixed paths first: a parameter's ${string} would match more than its own endpoint.
    for address, name in sorted(channels.items(), key=lambda item: "{" in item[0]):
        path = _template(address)
        lines.append(
            f"export function connect(url: `${{string}}{path}` | `${{string}}{path}?${{string}}`,"
            f" options?: Options): Client<{name}>;"
        )
    lines.append("export function connect(url: string, options?: Options): Client;")
    return "\n".join(lines) + "\n"


def _parts(document: Json, channel_id: str, ts: _Types) -> dict[str, dict[str, str]]:
    """What a channel's client sends, what its server sends (action → payload type), and the
    replies to the client's actions (action → frame type)."""
    parts: dict[str, dict[str, str]] = {"sends": {}, "receives": {}, "replies": {}}
    channel_ref = f"#/channels/{channel_id}"
    for operation in document.get("operations", {}).values():
        if operation.get("channel", {}).get("$ref") != channel_ref:
            continue
        part = "sends" if operation.get("action") == "receive" else "receives"
        actions = []
        for ref in operation.get("messages", []):
            action, payload = _message(_resolve(document, ref))
            parts[part].setdefault(action, ts.type(payload, "    "))
            actions.append(action)
        reply = operation.get("reply", {}).get("messages", [])
        frames = [_message(_resolve(document, ref)) for ref in reply]
        for action in actions if frames else ():
            parts["replies"][action] = " | ".join(
                f"Frame<{json.dumps(name)}, {ts.type(payload, '    ')}>" for name, payload in frames
            )
    return parts


def _message(message: Json) -> tuple[str, Json]:
    """A message's action and the schema of its frame's payload."""
    frame = message.get("payload", {})
    action = frame.get("properties", {}).get("action", {}).get("const") or message.get("name")
    return str(action), frame.get("properties", {}).get("payload", {})


class _Types:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names  # a schema's name in components → its TypeScript name

    def type(self, schema: Any, indent: str) -> str:
        """The TypeScript type of a JSON Schema; objects spread over lines at ``indent``."""
        if not isinstance(schema, dict):
            return "unknown" if schema is not False else "never"
        if "$ref" in schema:
            name = schema_name(schema)
            return "unknown" if name is None else self.names.get(name, "unknown")
        if "const" in schema:
            return json.dumps(schema["const"], ensure_ascii=False)
        if isinstance(schema.get("enum"), list):
            return _union([json.dumps(v, ensure_ascii=False) for v in schema["enum"]])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return _union([self.type(part, indent) for part in schema[key]])
        kind = schema.get("type")
        if isinstance(kind, list):
            return _union([self.type({**schema, "type": k}, indent) for k in kind])
        if kind in _SIMPLE:
            return _SIMPLE[kind]
        if kind == "array":
            items = self.type(schema.get("items"), indent)
            return f"({items})[]" if " " in items else f"{items}[]"
        if kind == "object" or "properties" in schema:
            return self._object(schema, indent)
        return "unknown"

    def _object(self, schema: Json, indent: str) -> str:
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not properties:
            return f"{{ [key: string]: {self.type(extra, indent)} }}"
        required = set(schema.get("required", []))
        inner = indent + "  "
        lines = ["{"]
        for name, spec in properties.items():
            lines += _comment(spec.get("description"), inner)
            optional = "" if name in required else "?"
            lines.append(f"{inner}{_key(name)}{optional}: {self.type(spec, inner)};")
        return "\n".join([*lines, f"{indent}}}"])


def _union(parts: list[str]) -> str:
    unique = list(dict.fromkeys(parts))
    return "unknown" if "unknown" in unique or not unique else " | ".join(unique)


def _resolve(document: Json, ref: Json) -> Json:
    """Follow ``$ref`` pointers within the document until a node that is not one."""
    node: Any = ref
    for _ in range(16):
        pointer = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(pointer, str) or not pointer.startswith("#/"):
            break
        node = document
        for part in pointer[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            node = node.get(key, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _name(name: str) -> str:
    ident = re.sub(r"[^\w$]", "_", name)
    ident = ident if _IDENT.match(ident) else f"_{ident}"
    return f"{ident}Schema" if ident in _API else ident


def _key(name: str) -> str:
    return name if _IDENT.match(name) else json.dumps(name, ensure_ascii=False)


def _template(address: str) -> str:
    """An endpoint's address as a template literal's text: each {parameter} any string."""
    pieces = re.split(r"\{[^}]*\}", address)
    escaped = [re.sub(r"([\\`]|\$(?=\{))", r"\\\1", piece) for piece in pieces]
    return "${string}".join(escaped)


def _comment(text: object, indent: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        return []
    body = " ".join(text.split()).replace("*/", "*\\/")
    return [f"{indent}/** {body} */"]
