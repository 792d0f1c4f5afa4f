"""How a consumer turns a broadcast into its socket's frame: whether the socket wants it, and
its event handler's reply, rendered once for every socket of the process when the handler does
not depend on the connection (see ``taskcast.delivery``)."""

from __future__ import annotations

import logging
from typing import ClassVar

from .delivery import Delivery
from .handlers import Handler, HandlerTable
from .messages import BaseMessage
from .protocol import encode
from .writer import LATER, Later

log = logging.getLogger("taskcast.consumer")


class Rendering:
    """The consumer's side of the writer (a ``Renderer``), and its filter for the layer."""

    handlers: ClassVar[HandlerTable]
    member_id: str

    def wants(self, delivery: Delivery) -> bool:
        """Whether this socket gets ``delivery`` (for the layer's live fan-out and the writer's
        catch-up pages alike)."""
        if delivery.text is not None:
            return delivery.exclude != self.member_id
        if delivery.event is not None:
            handler = self.handlers.events.get(delivery.action or "")
            if handler is None:
                return False
            if not handler.spec.per_connection:
                # Render once for every member; usually done before this returns.
                delivery.start(id(handler), self._run_event_handler, handler, delivery)
        return True

    def render_now(self, delivery: Delivery) -> str | Later | None:
        """The frame's body for ``delivery``, or ``LATER`` when it needs an await."""
        if delivery.text is not None:
            return delivery.text
        if delivery.gap is not None:
            return delivery.cache.get("gap") or delivery.cache.setdefault(
                "gap", encode(delivery.gap)
            )
        handler = self.handlers.events[delivery.action or ""]
        if handler.spec.per_connection:
            return LATER
        future = delivery.start(id(handler), self._run_event_handler, handler, delivery)
        if not future.done():
            return LATER
        body: str | None = future.result()
        return body

    async def render(self, delivery: Delivery) -> str | None:
        handler = self.handlers.events[delivery.action or ""]
        if handler.spec.per_connection:
            return await self._run_event_handler(handler, delivery)
        body: str | None = await delivery.shared(
            id(handler), self._run_event_handler, handler, delivery
        )
        return body

    async def _run_event_handler(self, handler: Handler, delivery: Delivery) -> str | None:
        try:
            event = handler.input_type.model_validate(delivery.event)
            reply = await handler.func(self, event)
            if reply is None:
                return None
            if not isinstance(reply, BaseMessage):
                raise TypeError(f"handler returned {type(reply).__name__}, not a message")
            return encode(reply)
        except Exception:
            log.exception(
                "%s.%s failed on event %r", type(self).__qualname__, handler.name, delivery.action
            )
            return None
