"""A socket's writer: everything a consumer sends goes out through it, in order.

It holds the socket's bounded outbox, knows whether a frame is in flight, sends eagerly from the
caller when the socket is idle (see ``taskcast.eager``), and otherwise drains the outbox from one
task. It also paces catch-ups: a member behind in a group (resuming with a cursor, or one that
fell behind live traffic) is handed a ``Replay``, and the writer reads its next page only when
the outbox runs low, so that a catch-up costs a page of memory whatever the history it spans.
Frames from layers that keep messages get the socket's cursor here.

The frames themselves come from the consumer, through ``Renderer``: which deliveries it wants,
and the text of each (at once when it can, or after an await).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, Final, Protocol, cast

from starlette.types import Send

from .cursor import Position, encode_cursor
from .delivery import Delivery
from .eager import Suspended, finish, step, steppable_send
from .exceptions import LayerUnavailable
from .layers.base import Replay
from .outbox import Outbox, Overflow

__all__ = ["LATER", "Later", "Renderer", "SocketWriter"]

log = logging.getLogger("taskcast.writer")


class Later:
    """A frame that needs an await to render (an event handler still running)."""


LATER: Final = Later()


class Renderer(Protocol):
    """What the writer asks the consumer about each delivery."""

    def wants(self, delivery: Delivery) -> bool:
        """Whether this socket gets ``delivery`` at all (starts its rendering when it does)."""

    def render_now(self, delivery: Delivery) -> str | Later | None:
        """The frame's body, ``LATER`` when it needs an await, ``None`` for no frame."""

    async def render(self, delivery: Delivery) -> str | None: ...


Item = Delivery | str | Suspended


class SocketWriter:
    """The writing half of one socket. ``start`` once the socket is accepted; until then frames
    queue. ``close`` is called with 1013 when the outbox overflows under ``Overflow.CLOSE``, or
    when a catch-up cannot be read."""

    def __init__(
        self,
        send: Send,
        renderer: Renderer,
        close: Callable[[int, str], Awaitable[None]],
        *,
        size: int,
        overflow: Overflow,
        keeps_messages: bool,
        sent: tuple[MutableMapping[str, int], str],
        on_drop: Callable[[], None],
    ) -> None:
        self._send = send
        self._renderer = renderer
        self._close = close
        # Where sent frames are counted: a counter and its key (the hot path: no call).
        self._sent, self._endpoint = sent
        self._on_drop = on_drop
        self._outbox: Outbox[Item] = Outbox(size, overflow, on_drop=on_drop)
        self._size = size
        # Broadcasts on a layer that keeps messages stop at this mark, which leaves room for
        # replies; past it, the layer pages kept ones in later (see ``offer``).
        self._broadcast_room = max(1, size - size // 8)
        self._keeps = keeps_messages
        self.eager = steppable_send(send)
        # True while a frame is being sent (by the drain task, or a send that had to wait), and
        # before ``start``: then new frames queue behind, in order.
        self._in_flight = True
        self._replays: deque[Replay] = deque()
        # The next page is read when the queue is down to half the last one: a socket holds
        # about a page and a half of a catch-up, however long or slow.
        self._refill_below = 0
        self.positions: dict[str, Position] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        self._task = asyncio.create_task(self._drain(), name=name)
        self._in_flight = bool(self._outbox) or bool(self._replays)

    def stop(self) -> None:
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    # What the consumer hands over ------------------------------------------------------------

    def send(self, text: str) -> None:
        """Queue a frame (a reply, an error, a notice to this socket alone)."""
        if self._in_flight or self._outbox:
            self._outbox.put(text)  # past the bound: the overflow policy (CLOSE: 1013)
        else:
            self._send_now(text)

    def offer(self, delivery: Delivery) -> bool:
        """Take a broadcast the consumer wants; false when a frame the layer keeps finds no room
        (the layer then stops delivering that group and hands over a ``Replay``). A frame that
        is not kept and finds no room is dropped: on a layer that keeps messages the newest (a
        presence notice), otherwise the oldest (``Overflow.DROP_OLDEST``)."""
        if self._in_flight or self._outbox:
            if self._keeps and len(self._outbox) >= self._broadcast_room:
                if delivery.position is not None:
                    return False
                self._on_drop()  # a transient frame: live members only; this one is not keeping up
                return True
            self._outbox.put(delivery)
            return True
        text = self._renderer.render_now(delivery)
        if isinstance(text, Later):
            self._outbox.put(delivery)
        elif text is not None:
            self._send_now(self.framed(delivery, text))
        return True

    def replay(self, replay: Replay) -> None:
        """Catch up on ``replay`` as the socket drains (after what is queued)."""
        self._replays.append(replay)
        self._in_flight = True
        self._outbox.wake()

    # Sending ---------------------------------------------------------------------------------

    def _send_now(self, text: str) -> None:
        """Send from the caller when the socket is idle: the send's first step almost always
        finishes it, which saves a task wake-up per frame per socket."""
        if not self.eager:
            self._outbox.put(text)
            self._in_flight = True
            return
        self._sent[self._endpoint] += 1
        send = cast(Coroutine[Any, Any, None], self._send({"type": "websocket.send", "text": text}))
        try:
            done, suspended = step(send)
        except Exception:  # the client is gone; the receive loop sees the disconnect
            return
        if not done:
            # Its transport is paused: the drain task finishes this send before anything else.
            assert isinstance(suspended, Suspended)
            self._in_flight = True
            self._outbox.put_first(suspended)

    async def _drain(self) -> None:
        outbox = self._outbox
        while not outbox.overflowed:
            if self._replays and len(outbox) <= self._refill_below:
                if not await self._read_page(self._replays[0]):
                    return
                continue
            item = outbox.pop()
            if item is None:
                self._in_flight = False
                await outbox.wait()
                self._in_flight = True
                continue
            self._in_flight = True
            try:
                if isinstance(item, Suspended):
                    await finish(item)
                else:
                    text = item if isinstance(item, str) else await self._render(item)
                    if text is not None:
                        self._sent[self._endpoint] += 1
                        await self._send({"type": "websocket.send", "text": text})
            except Exception:  # the client is gone (the receive loop sees it), or worse: close
                log.debug("a send failed; closing the socket", exc_info=True)
                await self._close(1011, "internal error")
                return
        await self._close(1013, "too slow: resume from your last position")

    async def _read_page(self, replay: Replay) -> bool:
        try:
            page = await replay.page()
        except LayerUnavailable as exc:
            log.warning("catch-up in %r stopped: %s; closing with 1013", replay.group, exc)
            await self._close(1013, "try again later")
            return False
        except Exception:
            log.exception("catch-up in %r failed; closing the socket", replay.group)
            await self._close(1011, "internal error")
            return False
        if page is None:  # caught up: the layer delivers this group live again
            self._replays.popleft()
            return True
        wanted = [delivery for delivery in page if self._renderer.wants(delivery)]
        self._refill_below = len(wanted) // 2
        self._outbox.extend(wanted)
        return True

    async def _render(self, delivery: Delivery) -> str | None:
        text = self._renderer.render_now(delivery)
        if isinstance(text, Later):
            text = await self._renderer.render(delivery)
        return None if text is None else self.framed(delivery, text)

    # Cursors ---------------------------------------------------------------------------------

    def framed(self, delivery: Delivery, body: str) -> str:
        """``body`` with this socket's cursor, when ``delivery`` came from a layer that keeps
        messages: after ``delivery``'s position, or where the socket is (a transient frame)."""
        position = delivery.position
        if position is None:
            if delivery.group not in self.positions:
                return body  # a layer that keeps nothing
            key: Any = (body, *self.positions.values())
        else:
            self.positions[delivery.group] = position
            key = body
        if len(self.positions) > 1:
            text = _with_cursor(body, encode_cursor(self.positions), delivery.sent_at)
        else:
            # Every member at the same position shares the framed text.
            text = delivery.cache.get(key) or delivery.cache.setdefault(
                key, _with_cursor(body, encode_cursor(self.positions), delivery.sent_at)
            )
        return f'{text[:-1]},"replayed":true}}' if delivery.replayed else text


def _with_cursor(text: str, cursor: str, sent_at: str | None) -> str:
    stamp = f',"sent_at":"{sent_at}"' if sent_at else ""
    return f'{text[:-1]},"cursor":"{cursor}"{stamp}}}'
