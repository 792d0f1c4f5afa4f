"""An HTML page for an AsyncAPI document: no script, nothing loaded from elsewhere, every part
linked from a table of contents — channels and their operations, messages (property tables,
examples, the raw schema), schemas, and the error and close codes."""

from __future__ import annotations

import html
import json
from typing import Any

from .codes import CLOSE_CODES, ERROR_CODES
from .markup import render_blocks, render_inline
from .schema_tables import property_table, schema_anchor, schema_name, type_html

__all__ = ["message_anchor", "render_page"]

Json = dict[str, Any]

_STYLE = """
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d2330;background:#fff}
nav{width:18rem;flex:none;padding:1rem;background:#f3f5f9;height:100vh;overflow:auto;
position:sticky;top:0;font-size:.92em}
nav a{display:block;color:#244;text-decoration:none;padding:.1rem 0;overflow-wrap:anywhere}
nav a:hover{text-decoration:underline}
nav .toc-h{font-weight:600;margin-top:.8rem}nav .l2{padding-left:.8rem}nav .l3{padding-left:1.6rem}
main{padding:1rem 2rem;max-width:64rem;min-width:0;flex:1}
h2{border-bottom:2px solid #dde;padding-bottom:.2rem;margin-top:2.5rem}
code,pre{font:13px/1.4 ui-monospace,monospace}
code{background:#f1f3f7;border-radius:3px;padding:0 .2em;overflow-wrap:anywhere}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-width:100%}pre code{background:none}
.send{color:#14632e}.receive{color:#1f4fa8}
.badge{display:inline-block;font-size:.75em;font-weight:600;border-radius:3px;padding:0 .4em;
border:1px solid currentColor;vertical-align:middle;margin-left:.3em}
section.channel,section.message,section.schema{border-top:1px solid #dde;margin-top:1.5rem}
.op-card{border:1px solid #dde;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.table{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #dde;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f9}td p{margin:0 0 .3rem}td p:last-child{margin:0}
td.required{color:#9a2b00;font-weight:600}td.optional{color:#666}
td:first-child code{white-space:nowrap;overflow-wrap:normal}
details{margin:.5rem 0}summary{cursor:pointer;color:#244}
:target{scroll-margin-top:.5rem;background:#fffbe6}
@media(max-width:700px){
body{display:block}nav{width:auto;height:auto;position:static;max-height:none}
main{padding:.5rem 1rem}
nav .l3{display:none}
table.props thead{display:none}
table.props tr{display:block;border:1px solid #dde;margin:.5rem 0}
table.props td{display:block;border:none;padding:.15rem .5rem}
table.props td:empty{display:none}
table.props td::before{content:attr(data-label) ": ";font-weight:600;color:#555}
}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _json(value: object) -> str:
    return _e(json.dumps(value, indent=2, ensure_ascii=False))


def _link(anchor: str, label: str) -> str:
    return f'<a href="#{_e(anchor)}">{label}</a>'


def _code(text: object) -> str:
    return f"<code>{_e(text)}</code>"


def _tail(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def message_anchor(key: str) -> str:
    """The id of a message's section on the page (``key``: its name in components/messages)."""
    return f"message-{key}"


def render_page(document: Json) -> str:
    """The page for ``document``: one self-contained HTML text."""
    info = document["info"]
    channels: Json = document["channels"]
    operations: Json = document["operations"]
    components: Json = document.get("components", {})
    messages: Json = components.get("messages", {})
    schemas: Json = components.get("schemas", {})
    used = _uses(channels, operations)

    nav = [
        '<a class="toc-h" href="#overview">Overview</a>',
        '<a class="toc-h" href="#channels">Channels</a>',
    ]
    body = ['<h2 id="channels">Channels</h2>']
    for channel_id, channel in channels.items():
        nav.append(
            f'<a class="l2" href="#{_e(channel_id)}"><code>{_e(channel["address"])}</code></a>'
        )
        ops = {k: op for k, op in operations.items() if _tail(op["channel"]["$ref"]) == channel_id}
        for op_id, op in ops.items():
            nav.append(
                f'<a class="l3" href="#{_e(op_id)}">'
                f'<span class="{_e(op["action"])}">{_e(op["action"])}</span> '
                f"{_e(op.get('summary', op_id))}</a>"
            )
        body.append(_channel(channel_id, channel, ops, messages))
    nav.append('<a class="toc-h" href="#messages">Messages</a>')
    body.append('<h2 id="messages">Messages</h2>')
    for key, message in messages.items():
        nav.append(f'<a class="l2" href="#{_e(message_anchor(key))}">{_code(message["name"])}</a>')
        body.append(_message(key, message, schemas, used.get(key, {}), channels))
    if schemas:
        nav.append('<a class="toc-h" href="#schemas">Schemas</a>')
        body.append('<h2 id="schemas">Schemas</h2>')
        for name, schema in schemas.items():
            nav.append(f'<a class="l2" href="#{_e(schema_anchor(name))}">{_e(name)}</a>')
            body.append(_schema(name, schema))
    nav.append(
        '<a class="toc-h" href="#errors">Errors</a>'
        '<a class="l2" href="#error-codes">Error codes</a>'
        '<a class="l2" href="#close-codes">Close codes</a>'
    )
    body.append(_errors(messages))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_e(info['title'])} — AsyncAPI</title><style>{_STYLE}</style></head><body>"
        f"<nav><strong>{_e(info['title'])}</strong> {_e(info['version'])}"
        f'<p><a href="asyncapi.json">asyncapi.json</a><a href="asyncapi.yaml">asyncapi.yaml</a></p>'
        f"{''.join(nav)}</nav><main>"
        f'<section id="overview"><h1>{_e(info["title"])}</h1>'
        f"{render_blocks(info.get('description', ''))}"
        f"<p>Server: <code>{_e(_server(document))}</code>; AsyncAPI {_e(document['asyncapi'])}."
        "</p></section>"
        f"{''.join(body)}</main></body></html>"
    )


def _server(document: Json) -> str:
    server: Json = next(iter(document.get("servers", {}).values()), {})
    return f"{server.get('protocol', 'ws')}://{server.get('host', '')}"


def _uses(channels: Json, operations: Json) -> dict[str, dict[str, set[str]]]:
    """For each message: the channels it travels on, by direction (send or receive)."""
    uses: dict[str, dict[str, set[str]]] = {}
    for op in operations.values():
        channel_id = _tail(op["channel"]["$ref"])
        parts = [(op["action"], op["messages"])]
        if "reply" in op:  # a receive's reply travels the other way
            parts.append(("send", op["reply"].get("messages", [])))
        for action, refs in parts:
            for ref in refs:
                key = _tail(channels[channel_id]["messages"][_tail(ref["$ref"])]["$ref"])
                uses.setdefault(key, {}).setdefault(action, set()).add(channel_id)
    return uses


def _channel(channel_id: str, channel: Json, ops: Json, messages: Json) -> str:
    reliable = channel.get("x-taskcast-reliable") is True
    badge = '<span class="badge send">reliable</span>' if reliable else ""
    parts = [
        f'<section class="channel" id="{_e(channel_id)}">'
        f"<h3><code>{_e(channel['address'])}</code> {badge}</h3>"
        f"<p>{_e(channel.get('title', ''))}</p>{render_blocks(channel.get('description'))}"
    ]
    if channel.get("parameters"):
        parts.append(
            "<p>Path parameters:</p><ul>"
            + "".join(
                f"<li><code>{{{_e(name)}}}</code>: {render_inline(p.get('description', ''))}</li>"
                for name, p in channel["parameters"].items()
            )
            + "</ul>"
        )
    query = channel.get("bindings", {}).get("ws", {}).get("query")
    if query:
        parts.append(f"<p>Query parameters:</p>{property_table(query)}")
    if reliable:
        parts.append(
            "<p>Messages are kept: frames the server sends carry a <code>cursor</code> (and"
            " <code>sent_at</code>); reconnect with <code>?cursor=&lt;last cursor&gt;</code> and"
            ' what was missed comes first, marked <code>"replayed": true</code>.</p>'
        )
    for op_id, op in ops.items():
        parts.append(_operation(op_id, op, channel, messages))
    parts.append("</section>")
    return "".join(parts)


def _operation(op_id: str, op: Json, channel: Json, messages: Json) -> str:
    action = op["action"]
    who = "client → server" if action == "receive" else "server → client"
    parts = [
        f'<div class="op-card" id="{_e(op_id)}"><h4><span class="{_e(action)}">{_e(action)}</span>'
        f" ({who}): {_e(op.get('summary', op_id))}</h4>{render_blocks(op.get('description'))}"
    ]
    if "x-taskcast-retained" in op:
        parts.append(
            f"<p>Kept for resuming clients: {'yes' if op['x-taskcast-retained'] else 'no'}</p>"
        )
    if op.get("tags"):
        parts.append("<p>Tags: " + ", ".join(_e(t["name"]) for t in op["tags"]) + "</p>")
    for label, refs in (
        ("Message", op["messages"]),
        ("Reply", op.get("reply", {}).get("messages", [])),
    ):
        for ref in refs:
            key = _tail(channel["messages"][_tail(ref["$ref"])]["$ref"])
            message = messages[key]
            parts.append(
                f"<p>{label}: {_link(message_anchor(key), _code(message['name']))}"
                f" ({_e(message.get('title', key))})"
                f" — {render_inline(message.get('summary', ''))}</p>"
            )
    parts.append("</div>")
    return "".join(parts)


def _message(
    key: str, message: Json, schemas: Json, uses: dict[str, set[str]], channels: Json
) -> str:
    payload: Json = message.get("payload", {})
    parts = [
        f'<section class="message" id="{_e(message_anchor(key))}">'
        f"<h3>{_code(message['name'])} <small>{_e(message.get('title', key))}</small></h3>"
        f"{render_blocks(message.get('summary'))}"
    ]
    if message.get("description") and message.get("description") != message.get("summary"):
        parts.append(render_blocks(message["description"]))
    for action, label in (("receive", "Sent by the client on"), ("send", "Sent by the server on")):
        if uses.get(action):
            links = ", ".join(
                f'<a href="#{_e(c)}"><code>{_e(channels[c]["address"])}</code></a>'
                for c in sorted(uses[action])
            )
            parts.append(f"<p>{label}: {links}</p>")
    parts.append(f"<h4>Frame</h4>{property_table(payload)}")
    inner: Json = payload.get("properties", {}).get("payload", {})
    if (name := schema_name(inner)) is not None and name in schemas:
        table = property_table(schemas[name])
        if table:
            parts.append(f"<h4>Payload: {_link(schema_anchor(name), _code(name))}</h4>{table}")
    for example in message.get("examples", []):
        title = example.get("summary") or example.get("name", "Example")
        parts.append(
            f"<h4>Example: {_e(title)}</h4><pre><code>{_json(example.get('payload'))}</code></pre>"
        )
    parts.append(
        "<details><summary>JSON Schema</summary>"
        f"<pre><code>{_json(payload)}</code></pre></details></section>"
    )
    return "".join(parts)


def _schema(name: str, schema: Json) -> str:
    table = property_table(schema)
    kind = "" if table else f"<p>Type: {type_html(schema)}</p>"
    return (
        f'<section class="schema" id="{_e(schema_anchor(name))}"><h3>{_e(name)}</h3>'
        f"{render_blocks(schema.get('description'))}{kind}{table}"
        f"<details><summary>JSON Schema</summary><pre><code>{_json(schema)}</code></pre></details>"
        "</section>"
    )


def _errors(messages: Json) -> str:
    frame = next((k for k, m in messages.items() if m.get("name") == "error"), None)
    link = (
        f'<a href="#{_e(message_anchor(frame))}"><code>error</code></a>'
        if frame
        else "<code>error</code>"
    )
    codes = "".join(
        f'<tr id="error-{_e(code)}"><td>{_code(code)}</td><td>{render_inline(when)}</td></tr>'
        for code, when in ERROR_CODES.items()
    )
    closes = "".join(
        f'<tr id="close-{code}"><td><code>{code}</code></td><td>{render_inline(meaning)}</td></tr>'
        for code, meaning in CLOSE_CODES.items()
    )
    return (
        '<section id="errors"><h2>Errors</h2>'
        f"<p>A frame that cannot be handled gets one {link} frame, and the socket stays open.</p>"
        '<h3 id="error-codes">Error codes</h3><div class="table"><table>'
        f"<thead><tr><th>code</th><th>when</th></tr></thead><tbody>{codes}</tbody></table></div>"
        '<h3 id="close-codes">Close codes</h3><p>Why the server closed the socket.</p>'
        '<div class="table"><table>'
        f"<thead><tr><th>code</th><th>meaning</th></tr></thead><tbody>{closes}</tbody></table></div>"
        "</section>"
    )
