"""The consumer: a typed WebSocket endpoint that joins groups on a channel layer.

A connection's life: ``authenticate`` (may refuse) → join ``groups`` on the layer → accept →
``on_connect`` → receive loop (validate each frame, dispatch to its ``@ws_handler``) → on every
way out: leave the groups → ``on_disconnect``. Frames to the client go out through the socket's
``SocketWriter`` (bounded, paced catch-ups), so broadcasts never wait on a slow client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import ClassVar

from starlette.websockets import WebSocket, WebSocketState

from .addresses import (
    CONNECTION,
    USER,
    GroupTemplate,
    InvalidAddress,
    check_route,
    resolve,
    templates_of,
)
from .asgi import ConsumerApp
from .cursor import BEGINNING, Position, decode_cursor
from .delivery import Delivery, pack_message
from .exceptions import ConnectionRefused, DefinitionError, InvalidPayload, LayerUnavailable
from .guards import Authenticator, TokenBucket, origin_allowed
from .handlers import HandlerTable, ws_handler
from .layers.base import ChannelLayer, Replay
from .messages import BaseMessage, ErrorMessage, PingMessage, PongMessage
from .metrics import Metrics
from .options import Connections, ConsumerOptions
from .outbox import Overflow
from .protocol import Rejected, close_reason, decode, encode, ref_of, utf8_size, with_ref
from .rendering import Rendering
from .writer import SocketWriter

__all__ = ["Connections", "Consumer", "ConsumerApp", "ConsumerOptions"]

log = logging.getLogger("taskcast.consumer")

INTERNAL_ERROR = ErrorMessage.of("internal_error", "The server could not handle this frame")
UNAVAILABLE = ErrorMessage.of("unavailable", "A backend is unavailable; try again shortly")
RATE_LIMITED = encode(ErrorMessage.of("rate_limited", "Too many frames; slow down"))
BINARY_REFUSED = encode(ErrorMessage.of("invalid_frame", "Binary frames are not accepted"))
INVALID_CURSOR = encode(
    ErrorMessage.of("invalid_cursor", "The cursor is not one this server gave; it is ignored")
)


UNCOUNTED = Metrics()  # where consumers with no app metrics count (nobody reads it)


class Consumer(Rendering):
    """Base of every consumer. Subclasses set ``layer_alias`` and ``groups`` and add handlers.
    ``groups`` may be templates (``room:{room_name}``, ``user:{user}``, ``jobs:{connection}``):
    see ``taskcast.addresses``."""

    layer_alias: ClassVar[str | None] = None
    groups: ClassVar[tuple[str, ...]] = ()
    group_templates: ClassVar[tuple[GroupTemplate, ...]] = ()
    # For the documentation: tags, and what on_connect/on_disconnect broadcast.
    tags: ClassVar[tuple[str, ...]] = ()
    notices: ClassVar[tuple[type[BaseMessage], ...]] = ()
    # For the documentation: whether those notices are broadcast with ``transient=True``.
    transient_notices: ClassVar[bool] = False
    # On a layer that keeps messages: a socket with no cursor gets all that is kept, not only
    # what comes after it joined (a job's watcher).
    replay_from_start: ClassVar[bool] = False
    # For the documentation: query parameters the consumer requires (name → description).
    query_parameters: ClassVar[dict[str, str]] = {}
    authenticator: ClassVar[Authenticator | None] = None
    handlers: ClassVar[HandlerTable]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.groups, str) or not isinstance(cls.groups, tuple | list):
            raise DefinitionError(f"{cls.__qualname__}.groups must be a tuple of group names")
        cls.groups = tuple(cls.groups)
        cls.group_templates = templates_of(cls.groups)
        if cls.groups and cls.layer_alias is None:
            raise DefinitionError(f"{cls.__qualname__} has groups but no layer_alias")
        cls.handlers = HandlerTable.collect(cls)

    def __init__(
        self, websocket: WebSocket, layer: ChannelLayer | None, options: ConsumerOptions
    ) -> None:
        self.websocket = websocket
        self.layer = layer
        self.options = options
        self.member_id = uuid.uuid4().hex
        # Who the authenticator says the client is (None: anonymous), and this socket's own
        # address: a publisher reaches it alone through a ``{connection}`` group.
        self.user: str | None = None
        self.address = self.member_id
        # The groups this socket is in, filled from its route, identity and address.
        self.joined_groups: tuple[str, ...] = ()
        overflow = options.overflow or (
            Overflow.CLOSE if layer is not None and layer.keeps_messages else Overflow.DROP_OLDEST
        )
        # Metrics and logs name the route (/ws/room/{room_name}), never the value.
        self.endpoint = options.route or websocket.scope.get("path", "")
        self._metrics = options.metrics or UNCOUNTED
        self._writer = SocketWriter(
            websocket._send,  # the ASGI send itself: see taskcast.eager
            self,
            self._close,
            size=options.outbox_size,
            overflow=overflow,
            keeps_messages=layer is not None and layer.keeps_messages,
            sent=(self._metrics.frames_out, self.endpoint),
            on_drop=self._count_drop,
        )

    @classmethod
    def as_asgi(
        cls,
        layers: Mapping[str, ChannelLayer] | None = None,
        options: ConsumerOptions | None = None,
        route: str | None = None,
    ) -> ConsumerApp:
        """The ASGI app serving this consumer, with its layer looked up by ``layer_alias``;
        ``route``, the path it is mounted at (with its ``{parameters}``), names it in metrics
        and token rules."""
        layer = None if cls.layer_alias is None else (layers or {})[cls.layer_alias]
        options = options or ConsumerOptions()
        if route is not None:
            check_route(cls.__qualname__, cls.group_templates, route)
            options = replace(options, route=route)
        return ConsumerApp(cls, layer, options)

    # Hooks -----------------------------------------------------------------------------------

    async def authenticate(self) -> None:
        """Raise ``ConnectionRefused`` to refuse the connection; runs before accept, and may set
        ``self.user``. By default the consumer's ``authenticator``, else the app's
        (``ConsumerOptions.authenticator``): what it returns is the user."""
        authenticator = type(self).authenticator or self.options.authenticator
        if authenticator is not None:
            self.user = await authenticator(self.websocket, type(self))

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
        self._writer.send(encode(message, ref))

    async def broadcast(
        self,
        message: BaseMessage,
        *,
        groups: Iterable[str] | None = None,
        exclude_self: bool = False,
        transient: bool = False,
    ) -> None:
        """Send ``message`` to every member of ``groups`` (default: the groups this socket is in),
        in every process. The frame is encoded once, here. ``transient``, on a layer that
        keeps messages: to the members present only, not kept (presence notices)."""
        if self.layer is None:
            raise DefinitionError(f"{type(self).__qualname__} has no layer to broadcast on")
        data = pack_message(encode(message), self.member_id if exclude_self else None)
        for group in self.joined_groups if groups is None else groups:
            await self.layer.group_send(group, data, transient=transient)

    # The layer's side (Member) and the writer's (Renderer) -------------------------------------

    def deliver(self, delivery: Delivery) -> bool:
        """Called by the layer for each broadcast to a group this socket is in; never blocks."""
        return not self.wants(delivery) or self._writer.offer(delivery)

    def replay(self, replay: Replay) -> None:
        self._writer.replay(replay)

    def _count_drop(self) -> None:
        self._metrics.dropped[self.endpoint] += 1

    def _error(self, frame: str, code: str) -> None:
        self._metrics.errors[self.endpoint, code] += 1
        self._writer.send(frame)

    # The connection's life -------------------------------------------------------------------

    async def run(self) -> None:
        if not origin_allowed(self.websocket, self.options.allowed_origins):
            log.warning("refused a handshake from origin %r", self.websocket.headers.get("origin"))
            await self.websocket.close(1008)  # before accept: the server answers 403
            return
        connections, cap = self.options.connections, self.options.max_connections
        if connections is None:
            await self._serve()
            return
        if cap is not None and len(connections) >= cap:
            await self._refuse(1013, "too many connections; try again later")
            return
        # Counted from before the first await: handshakes in flight hold their places too.
        connections.add(self)
        try:
            await self._serve()
        finally:
            connections.discard(self)

    async def _serve(self) -> None:
        try:
            await self.authenticate()
        except ConnectionRefused as refusal:
            await self._refuse(refusal.code, refusal.reason)
            return
        except Exception:
            log.exception("%s.authenticate failed", type(self).__qualname__)
            await self._refuse(1011, "internal error")
            return
        try:
            self.joined_groups = self._groups()
        except InvalidAddress as exc:
            await self._refuse(4400, str(exc))
            return
        joined: list[str] = []
        try:
            # Join before accepting: once a client's socket is open, it is in its groups.
            since = self._resume_positions()
            for group in self.joined_groups:
                assert self.layer is not None  # checked when the class was defined
                # Counted as joined before the await: a join cut short (the task cancelled as
                # the client goes) may have added the member already; leaving is idempotent.
                joined.append(group)
                position = await self.layer.group_add(group, self, since=since.get(group))
                if position is not None:
                    self._writer.positions[group] = position
        except BaseException as exc:
            await self._leave(joined)
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, LayerUnavailable):
                log.warning("%s: %s; closing with 1013", type(self).__qualname__, exc)
                await self._refuse(1013, "try again later")
            else:
                log.exception("%s could not join its groups", type(self).__qualname__)
                await self._refuse(1011, "internal error")
            return
        try:
            await self.websocket.accept()
        except BaseException:  # the client went away during the join (or the server stops)
            await self._leave(joined)
            raise
        self._writer.start(f"taskcast-{self.member_id}")
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
            self._metrics.connections[self.endpoint] -= 1
            await self._leave(joined)
            self._writer.stop()
            try:
                await self.on_disconnect(code)
            except LayerUnavailable as exc:
                log.warning("%s.on_disconnect: %s", type(self).__qualname__, exc)
            except Exception:
                log.exception("%s.on_disconnect failed", type(self).__qualname__)

    async def _refuse(self, code: int, reason: str) -> None:
        # Accept first so that the browser sees the close code, not just a failed handshake.
        await self.websocket.accept()
        await self.websocket.close(code, close_reason(reason))

    async def _leave(self, groups: list[str]) -> None:
        for group in groups:
            assert self.layer is not None
            await self.layer.group_discard(group, self)

    def _resume_positions(self) -> dict[str, Position]:
        start = dict.fromkeys(self.joined_groups, BEGINNING) if self.replay_from_start else {}
        raw = self.websocket.query_params.get("cursor")
        if raw is None:
            return start
        try:
            positions = decode_cursor(raw)
            assert self.layer is not None
            for group, position in positions.items():  # the layer that made them checks them
                positions[group] = self.layer.check_position(position)
        except ValueError:
            self._error(INVALID_CURSOR, "invalid_cursor")
            return start
        return start | {g: p for g, p in positions.items() if g in self.joined_groups}

    def _groups(self) -> tuple[str, ...]:
        # Only the authenticator names the user, only the server the connection: never the URL.
        params = self.websocket.scope.get("path_params", {}).items()
        values = {k: v for k, v in params if k not in (USER, CONNECTION)}
        values[CONNECTION] = self.address
        if self.user is not None:
            values[USER] = self.user
        return resolve(self.group_templates, values, self.options.address_rules)

    async def _receive_loop(self) -> int:
        limit = self.options.max_frame_bytes
        rate = self.options.rate
        bucket = TokenBucket(rate, self.options.burst) if rate else None
        strikes = 0
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return int(message.get("code") or 1005)
            text: str | None = message.get("text")
            size = len(message.get("bytes") or b"") if text is None else utf8_size(text, limit)
            if size > limit:
                await self._close(1009, f"frame larger than {limit} bytes")
                return 1009
            if bucket is not None:
                if not bucket.take():
                    strikes += 1
                    if strikes >= self.options.rate_strikes:
                        await self._close(1008, "too many frames")
                        return 1008
                    # Answering its ref, so that a request fails at once rather than timing out
                    # (at most rate_strikes of these are read in a row before the close).
                    ref = ref_of(text) if text is not None else None
                    self._error(with_ref(RATE_LIMITED, ref), "rate_limited")
                    continue
                strikes = 0
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
        self._writer.send(frame)

    async def going_away(self) -> None:
        """Close the socket with 1001, as a server does when it stops: the client reconnects
        (to another process) and resumes from its cursor."""
        await self._close(1001, "server going away")

    async def _close(self, code: int, reason: str) -> None:
        self._writer.stop()
        if self.websocket.application_state is WebSocketState.CONNECTED:
            try:
                await self.websocket.close(code, close_reason(reason))
            except Exception:  # already closing from the other side
                log.debug("close(%s) on a closing socket", code)


Consumer.handlers = HandlerTable.collect(Consumer)
