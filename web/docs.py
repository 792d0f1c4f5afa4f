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
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    cache: dict[str, dict[str, Any]] = request.app.state.asyncapi
    if host not in cache:
        protocol = "wss" if request.url.scheme == "https" else "ws"
        cache[host] = build_document(
            consumer_routes(request.app.routes),
            title=TITLE,
            version=version("taskcast"),
            description=DESCRIPTION,
            host=host,
            protocol=protocol,
        )
    return cache[host]


async def asyncapi_json(request: Request) -> Response:
    return JSONResponse(document(request))


async def asyncapi_yaml(request: Request) -> Response:
    text = yaml.safe_dump(document(request), sort_keys=False, allow_unicode=True)
    return Response(text, media_type="application/yaml")


async def asyncapi_page(request: Request) -> Response:
    return HTMLResponse(render_page(document(request)))
