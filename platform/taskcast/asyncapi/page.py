"""An HTML page for an AsyncAPI document: no script, no CDN, every part linked from a contents."""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["render_page"]

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d2330}
nav{width:17rem;flex:none;padding:1rem;background:#f3f5f9;height:100vh;overflow:auto;position:sticky;top:0}
main{padding:1rem 2rem;max-width:60rem;min-width:0}
nav a{display:block;color:#244;text-decoration:none;padding:.1rem 0}
nav .op{padding-left:1rem;font-size:.9em}
code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:#f6f8fa;padding:.6rem;overflow:auto}
.send{color:#14632e}.receive{color:#1f4fa8}
section.channel{border-top:2px solid #dde;margin-top:2rem}
.op-card{border:1px solid #dde;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
@media(max-width:700px){body{display:block}nav{width:auto;height:auto;position:static}}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _json(value: Any) -> str:
    return _e(json.dumps(value, indent=2, ensure_ascii=False))


def render_page(document: dict[str, Any]) -> str:
    info = document["info"]
    channels: dict[str, Any] = document["channels"]
    operations: dict[str, Any] = document["operations"]
    messages: dict[str, Any] = document["components"]["messages"]
    nav, body = [], []
    for channel_id, channel in channels.items():
        nav.append(f'<a href="#{_e(channel_id)}"><code>{_e(channel["address"])}</code></a>')
        ops = {
            k: v
            for k, v in operations.items()
            if v["channel"]["$ref"] == f"#/channels/{channel_id}"
        }
        section = [
            f'<section class="channel" id="{_e(channel_id)}">'
            f"<h2><code>{_e(channel['address'])}</code>"
            f" — {_e(channel.get('title', ''))}</h2><p>{_e(channel.get('description', ''))}</p>"
        ]
        if channel.get("parameters"):
            section.append(
                "<p>Parameters:</p><ul>"
                + "".join(
                    f"<li><code>{{{_e(name)}}}</code>: {_e(parameter.get('description', ''))}</li>"
                    for name, parameter in channel["parameters"].items()
                )
                + "</ul>"
            )
        if "bindings" in channel:
            section.append(
                "<p>Resumable: reconnect with <code>?cursor=&lt;last cursor&gt;</code>.</p>"
            )
        for op_id, op in ops.items():
            nav.append(
                f'<a class="op" href="#{_e(op_id)}">'
                f"{_e(op['action'])} {_e(op.get('summary', op_id))}</a>"
            )
            section.append(_operation(op_id, op, channel, messages))
        section.append("</section>")
        body.append("".join(section))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_e(info['title'])} — AsyncAPI</title><style>{_STYLE}</style></head><body>"
        f"<nav><strong>{_e(info['title'])}</strong> {_e(info['version'])}"
        f'<p><a href="asyncapi.json">asyncapi.json</a><a href="asyncapi.yaml">asyncapi.yaml</a></p>'
        f"{''.join(nav)}</nav><main><h1>{_e(info['title'])}</h1>"
        f"<p>{_e(info.get('description', ''))}</p>"
        f"<p>Server: <code>{_e(_server(document))}</code></p>{''.join(body)}</main></body></html>"
    )


def _server(document: dict[str, Any]) -> str:
    server: dict[str, Any] = next(iter(document.get("servers", {}).values()), {})
    return f"{server.get('protocol', 'ws')}://{server.get('host', '')}"


def _operation(
    op_id: str, op: dict[str, Any], channel: dict[str, Any], messages: dict[str, Any]
) -> str:
    parts = [
        f'<div class="op-card" id="{_e(op_id)}"><h3 class="{_e(op["action"])}">{_e(op["action"])}: '
        f"{_e(op.get('summary', op_id))}</h3><p>{_e(op.get('description', ''))}</p>"
    ]
    if op.get("tags"):
        parts.append("<p>Tags: " + ", ".join(_e(t["name"]) for t in op["tags"]) + "</p>")
    for label, refs in (
        ("Message", op["messages"]),
        ("Reply", op.get("reply", {}).get("messages", [])),
    ):
        for ref in refs:
            key = ref["$ref"].rsplit("/", 1)[1]
            message = messages[channel["messages"][key]["$ref"].rsplit("/", 1)[1]]
            parts.append(
                f"<h4>{label}: <code>{_e(message['name'])}</code> ({_e(message['title'])})</h4>"
                f"<p>{_e(message.get('summary', ''))}</p>"
                f"<details><summary>Schema</summary><pre>{_json(message['payload'])}</pre></details>"
                f"<p>Example</p><pre>{_json(message['examples'][0]['payload'])}</pre>"
            )
    parts.append("</div>")
    return "".join(parts)
