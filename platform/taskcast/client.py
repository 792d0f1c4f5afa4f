"""An asyncio client for Taskcast endpoints, for services, scripts and tests.

    async with connect("ws://host/ws/reliable", token="…") as client:
        reply = await client.request("reliable_chat", {"message": "hi"})
        async for frame in client:          # reconnects and resumes underneath
            print(frame.action, frame.payload, frame.replayed, frame.sent_at)

The rules are the browser module's (``taskcast.js``): a socket closed with 1001, 1006, 1011,
1012, 1013 (or any code but the four below) is opened again after a delay that doubles from
``backoff[0]`` to at most ``backoff[1]`` seconds, with jitter; the newest ``cursor`` received
goes back on the URL, so a reliable endpoint sends what was missed (``replayed``), once, in
order, or a ``gap`` frame first. 4400, 4401, 4403 and 1008 (a bad address, a refused token, a
forbidden path, abuse) would be refused again: the client stops and iteration raises
``Refused``; after 1000 (the server ended the session) iteration just ends. Frames are typed
when the app's message classes are at hand (``messages=`` a consumer class or message classes:
``frame.message`` is the model), plain dicts otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .client_frames import (
    Frame,
    Refused,
    RequestFailed,
    encode_frame,
    message_types,
    parse_frame,
)
from .consumer import Consumer
from .cursor import MAX_CURSOR_LENGTH
from .messages import BaseMessage

__all__ = ["NO_RETRY", "Client", "Frame", "Refused", "RequestFailed", "connect"]

# Close codes that a retry would meet again.
NO_RETRY = frozenset({1008, 4400, 4401, 4403})
_HTTP_REFUSALS = {401: 4401, 403: 4403}  # a handshake refused over HTTP, as a close code
_OURS = ("token", "cursor")
STEADY = 2.0  # seconds a connection lasts for the backoff to start again from its first delay
State = Literal["connecting", "open", "reconnecting", "closed"]
_END = object()


class Client:
    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        cursor: str | None = None,
        messages: type[Consumer] | Iterable[type[BaseMessage]] = (),
        backoff: tuple[float, float] = (0.25, 8.0),
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        max_queue: int = 1000,
        max_size: int = 8 * 2**20,
        on_state: Callable[[State, dict[str, Any]], None] | None = None,
    ) -> None:
        # Checked here, in words that never repeat the URL's query (a token may be in it).
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("ws", "wss") or not parts.hostname or not port_ok:
            raise ValueError("the URL must be ws://host[:port]/path or wss://…")
        given = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.url = urlunsplit(parts._replace(fragment=""))  # a fragment is never sent
        self.token = token if token is not None else given.get("token")
        self.cursor = cursor if cursor is not None else given.get("cursor")
        self.max_size = max_size
        self.backoff, self.request_timeout, self.open_timeout = (
            backoff,
            request_timeout,
            open_timeout,
        )
        self.on_state = on_state
        self.state: State = "closed"
        self.attempts = 0  # connections tried since the last one that stayed open (STEADY)
        self._models = message_types(messages)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_queue)
        self._ws: ClientConnection | None = None
        self._open = asyncio.Event()
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._sent: set[str] = set()  # the refs of requests sent on the socket that is open
        self._refs = itertools.count(1)
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._was_open = False
        self._ended = False  # no more frames than those queued
        self._failure: BaseException | None = None

    async def __aenter__(self) -> Self:
        self._runner = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self

    async def __anext__(self) -> Frame:
        if self._runner is None:
            raise RuntimeError("use the client as `async with connect(…) as client`")
        item = _END if self._ended and self._queue.empty() else await self._queue.get()
        if item is _END:
            self._ended = True  # for the next call too, and for another reader waiting
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_END)
            if self._failure is not None:
                raise self._failure
            raise StopAsyncIteration
        assert isinstance(item, Frame)
        return item

    async def wait_open(self, timeout: float | None = None) -> None:
        """Until the socket is open; ``TimeoutError`` past ``timeout``, ``Refused`` at once
        when the server refused it for good."""
        async with asyncio.timeout(self.open_timeout if timeout is None else timeout):
            while not self._open.is_set():
                if self._failure is not None:
                    raise self._failure
                if self._runner is None or self._runner.done():
                    raise ConnectionError("the client is closed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._open.wait(), 0.1)

    async def send(
        self,
        message: BaseMessage | str,
        payload: Any = None,
        *,
        ref: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """Send a frame: a message of the app's (``send(ChatMessage(payload=…))``) or an action
        and its payload; waits (``timeout``, default ``request_timeout``) for the socket to be
        open."""
        await self.wait_open(self.request_timeout if timeout is None else timeout)
        assert self._ws is not None
        try:
            if ref is not None:
                self._sent.add(ref)  # from here a lost socket may have taken it
            await self._ws.send(encode_frame(message, payload, ref))
        except ConnectionClosed as closed:  # as it closed (the runner reconnects, or stops)
            code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
            if code in NO_RETRY:
                raise Refused(code, reason) from None
            raise ConnectionError(f"the socket closed ({code}) before the frame went") from None

    async def request(
        self, message: BaseMessage | str, payload: Any = None, *, timeout: float | None = None
    ) -> Frame:
        """Send a frame with a ``ref`` of its own and return the reply carrying it.
        ``RequestFailed`` when the reply is an error frame, ``TimeoutError`` when none comes in
        time, ``ConnectionError`` when the socket closes first (it may have been handled)."""
        limit = self.request_timeout if timeout is None else timeout
        ref = f"r{next(self._refs)}"
        reply = self._pending[ref] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(limit):
                await self.send(message, payload, ref=ref, timeout=limit)
                frame = await reply
        finally:
            self._pending.pop(ref, None)
            self._sent.discard(ref)
            if reply.done() and not reply.cancelled():
                reply.exception()  # seen: no "never retrieved" warning for a failed one
            reply.cancel()
        if frame.action == "error":
            raise RequestFailed(frame)
        assert isinstance(frame, Frame)
        return frame

    async def close(self) -> None:
        """Stop: the socket closed (its close handshake bounded by a second), no retry."""
        self._closing = True
        if self._runner is not None:
            self._runner.cancel()  # leaving its connection closes the socket
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._fail_pending(ConnectionError("the client was closed"), everyone=True)
        if self.state != "closed":
            self._set_state("closed", {})
        self._end()

    # The connection, again and again ----------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._closing:
                self._set_state("reconnecting" if self._was_open else "connecting", {})
                self.attempts += 1
                try:
                    code, reason = await self._session()
                except Exception as exc:  # given to the iteration, never lost
                    self._failure = exc if isinstance(exc, Refused) else self._stopped(exc)
                    self._fail_pending(self._failure, everyone=True)
                    self._set_state("closed", {"code": 1006, "reason": str(self._failure)})
                    break
                refused = Refused(code, reason) if code in NO_RETRY else None
                said = f"{code}: {reason}" if reason else str(code)
                lost = ConnectionError(f"the socket closed ({said[:200]}) before a reply")
                self._fail_pending(refused or lost, everyone=refused is not None)
                if refused is not None or code == 1000:  # refused, or ended by the server
                    self._failure = refused
                    self._set_state("closed", {"code": code, "reason": reason})
                    break
                delay = self._delay()
                self._set_state("reconnecting", {"code": code, "reason": reason, "delay": delay})
                await asyncio.sleep(delay)
        finally:
            self._end()

    async def _session(self) -> tuple[int, str]:
        """One connection, until it closes: its close code and reason (1006 for none)."""
        opened: float | None = None
        try:
            address = self._address()
            async with ws_connect(
                address, open_timeout=self.open_timeout, close_timeout=1, max_size=self.max_size
            ) as ws:
                self._ws = ws
                self._was_open = True
                opened = time.monotonic()
                self._open.set()
                self._set_state("open", {})
                async for text in ws:
                    if isinstance(text, str):
                        await self._received(text)
            return ws.close_code or 1006, ws.close_reason or ""
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == 1009 and not closed.rcvd_then_sent:
                # A frame over our max_size (not the server's 1009, echoed): it would come again.
                raise Refused(1009, "a frame over the client's max_size") from None
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
        except InvalidStatus as refused:  # an HTTP answer to the handshake
            status = refused.response.status_code
            if 400 <= status < 500 and status not in (408, 429):
                why = " (no such endpoint, or its origin or host refused)" if status == 403 else ""
                return _HTTP_REFUSALS.get(status, 4400), f"HTTP {status} at the handshake{why}"
            return 1006, f"HTTP {status}"
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return 1006, type(exc).__name__
        finally:
            self._ws = None
            self._open.clear()
            # The backoff starts again after a connection that lasted, not after every one that
            # opened: a server that accepts and closes at once is not asked again at once.
            if opened is not None and time.monotonic() - opened >= STEADY:
                self.attempts = 0

    def _fail_pending(self, error: BaseException, *, everyone: bool = False) -> None:
        """Fail the requests the closed socket took (all of them, ``everyone``): one not yet
        sent waits for the next socket."""
        for ref, reply in self._pending.items():
            if (everyone or ref in self._sent) and not reply.done():
                reply.set_exception(error)
        self._sent.clear()

    def _address(self) -> str:
        """The URL with the token and the newest cursor (the user's other parameters as given)."""
        parts = urlsplit(self.url)
        kept = [p for p in parts.query.split("&") if p and p.split("=")[0] not in _OURS]
        ours = {"token": self.token, "cursor": self.cursor}
        kept += [urlencode({k: v}, quote_via=quote) for k, v in ours.items() if v is not None]
        return urlunsplit(parts._replace(query="&".join(kept)))

    def _stopped(self, exc: Exception) -> ConnectionError:
        """What ends the client when something unforeseen does, in words without the token."""
        said = f"{type(exc).__name__}: {exc}"
        if self.token:  # as given, and as a URL carries it (quote, as _address; and with / kept)
            for form in {self.token, quote(self.token, safe=""), quote(self.token)}:
                said = said.replace(form, "[redacted]")
        return ConnectionError(f"the client stopped: {said[:300]}")

    def _delay(self) -> float:
        first, most = self.backoff
        ceiling: float = min(most, first * 2.0 ** min(30, max(0, self.attempts - 1)))
        return ceiling * random.uniform(0.5, 1.0)

    async def _received(self, text: str) -> None:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return  # not the protocol: nothing to give
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            return
        frame = parse_frame(data, self._models)
        if frame.cursor is not None and len(frame.cursor) <= MAX_CURSOR_LENGTH:
            self.cursor = frame.cursor  # (a longer one is none this server gives)
        elif frame.action == "error" and frame.ref is None and _code(frame) == "invalid_cursor":
            self.cursor = None  # the server went live instead: sending it again would not help
        reply = self._pending.get(frame.ref) if frame.ref is not None else None
        if reply is not None and not reply.done():
            reply.set_result(frame)
            return
        await self._queue.put(frame)  # a reader that does not keep up slows the socket

    def _set_state(self, state: State, details: dict[str, Any]) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state, details)

    def _end(self) -> None:
        if self._queue.full():
            self._ended = True  # what is queued is read first
        elif not self._ended:
            self._queue.put_nowait(_END)


def _code(frame: Frame) -> object:
    return frame.payload.get("code") if isinstance(frame.payload, dict) else None


def connect(url: str, **options: Any) -> Client:
    """``async with connect(url, token=…) as client``: see ``Client`` for the options."""
    return Client(url, **options)
