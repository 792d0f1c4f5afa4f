"""Helpers for testing consumers: envelope clients in-process and against a live server.

    async with Communicator(ChatConsumer.as_asgi(layers), "/ws/chat") as client:
        await client.send(ChatMessage(payload=ChatPayload(message="hi")), ref="1")
        frame = await client.expect("chat_notification")
        await client.expect_nothing()

    with LiveServer(app) as server:                      # real uvicorn on a free port
        async with connect(server.ws_url("/ws/chat")) as client:
            ...

    async with resuming(server.ws_url("/ws/reliable")) as client:   # taskcast.client's Client
        frames = await next_frames(client, 3)                          # across reconnects too

Every wait is bounded (``timeout``, default 5 s); a frame that does not come fails the test with
an ``AssertionError`` rather than hanging it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.types import ASGIApp, Message
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from .client import Client
from .client import Frame as ClientFrame
from .messages import BaseMessage
from .protocol import encode

__all__ = [
    "Client",
    "Closed",
    "Communicator",
    "EnvelopeClient",
    "Frame",
    "LiveClient",
    "LiveServer",
    "connect",
    "next_frames",
    "raw_client",
    "resuming",
    "stalled_client",
]

Frame = dict[str, Any]
DEFAULT_TIMEOUT = 5.0


class Closed(Exception):
    """The server closed the socket; ``code`` is its close code."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class EnvelopeClient:
    """The envelope-speaking part shared by the in-process and the live client."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    async def send_text(self, text: str) -> None:
        raise NotImplementedError

    async def send_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    async def _receive_raw(self, timeout: float) -> str:
        """The next text frame; raises ``Closed`` or ``TimeoutError``."""
        raise NotImplementedError

    async def send(
        self, message: BaseMessage | Mapping[str, object], *, ref: str | None = None
    ) -> None:
        """Send a typed message, or a raw mapping (to test bad input)."""
        if isinstance(message, BaseMessage):
            text = encode(message, ref)
        else:
            text = json.dumps({**message, **({} if ref is None else {"ref": ref})})
        await self.send_text(text)

    async def receive(self, timeout: float | None = None) -> Frame:
        """The next frame, decoded."""
        limit = self.timeout if timeout is None else timeout
        try:
            text = await self._receive_raw(limit)
        except TimeoutError:
            raise AssertionError(f"no frame within {limit}s") from None
        frame = json.loads(text)
        assert isinstance(frame, dict), f"frame is not a JSON object: {text!r}"
        return frame

    async def expect(self, action: str, timeout: float | None = None) -> Frame:
        """The next frame, which must have ``action``."""
        frame = await self.receive(timeout)
        assert frame.get("action") == action, f"expected {action!r}, got {frame!r}"
        return frame

    async def expect_all(self, *actions: str, timeout: float | None = None) -> list[Frame]:
        """The next frames, one per action, in that order."""
        return [await self.expect(action, timeout) for action in actions]

    async def expect_nothing(self, within: float = 0.2) -> None:
        """Assert that no frame arrives within ``within`` seconds."""
        try:
            text = await self._receive_raw(within)
        except TimeoutError:
            return
        raise AssertionError(f"expected no frame, got {text!r}")

    async def wait_closed(self, timeout: float | None = None) -> int:
        """Wait for the server to close the socket (skipping frames); returns the close code."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            while True:
                await self._receive_raw(max(0.0, deadline - time.monotonic()))
        except Closed as closed:
            return closed.code
        except TimeoutError:
            raise AssertionError(f"socket still open after {limit}s") from None


class Communicator(EnvelopeClient):
    """Drives an ASGI app's WebSocket in-process, with no server and no network."""

    def __init__(
        self,
        app: ASGIApp,
        path: str = "/",
        *,
        query_string: str = "",
        headers: Sequence[tuple[str, str]] = (),
        subprotocols: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(timeout)
        self.app = app
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query_string.encode(),
            "headers": [(b"host", b"testserver")]
            + [(k.lower().encode(), v.encode()) for k, v in headers],
            "subprotocols": list(subprotocols),
            "state": {},
        }
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        await self._to_app.put({"type": "websocket.connect"})
        first = await self._next(self.timeout)
        if first["type"] == "websocket.close":
            self.close_code = first.get("code", 1000)
            raise Closed(first.get("code", 1000), first.get("reason", ""))
        assert first["type"] == "websocket.accept", f"unexpected {first!r}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        if self.close_code is None:
            await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        try:
            await asyncio.wait_for(self._task, self.timeout)
        except TimeoutError:
            raise AssertionError(f"the app did not finish within {self.timeout}s") from None

    async def _run(self) -> None:
        await self.app(self.scope, self._to_app.get, self._from_app.put)

    async def send_text(self, text: str) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._to_app.put({"type": "websocket.receive", "bytes": data})

    async def _next(self, timeout: float) -> Message:
        assert self._task is not None
        if self.close_code is not None:
            raise Closed(self.close_code)
        getter = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait(
            {getter, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self._task in done:
            self._task.result()  # re-raises what the app raised
            raise Closed(1006, "the app returned without closing")
        raise TimeoutError

    async def _receive_raw(self, timeout: float) -> str:
        message = await self._next(timeout)
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            raise Closed(self.close_code, message.get("reason", ""))
        text = message.get("text")
        assert isinstance(text, str), f"expected a text frame, got {message!r}"
        return text


class LiveClient(EnvelopeClient):
    """A real WebSocket client (the ``websockets`` package) speaking the envelope."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, **options: Any) -> None:
        super().__init__(timeout)
        self.url = url
        self.options = options
        self._ws: ClientConnection | None = None

    @property
    def ws(self) -> ClientConnection:
        assert self._ws is not None, "use the client as `async with`"
        return self._ws

    async def __aenter__(self) -> Self:
        self._ws = await ws_connect(self.url, open_timeout=self.timeout, **self.options)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.ws.close()

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send(data)

    async def _receive_raw(self, timeout: float) -> str:
        try:
            message = await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            raise Closed(code, closed.rcvd.reason if closed.rcvd else "") from None
        assert isinstance(message, str), f"expected a text frame, got {message!r}"
        return message


def stalled_client(host: str, port: int, path: str) -> socket.socket:
    """A WebSocket client that completes the handshake, then never reads: a tiny receive buffer,
    so that the server's writes back up at once. For testing backpressure; close it when done."""
    return raw_client(host, port, path, receive_buffer=4096)


def raw_client(
    host: str, port: int, path: str, *, receive_buffer: int | None = None
) -> socket.socket:
    """A socket past the WebSocket handshake, and nothing more: what it reads is up to the
    caller (raw frames, or nothing at all). Close it when done."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)
        if not chunk:
            break
        response += chunk
    if not response.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise ConnectionError(f"the handshake was refused: {response[:80]!r}")
    return sock


def connect(url: str, **options: Any) -> LiveClient:
    """``async with connect(url) as client``: a live envelope client."""
    return LiveClient(url, **options)


class LiveServer:
    """Runs an ASGI app under a real uvicorn server on a free port, in a background thread."""

    def __init__(
        self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, **config: Any
    ) -> None:
        """``port=0`` picks a free port; give one to start a server again where it was."""
        self.host = host
        config.setdefault("ws", "websockets-sansio")
        config.setdefault("log_level", "warning")
        config.setdefault("lifespan", "on")
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, **config))
        self.port = port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def __enter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def resuming(url: str, **options: Any) -> Client:
    """``async with resuming(url) as client``: the client users get (``taskcast.client``), which
    reconnects and resumes, with a test's pace: retries from 50 ms up to half a second, and
    replies awaited at most ``DEFAULT_TIMEOUT``."""
    paced: dict[str, Any] = {"backoff": (0.05, 0.5), "request_timeout": DEFAULT_TIMEOUT}
    return Client(url, **(paced | options))


async def next_frames(
    client: Client, count: int, timeout: float = DEFAULT_TIMEOUT
) -> list[ClientFrame]:
    """The client's next ``count`` frames; an ``AssertionError`` when they do not all come
    within ``timeout`` seconds."""
    frames: list[ClientFrame] = []
    try:
        async with asyncio.timeout(timeout):
            async for frame in client:
                frames.append(frame)
                if len(frames) == count:
                    return frames
    except TimeoutError:
        pass
    raise AssertionError(f"{len(frames)} of {count} frames within {timeout}s: {frames!r}")
