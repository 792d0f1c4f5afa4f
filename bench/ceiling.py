"""The ceiling: a bare Starlette app that forwards every Redis PUBLISH on one channel to every
socket, with no framework, no validation and no queue. What a Python tier on this machine can do.

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


async def forward(url: str, channel: str) -> None:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    async for message in pubsub.listen():
        if message["type"] == "message":
            text = message["data"].decode()
            for ws in list(sockets):
                try:
                    await ws.send_text(text)
                except Exception:
                    sockets.discard(ws)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    task = asyncio.create_task(forward(url, os.environ.get("CEILING_CHANNEL", "ceiling")))
    yield
    task.cancel()


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    sockets.add(ws)
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(ws)


app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
