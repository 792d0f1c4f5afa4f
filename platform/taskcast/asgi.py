"""The ASGI side of a consumer: one app per consumer class, one consumer per connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from .layers.base import ChannelLayer
from .options import ConsumerOptions

if TYPE_CHECKING:
    from .consumer import Consumer

__all__ = ["ConsumerApp"]


class ConsumerApp:
    """The ASGI app of one consumer class: a new consumer instance per connection."""

    def __init__(
        self, consumer: type[Consumer], layer: ChannelLayer | None, options: ConsumerOptions
    ) -> None:
        self.consumer = consumer
        self.layer = layer
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            raise RuntimeError(f"{self.consumer.__qualname__} serves WebSocket connections only")
        if self.options.route is not None:
            scope["taskcast.route"] = self.options.route  # for the token rules (guards)
        await self.consumer(WebSocket(scope, receive, send), self.layer, self.options).run()
