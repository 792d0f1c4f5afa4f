"""The AsyncAPI document of the running app, its page and its TypeScript declarations:
/asyncapi.json, /asyncapi.yaml, /asyncapi, /asyncapi.d.ts; and the browser client they type,
/taskcast.js. Built from the app's routes, so a consumer added to the app is documented with it."""

from __future__ import annotations

import html
import json
from importlib.metadata import version
from importlib.resources import files
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from taskcast.asyncapi import build_document, consumer_routes, render_page
from taskcast.asyncapi.typescript import declarations

TITLE = "Taskcast showcase"
DESCRIPTION = (
    "Typed real-time events over WebSocket. Every frame is JSON: "
    '{"action": str, "payload": ..., "ref"?: str}; a reply carries its request\'s ref.\n\n'
    "Clients that reconnect and resume: the browser module `/taskcast.js`, "
    "typed by `/asyncapi.d.ts`, and `taskcast.client` in Python (`python -m taskcast tail URL`)."
)


CLIENT_MODULE = (files("taskcast") / "static" / "taskcast.js").read_text(encoding="utf-8")

# Stand-ins for the server's host and protocol in the texts built once (YAML, the page).
_HOST, _PROTOCOL = "taskcast-server-host", "taskcast-server-protocol"


def _base(request: Request) -> dict[str, Any]:
    """The app's document, built once (with its texts); only its server (the host the client
    asked for) differs per request, so no client can grow a cache by sending many Host headers,
    and none costs more than a string replacement."""
    cache = request.app.state.asyncapi
    if "document" not in cache:
        base = build_document(
            consumer_routes(request.app.routes),
            title=TITLE,
            version=version("taskcast"),
            description=DESCRIPTION,
            host=_HOST,
            protocol=_PROTOCOL,
        )
        cache["yaml"] = yaml.safe_dump(base, sort_keys=False, allow_unicode=True)
        cache["page"] = render_page(base)
        cache["document"] = base
    document: dict[str, Any] = cache["document"]
    return document


def _server(request: Request) -> tuple[str, str]:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return host, "wss" if request.url.scheme == "https" else "ws"


def document(request: Request) -> dict[str, Any]:
    base = _base(request)
    host, protocol = _server(request)
    server = {**base["servers"]["default"], "host": host, "protocol": protocol}
    return {**base, "servers": {"default": server}}


async def asyncapi_json(request: Request) -> Response:
    return JSONResponse(document(request))


async def asyncapi_yaml(request: Request) -> Response:
    _base(request)
    host, protocol = _server(request)
    text = request.app.state.asyncapi["yaml"].replace(_HOST, json.dumps(host), 1)
    return Response(text.replace(_PROTOCOL, protocol, 1), media_type="application/yaml")


async def asyncapi_page(request: Request) -> Response:
    _base(request)
    host, protocol = _server(request)
    page = request.app.state.asyncapi["page"].replace(_HOST, html.escape(host), 1)
    return HTMLResponse(page.replace(_PROTOCOL, protocol, 1))


async def client_module(request: Request) -> Response:
    """The browser client, ``taskcast.js`` (an ES module: ``import { connect } from
    "/taskcast.js"``), shipped in the taskcast package."""
    return Response(CLIENT_MODULE, media_type="text/javascript")


async def asyncapi_declarations(request: Request) -> Response:
    """TypeScript declarations for taskcast.js, from the AsyncAPI document: each endpoint's
    actions and payloads, so ``connect("/ws/reliable")`` knows what it sends and receives."""
    cache = request.app.state.asyncapi
    if "typescript" not in cache:  # the server (per request) is not in it: built once
        cache["typescript"] = declarations(document(request))
    return Response(cache["typescript"], media_type="application/typescript; charset=utf-8")
