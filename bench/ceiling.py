"""The ceiling: a bare Starlette app that forwards every Redis PUBLISH on one channel to every
socket, with no framework, no validation and no queue. What a Python tier on this machine can do.
Rooms too, as bare: ``/ws/room/{room}`` gets what is published on ``<channel>:room:<room>``
(one pattern subscription for every room).

    uvicorn bench.ceiling:app --port 8100      # channel from CEILING_CHANNEL, Redis from REDIS_URL
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

sockets: set[WebSocket] = set()
rooms: dict[str, set[WebSocket]] = {}


async def forward(url: str, channel: str) -> None:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.psubscribe(f"{channel}:room:*")
    prefix = len(f"{channel}:room:")
    async for message in pubsub.listen():
        if message["type"] == "message":
            audience = sockets
        elif message["type"] == "pmessage":
            audience = rooms.get(message["channel"][prefix:].decode(), set())
        else:
            continue
        text = message["data"].decode()
        for ws in list(audience):
            try:
                await ws.send_text(text)
            except Exception:
                audience.discard(ws)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    task = asyncio.create_task(forward(url, os.environ.get("CEILING_CHANNEL", "ceiling")))
    yield
    task.cancel()


async def serve(ws: WebSocket, members: set[WebSocket]) -> None:
    """Hold ``ws`` in ``members`` until it goes (what it sends is read and dropped)."""
    await ws.accept()
    members.add(ws)
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        members.discard(ws)


async def endpoint(ws: WebSocket) -> None:
    await serve(ws, sockets)


async def room(ws: WebSocket) -> None:
    name = ws.path_params["room"]
    await serve(ws, rooms.setdefault(name, set()))
    if not rooms.get(name):
        rooms.pop(name, None)


app = Starlette(
    routes=[WebSocketRoute("/ws", endpoint), WebSocketRoute("/ws/room/{room}", room)],
    lifespan=lifespan,
)
