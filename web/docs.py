"""The AsyncAPI document of the running app, and its page: /asyncapi.json, /asyncapi.yaml,
/asyncapi. Built from the app's routes, so a consumer added to the app is documented with it."""

from __future__ import annotations

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


def document(request: Request) -> dict[str, Any]:
    """The app's document, built once; only its server (the host the client asked for) differs
    per request, so no client can grow a cache by sending many Host headers."""
    state = request.app.state
    if "document" not in state.asyncapi:
        state.asyncapi["document"] = build_document(
            consumer_routes(request.app.routes),
            title=TITLE,
            version=version("taskcast"),
            description=DESCRIPTION,
            host="localhost",
            protocol="ws",
        )
    base: dict[str, Any] = state.asyncapi["document"]
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    protocol = "wss" if request.url.scheme == "https" else "ws"
    server = {**base["servers"]["default"], "host": host, "protocol": protocol}
    return {**base, "servers": {"default": server}}


async def asyncapi_json(request: Request) -> Response:
    return JSONResponse(document(request))


async def asyncapi_yaml(request: Request) -> Response:
    text = yaml.safe_dump(document(request), sort_keys=False, allow_unicode=True)
    return Response(text, media_type="application/yaml")


async def asyncapi_page(request: Request) -> Response:
    return HTMLResponse(render_page(document(request)))
