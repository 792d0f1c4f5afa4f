"""The AsyncAPI document of the running app, and its page: /asyncapi.json, /asyncapi.yaml,
/asyncapi. Built from the app's routes, so a consumer added to the app is documented with it."""

from __future__ import annotations

import html
import json
from importlib.metadata import version
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from taskcast.asyncapi import build_document, consumer_routes, render_page

TITLE = "Taskcast showcase"
DESCRIPTION = (
    "Typed real-time events over WebSocket. Every frame is JSON: "
    '{"action": str, "payload": ..., "ref"?: str}; a reply carries its request\'s ref.'
)


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
