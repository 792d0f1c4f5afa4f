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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .consumer import Consumer
from .exceptions import TaskcastError
from .messages import BaseMessage, ErrorMessage, GapMessage, PongMessage
from .protocol import encode

__all__ = ["NO_RETRY", "Client", "Frame", "Refused", "RequestFailed", "connect"]

# Close codes that a retry would meet again.
NO_RETRY = frozenset({1008, 4400, 4401, 4403})
STEADY = 2.0  # seconds a connection lasts for the backoff to start again from its first delay
State = Literal["connecting", "open", "reconnecting", "closed"]
_END = object()


@dataclass(frozen=True)
class Frame:
    """One frame from the server. ``message``: the payload as the app's model, when the client
    knows the action's class and the payload is valid for it."""

    action: str
    payload: Any
    ref: str | None = None
    cursor: str | None = None
    replayed: bool = False
    sent_at: datetime | None = None
    message: BaseMessage | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def as_json(self) -> str:
        return json.dumps(dict(self.raw), ensure_ascii=False)


class Refused(TaskcastError):
    """The server closed the socket with a code that a retry would meet again."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed {code}{': ' + reason if reason else ''}")
        self.code, self.reason = code, reason


class RequestFailed(TaskcastError):
    """A request's reply was an error frame (``frame.payload``: code, detail, errors)."""

    def __init__(self, frame: Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        super().__init__(f"{payload.get('code', 'error')}: {payload.get('detail', '')}")
        self.frame = frame


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
        on_state: Callable[[State, dict[str, Any]], None] | None = None,
    ) -> None:
        self.url, self.token, self.cursor = url, token, cursor
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
            self._ended = True  # for the next call too
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
        self, message: BaseMessage | str, payload: Any = None, *, ref: str | None = None
    ) -> None:
        """Send a frame: a message of the app's (``send(ChatMessage(payload=…))``) or an action
        and its payload; waits (``request_timeout``) for the socket to be open."""
        await self.wait_open(self.request_timeout)
        assert self._ws is not None
        try:
            await self._ws.send(_text(message, payload, ref))
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
                await self.send(message, payload, ref=ref)
                frame = await reply
        finally:
            self._pending.pop(ref, None)
        if frame.action == "error":
            raise RequestFailed(frame)
        assert isinstance(frame, Frame)
        return frame

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._fail_pending(ConnectionError("the client was closed"))
        if self.state != "closed":
            self._set_state("closed", {})
        self._end()

    # The connection, again and again ----------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._closing:
                self._set_state("reconnecting" if self._was_open else "connecting", {})
                self.attempts += 1
                code, reason = await self._session()
                refused = Refused(code, reason) if code in NO_RETRY else None
                self._fail_pending(refused or ConnectionError("the socket closed before a reply"))
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
            async with ws_connect(self._address(), open_timeout=self.open_timeout) as ws:
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
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
        except InvalidStatus as refused:  # an HTTP answer to the handshake
            status = refused.response.status_code
            final = 400 <= status < 500 and status not in (408, 429)
            return (4400 if final else 1006), f"HTTP {status}"
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return 1006, type(exc).__name__
        finally:
            self._ws = None
            self._open.clear()
            # The backoff starts again after a connection that lasted, not after every one that
            # opened: a server that accepts and closes at once is not asked again at once.
            if opened is not None and time.monotonic() - opened >= STEADY:
                self.attempts = 0

    def _fail_pending(self, error: BaseException) -> None:
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(error)

    def _address(self) -> str:
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("cursor", "token")]
        if self.token is not None:
            query.append(("token", self.token))
        if self.cursor is not None:
            query.append(("cursor", self.cursor))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _delay(self) -> float:
        first, most = self.backoff
        ceiling: float = min(most, first * 2.0 ** min(30, max(0, self.attempts - 1)))
        return ceiling * random.uniform(0.5, 1.0)

    async def _received(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            return  # not the protocol: nothing to give
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            return
        frame = self._frame(data)
        if frame.cursor is not None:
            self.cursor = frame.cursor
        reply = self._pending.get(frame.ref) if frame.ref is not None else None
        if reply is not None and not reply.done():
            reply.set_result(frame)
            return
        await self._queue.put(frame)  # a reader that does not keep up slows the socket

    def _frame(self, data: dict[str, Any]) -> Frame:
        model = self._models.get(data["action"])
        message = None
        if model is not None:
            with contextlib.suppress(ValidationError):
                message = model.model_validate(
                    {"action": data["action"], "payload": data.get("payload")}
                )
        sent_at = None
        if isinstance(data.get("sent_at"), str):
            with contextlib.suppress(ValueError):
                sent_at = datetime.fromisoformat(data["sent_at"])
        ref, cursor = data.get("ref"), data.get("cursor")
        return Frame(
            action=data["action"],
            payload=data.get("payload"),
            ref=ref if isinstance(ref, str) else None,
            cursor=cursor if isinstance(cursor, str) else None,
            replayed=data.get("replayed") is True,
            sent_at=sent_at,
            message=message,
            raw=data,
        )

    def _set_state(self, state: State, details: dict[str, Any]) -> None:
        self.state = state
        if self.on_state is not None:
            self.on_state(state, details)

    def _end(self) -> None:
        if self._queue.full():
            self._ended = True  # what is queued is read first
        elif not self._ended:
            self._queue.put_nowait(_END)


def connect(url: str, **options: Any) -> Client:
    """``async with connect(url, token=…) as client``: see ``Client`` for the options."""
    return Client(url, **options)


def message_types(
    source: type[Consumer] | Iterable[type[BaseMessage]],
) -> dict[str, type[BaseMessage]]:
    """The message classes by action: a consumer's (what it sends and what it takes, with the
    protocol's own), or the ones given."""
    if isinstance(source, type) and issubclass(source, Consumer):
        handlers = source.handlers
        models: list[type[BaseMessage]] = [ErrorMessage, GapMessage, PongMessage]
        for handler in handlers.ws.values():
            models += [handler.input_type, *handler.outputs, *handler.spec.broadcasts]
        for handler in handlers.events.values():
            models += handler.outputs
        models += source.notices
    else:
        models = list(source)
    return {model.action_name: model for model in models}


def _text(message: BaseMessage | str, payload: Any, ref: str | None) -> str:
    if isinstance(message, BaseMessage):
        return encode(message, ref)
    frame: dict[str, Any] = {"action": message, "payload": payload}
    if ref is not None:
        frame["ref"] = ref
    return json.dumps(frame, ensure_ascii=False)
