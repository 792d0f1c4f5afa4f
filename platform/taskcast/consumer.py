"""The consumer: a typed WebSocket endpoint that joins groups on a channel layer.

A connection's life: ``authenticate`` (may refuse) → accept → join ``groups`` on the layer →
``on_connect`` → receive loop (validate each frame, dispatch to its ``@ws_handler``) → on every
way out: leave the groups → ``on_disconnect``. Frames to the client go through a bounded outbox
drained by one task per socket, so broadcasts never wait on a slow client.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, cast

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from .cursor import Position, decode_cursor, encode_cursor
from .delivery import Delivery, pack_message
from .eager import Suspended, finish, step
from .exceptions import ConnectionRefused, DefinitionError, InvalidPayload, LayerUnavailable
from .guards import Authenticator, TokenBucket, origin_allowed
from .handlers import Handler, HandlerTable, ws_handler
from .layers.base import ChannelLayer
from .messages import BaseMessage, ErrorMessage, PingMessage, PongMessage
from .metrics import Metrics
from .outbox import Outbox, Overflow
from .protocol import Rejected, decode, encode

__all__ = ["Connections", "Consumer", "ConsumerApp", "ConsumerOptions"]

log = logging.getLogger("taskcast.consumer")

INTERNAL_ERROR = ErrorMessage.of("internal_error", "The server could not handle this frame")
UNAVAILABLE = ErrorMessage.of("unavailable", "A backend is unavailable; try again shortly")
RATE_LIMITED = encode(ErrorMessage.of("rate_limited", "Too many frames; slow down"))
BINARY_REFUSED = encode(ErrorMessage.of("invalid_frame", "Binary frames are not accepted"))
INVALID_CURSOR = encode(
    ErrorMessage.of("invalid_cursor", "The cursor is not one this server gave; delivering live")
)


UNCOUNTED = Metrics()  # where consumers with no app metrics count (nobody reads it)


class _Later:
    """A frame that needs an await to render (an event handler still running)."""


LATER: Final = _Later()


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """Per-socket limits, shared by every consumer of an app."""

    max_frame_bytes: int = 65_536
    outbox_size: int = 1_024
    # Origins allowed besides the app's own host ("*": any). See guards.origin_allowed.
    allowed_origins: frozenset[str] = frozenset()
    # The default authenticator of the app's consumers (a consumer's own `authenticator` wins).
    authenticator: Authenticator | None = None
    # Frames a second per socket, with a burst; past it `rate_limited` errors, and after
    # `rate_strikes` of them in a row the socket is closed with 1008.
    rate: float | None = None
    burst: int = 20
    rate_strikes: int = 20
    # Where open sockets are tracked, so that a shutting-down server can close them (1001).
    connections: Connections | None = None
    metrics: Metrics | None = None
    # None: close (1013) a socket that falls behind on a layer that keeps messages, so that it
    # resumes from its position; drop its oldest frames on any other.
    overflow: Overflow | None = field(default=None)


class Consumer:
    """Base of every consumer. Subclasses set ``layer_alias`` and ``groups`` and add handlers."""

    layer_alias: ClassVar[str | None] = None
    groups: ClassVar[tuple[str, ...]] = ()
    # For the documentation: tags, and what on_connect/on_disconnect broadcast.
    tags: ClassVar[tuple[str, ...]] = ()
    notices: ClassVar[tuple[type[BaseMessage], ...]] = ()
    authenticator: ClassVar[Authenticator | None] = None
    handlers: ClassVar[HandlerTable]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.groups, str) or not isinstance(cls.groups, tuple | list):
            raise DefinitionError(f"{cls.__qualname__}.groups must be a tuple of group names")
        cls.groups = tuple(cls.groups)
        if cls.groups and cls.layer_alias is None:
            raise DefinitionError(f"{cls.__qualname__} has groups but no layer_alias")
        cls.handlers = HandlerTable.collect(cls)

    def __init__(
        self, websocket: WebSocket, layer: ChannelLayer | None, options: ConsumerOptions
    ) -> None:
        self.websocket = websocket
        self._asgi_send = websocket._send  # see _drain
        self.layer = layer
        self.options = options
        self.member_id = uuid.uuid4().hex
        overflow = options.overflow or (
            Overflow.CLOSE if layer is not None and layer.keeps_messages else Overflow.DROP_OLDEST
        )
        self.endpoint = websocket.scope.get("path", "")
        self._metrics = options.metrics or UNCOUNTED
        self._sent = self._metrics.frames_out
        self._outbox: Outbox[Delivery | str | Suspended] = Outbox(
            options.outbox_size, overflow, on_drop=self._count_drop
        )
        # True while a frame is being sent (by the drain task, or a send that had to wait), and
        # before accept: then new frames queue behind, in order.
        self._in_flight = True
        self._positions: dict[str, Position] = {}
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def as_asgi(
        cls,
        layers: Mapping[str, ChannelLayer] | None = None,
        options: ConsumerOptions | None = None,
    ) -> ConsumerApp:
        """The ASGI app serving this consumer, with its layer looked up by ``layer_alias``."""
        layer = None if cls.layer_alias is None else (layers or {})[cls.layer_alias]
        return ConsumerApp(cls, layer, options or ConsumerOptions())

    # Hooks -----------------------------------------------------------------------------------

    async def authenticate(self) -> None:
        """Raise ``ConnectionRefused`` to refuse the connection; runs before accept. By default
        the consumer's ``authenticator``, else the app's (``ConsumerOptions.authenticator``)."""
        authenticator = type(self).authenticator or self.options.authenticator
        if authenticator is not None:
            await authenticator(self.websocket, type(self))

    async def on_connect(self) -> None:
        """Runs once the socket is accepted and has joined its groups."""

    async def on_disconnect(self, code: int) -> None:
        """Runs on every way out, after the socket has left its groups."""

    @ws_handler(summary="Ping", description="Connectivity check: answered with pong.")
    async def handle_ping(self, message: PingMessage) -> PongMessage:
        return PongMessage()

    # Sending ---------------------------------------------------------------------------------

    async def send(self, message: BaseMessage, *, ref: str | None = None) -> None:
        """Send ``message`` to this socket (queued behind what it has not sent yet)."""
        self._queue(encode(message, ref))

    async def broadcast(
        self,
        message: BaseMessage,
        *,
        groups: Iterable[str] | None = None,
        exclude_self: bool = False,
    ) -> None:
        """Send ``message`` to every member of ``groups`` (default: this consumer's groups),
        in every process. The frame is encoded once, here."""
        if self.layer is None:
            raise DefinitionError(f"{type(self).__qualname__} has no layer to broadcast on")
        data = pack_message(encode(message), self.member_id if exclude_self else None)
        for group in self.groups if groups is None else groups:
            await self.layer.group_send(group, data)

    def deliver(self, delivery: Delivery) -> None:
        """Called by the layer for each broadcast to a group this socket is in; never blocks."""
        if delivery.text is not None:
            if delivery.exclude == self.member_id:
                return
        elif delivery.event is not None:
            handler = self.handlers.events.get(delivery.action or "")
            if handler is None:
                return
            if not handler.spec.per_connection:
                # Render once for every member; usually done before this returns.
                delivery.start(id(handler), self._run_event_handler, handler, delivery)
        if self._in_flight or self._outbox:
            self._outbox.put(delivery)
            return
        text = self._render_now(delivery)
        if isinstance(text, _Later):
            self._outbox.put(delivery)
        elif text is not None:
            self._send_now(text)

    def _count_drop(self) -> None:
        self._metrics.dropped[self.endpoint] += 1

    def _error(self, frame: str, code: str) -> None:
        self._metrics.errors[self.endpoint, code] += 1
        self._queue(frame)

    def _queue(self, text: str) -> None:
        if self._in_flight or self._outbox:
            self._outbox.put(text)
        else:
            self._send_now(text)

    def _send_now(self, text: str) -> None:
        """Send from the caller when the socket is idle: the send's first step almost always
        finishes it, which saves a task wake-up per frame per socket."""
        self._sent[self.endpoint] += 1
        send = cast(
            Coroutine[Any, Any, None], self._asgi_send({"type": "websocket.send", "text": text})
        )
        try:
            done, suspended = step(send)
        except Exception:  # the client is gone; the receive loop sees the disconnect
            return
        if not done:
            # Its transport is paused: the drain task finishes this send before anything else.
            assert isinstance(suspended, Suspended)
            self._in_flight = True
            self._outbox.put_first(suspended)

    # The connection's life -------------------------------------------------------------------

    async def run(self) -> None:
        if not origin_allowed(self.websocket, self.options.allowed_origins):
            log.warning("refused a handshake from origin %r", self.websocket.headers.get("origin"))
            await self.websocket.close(1008)  # before accept: the server answers 403
            return
        try:
            await self.authenticate()
        except ConnectionRefused as refusal:
            await self._refuse(refusal.code, refusal.reason)
            return
        except Exception:
            log.exception("%s.authenticate failed", type(self).__qualname__)
            await self._refuse(1011, "internal error")
            return
        joined: list[str] = []
        try:
            # Join before accepting: once a client's socket is open, it is in its groups.
            since = self._resume_positions()
            for group in self.groups:
                assert self.layer is not None  # checked when the class was defined
                await self.layer.group_add(group, self, since=since.get(group))
                joined.append(group)
        except Exception as exc:
            await self._leave(joined)
            if isinstance(exc, LayerUnavailable):
                log.warning("%s: %s; closing with 1013", type(self).__qualname__, exc)
                await self._refuse(1013, "try again later")
            else:
                log.exception("%s could not join its groups", type(self).__qualname__)
                await self._refuse(1011, "internal error")
            return
        await self.websocket.accept()
        self._pump = asyncio.create_task(self._drain(), name=f"taskcast-{self.member_id}")
        self._in_flight = bool(self._outbox)
        if self.options.connections is not None:
            self.options.connections.add(self)
        self._metrics.connections[self.endpoint] += 1
        code = 1006
        try:
            await self.on_connect()
            code = await self._receive_loop()
        except LayerUnavailable as exc:
            log.warning("%s: %s; closing with 1013", type(self).__qualname__, exc)
            code = 1013
            await self._close(1013, "try again later")
        except Exception:
            log.exception("%s failed; closing the socket", type(self).__qualname__)
            code = 1011
            await self._close(1011, "internal error")
        finally:
            # Also reached on cancellation (server shutdown): leave the groups before the hook.
            if self.options.connections is not None:
                self.options.connections.discard(self)
            self._metrics.connections[self.endpoint] -= 1
            await self._leave(joined)
            self._pump.cancel()
            try:
                await self.on_disconnect(code)
            except Exception:
                log.exception("%s.on_disconnect failed", type(self).__qualname__)

    async def _refuse(self, code: int, reason: str) -> None:
        # Accept first so that the browser sees the close code, not just a failed handshake.
        await self.websocket.accept()
        await self.websocket.close(code, reason)

    async def _leave(self, groups: list[str]) -> None:
        for group in groups:
            assert self.layer is not None
            await self.layer.group_discard(group, self)

    def _resume_positions(self) -> dict[str, Position]:
        raw = self.websocket.query_params.get("cursor")
        if raw is None:
            return {}
        try:
            positions = decode_cursor(raw)
        except ValueError:
            self._metrics.errors[self.endpoint, "invalid_cursor"] += 1
            self._outbox.put(INVALID_CURSOR)
            return {}
        self._positions = {g: p for g, p in positions.items() if g in self.groups}
        return dict(self._positions)

    async def _receive_loop(self) -> int:
        limit = self.options.max_frame_bytes
        rate = self.options.rate
        bucket = TokenBucket(rate, self.options.burst) if rate else None
        strikes = 0
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return int(message.get("code") or 1005)
            if bucket is not None:
                if not bucket.take():
                    strikes += 1
                    if strikes >= self.options.rate_strikes:
                        await self._close(1008, "too many frames")
                        return 1008
                    self._error(RATE_LIMITED, "rate_limited")
                    continue
                strikes = 0
            text: str | None = message.get("text")
            size = len(message.get("bytes") or b"") if text is None else _utf8_size(text, limit)
            if size > limit:
                await self._close(1009, f"frame larger than {limit} bytes")
                return 1009
            if text is None:
                self._error(BINARY_REFUSED, "invalid_frame")
            else:
                await self._handle(text)

    async def _handle(self, text: str) -> None:
        self._metrics.frames_in[self.endpoint] += 1
        result = decode(text, self.handlers)
        if isinstance(result, Rejected):
            self._error(encode(result.error, result.ref), result.error.payload.code)
            return
        try:
            reply = await result.handler.func(self, result.message)
            if reply is None:
                return
            if not isinstance(reply, BaseMessage):
                raise TypeError(f"handler returned {type(reply).__name__}, not a message")
            frame = encode(reply, result.ref)
        except InvalidPayload as exc:
            refused = ErrorMessage.of("invalid_payload", exc.detail)
            self._error(encode(refused, result.ref), "invalid_payload")
            return
        except LayerUnavailable as exc:
            log.warning("%s.%s: %s", type(self).__qualname__, result.handler.name, exc)
            self._error(encode(UNAVAILABLE, result.ref), "unavailable")
            return
        except Exception:
            log.exception(
                "%s.%s failed on a %r frame",
                type(self).__qualname__,
                result.handler.name,
                result.message.action,
            )
            self._error(encode(INTERNAL_ERROR, result.ref), "internal_error")
            return
        self._queue(frame)

    async def _drain(self) -> None:
        while (item := await self._outbox.get()) is not None:
            self._in_flight = True
            try:
                if isinstance(item, Suspended):
                    await finish(item)
                else:
                    text = item if isinstance(item, str) else await self._render(item)
                    if text is not None:
                        self._sent[self.endpoint] += 1
                        await self._asgi_send({"type": "websocket.send", "text": text})
            except Exception:  # the client is gone; the receive loop sees the disconnect
                return
            if not self._outbox:
                self._in_flight = False
        await self._close(1013, "too slow: resume from your last position")

    def _render_now(self, delivery: Delivery) -> str | _Later | None:
        """The frame for ``delivery``, or ``LATER`` when it needs an await."""
        if delivery.text is not None:
            body = delivery.text
        elif delivery.gap is not None:
            body = delivery.cache.get("gap") or delivery.cache.setdefault(
                "gap", encode(delivery.gap)
            )
        else:
            handler = self.handlers.events[delivery.action or ""]
            if handler.spec.per_connection:
                return LATER
            future = delivery.start(id(handler), self._run_event_handler, handler, delivery)
            if not future.done():
                return LATER
            body = future.result()
        return self._framed(delivery, body)

    async def _render(self, delivery: Delivery) -> str | None:
        text = self._render_now(delivery)
        if not isinstance(text, _Later):
            return text
        handler = self.handlers.events[delivery.action or ""]
        if handler.spec.per_connection:
            body = await self._run_event_handler(handler, delivery)
        else:
            body = await delivery.shared(id(handler), self._run_event_handler, handler, delivery)
        return self._framed(delivery, body)

    def _framed(self, delivery: Delivery, body: str | None) -> str | None:
        if body is None or delivery.position is None:
            return body
        text = self._with_cursor(delivery, delivery.position, body)
        return f'{text[:-1]},"replayed":true}}' if delivery.replayed else text

    def _with_cursor(self, delivery: Delivery, position: Position, text: str) -> str:
        """``text`` with this socket's cursor after ``position``. A socket in one reliable group
        shares the framed text with every other member of that group."""
        self._positions[delivery.group] = position
        if len(self._positions) > 1:
            return _framed(text, encode_cursor(self._positions))
        framed = delivery.cache.get(text)
        if framed is None:
            framed = delivery.cache[text] = _framed(text, encode_cursor(self._positions))
        return framed

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

    async def going_away(self) -> None:
        """Close the socket with 1001, as a server does when it stops: the client reconnects
        (to another process) and resumes from its cursor."""
        await self._close(1001, "server going away")

    async def _close(self, code: int, reason: str) -> None:
        if self._pump is not None and self._pump is not asyncio.current_task():
            self._pump.cancel()
        if self.websocket.application_state is WebSocketState.CONNECTED:
            try:
                await self.websocket.close(code, reason)
            except Exception:  # already closing from the other side
                log.debug("close(%s) on a closing socket", code)


def _framed(text: str, cursor: str) -> str:
    return f'{text[:-1]},"cursor":"{cursor}"}}'


def _utf8_size(text: str, limit: int) -> int:
    # A str of n chars is n to 4n bytes in UTF-8: encode only when the answer depends on it.
    if len(text) > limit or len(text) * 4 <= limit:
        return len(text)
    return len(text.encode())


class Connections:
    """The open sockets of a process's consumers."""

    def __init__(self) -> None:
        self._open: set[Consumer] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, consumer: Consumer) -> None:
        self._open.add(consumer)

    def discard(self, consumer: Consumer) -> None:
        self._open.discard(consumer)

    async def close_all(self) -> None:
        """Close every open socket with 1001 (going away)."""
        await asyncio.gather(*(c.going_away() for c in list(self._open)), return_exceptions=True)


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
        await self.consumer(WebSocket(scope, receive, send), self.layer, self.options).run()


Consumer.handlers = HandlerTable.collect(Consumer)
