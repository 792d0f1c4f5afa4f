"""taskcast.client and ``python -m taskcast`` at their edges, against servers of the test's own
that misbehave: a 1009 from the server, a rejected cursor, escape sequences in frames and close
reasons, a reader that goes away, SIGTERM, a token with ``/`` in it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve

from taskcast.client import Client, connect

pytestmark = pytest.mark.anyio

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextmanager
def fake_server(handler: Handler) -> Iterator[str]:
    """A WebSocket server of the test's own in a thread (so a blocking CLI call can use it):
    its ``ws://`` base URL."""
    ready: list[str] = []
    started = threading.Event()
    stop: list[asyncio.Future[None]] = []

    async def run() -> None:
        async with serve(handler, "127.0.0.1", 0) as server:
            ready.append(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}")
            stop.append(asyncio.get_running_loop().create_future())
            started.set()
            await stop[0]

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set_result, None)
        thread.join(10)
        loop.close()


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskcast", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_a_server_closing_1009_is_a_reconnect_not_the_end() -> None:
    """The server's own limit (it closes 1009 on a frame too big for it) fails that request and
    the client goes on; only a frame over the client's max_size stops it."""
    seen: list[int] = []

    async def strict(ws: ServerConnection) -> None:
        seen.append(1)
        async for text in ws:
            if len(text) > 1000:
                await ws.close(1009, "frame larger than 1000 bytes")
                return
            ref = json.loads(text)["ref"]
            await ws.send(json.dumps({"action": "pong", "payload": None, "ref": ref}))

    with fake_server(strict) as url:
        async with connect(url, backoff=(0.05, 0.1), request_timeout=5) as client:
            with pytest.raises(ConnectionError, match="1009"):
                await client.request("big", "x" * 2000)
            reply = await client.request("ping")  # on the next connection
    assert reply.action == "pong" and len(seen) == 2


async def test_a_cursor_the_server_rejects_is_not_sent_again() -> None:
    paths: list[str] = []
    again = threading.Event()  # (the server runs in a thread of its own)

    async def rejecting(ws: ServerConnection) -> None:
        assert ws.request is not None
        paths.append(ws.request.path)
        if len(paths) == 2:
            again.set()
        if "cursor=" in ws.request.path:
            error = {"code": "invalid_cursor", "detail": "not one this server gave"}
            await ws.send(json.dumps({"action": "error", "payload": error}))
        await ws.close(1012)

    with fake_server(rejecting) as url:
        async with connect(f"{url}/ws?cursor=bogus", backoff=(0.05, 0.1)) as client:
            async with asyncio.timeout(10):
                async for frame in client:
                    assert frame.payload["code"] == "invalid_cursor"
                    break
            assert await asyncio.to_thread(again.wait, 10)
    assert paths[0] == "/ws?cursor=bogus" and "cursor" not in paths[1]
    assert client.cursor is None


def test_what_a_server_says_reaches_the_terminal_without_its_escape_sequences() -> None:
    async def hostile(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"action": "\x1b]0;PWNED\x07", "payload": "\x9b2J"}))
        await ws.close(4401, "\x1b[2Jno")

    with fake_server(hostile) as url:
        said = cli("tail", url)
    assert said.returncode == 2, said.stderr
    assert "refused: closed 4401: \\u001b[2Jno" in said.stderr
    for text in (said.stdout, said.stderr):
        assert not any(0x80 <= ord(c) <= 0x9F or ord(c) == 0x1B for c in text)
    frame = json.loads(said.stdout)  # still JSON, reading back as what was sent
    assert (frame["action"], frame["payload"]) == ("\x1b]0;PWNED\x07", "\x9b2J")


def test_tail_into_a_reader_that_goes_away_exits_quietly() -> None:
    async def flood(ws: ServerConnection) -> None:
        while True:
            await ws.send(json.dumps({"action": "n", "payload": "x" * 100}))

    with fake_server(flood) as url:
        line = f'"$1" -m taskcast tail {url} | head -1; exit "${{PIPESTATUS[0]}}"'
        piped = subprocess.run(
            ["bash", "-c", line, "-", sys.executable],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["action"] == "n"
    assert "Broken pipe" not in piped.stderr and "Traceback" not in piped.stderr


def test_sigterm_stops_tail_saying_where_to_resume() -> None:
    async def kept(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"action": "n", "payload": 1, "cursor": "c-1"}))
        await ws.wait_closed()

    with fake_server(kept) as url:
        tail = subprocess.Popen(
            [sys.executable, "-m", "taskcast", "tail", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert tail.stdout is not None
            assert json.loads(tail.stdout.readline())["cursor"] == "c-1"
            tail.send_signal(signal.SIGTERM)
            _, errors = tail.communicate(timeout=15)
        finally:
            tail.kill()
    assert tail.returncode == 0
    assert "taskcast: last cursor: c-1" in errors and "Traceback" not in errors


def test_a_token_is_never_said_in_any_of_its_url_forms() -> None:
    token = "SECRET/TOKEN+123=="
    client = Client("ws://127.0.0.1:1/ws#top", token=token)
    assert "#" not in client.url  # a fragment is never sent (nor makes an invalid request)
    address = client._address()
    assert token not in address  # encoded, "/" too
    said = str(client._stopped(ValueError(f"bad {address} and {token}")))
    assert "SECRET" not in said and said.count("[redacted]") == 2


def test_tail_prints_any_text_and_names_the_last_cursor_it_printed() -> None:
    """A lone surrogate (valid JSON, no terminal's encoding) is printed escaped; the cursor said
    at the end is the last printed frame's, not that of one received and never shown."""

    async def burst(ws: ServerConnection) -> None:
        frames = [f'{{"action":"m","payload":"a\\ud800b","cursor":"c{n}"}}' for n in range(1, 5)]
        for frame in frames:
            await ws.send(frame)
        await ws.wait_closed()

    with fake_server(burst) as url:
        said = cli("tail", url, "--count", "1")
    assert said.returncode == 0, said.stderr
    assert json.loads(said.stdout) == {"action": "m", "payload": "a\ud800b", "cursor": "c1"}
    assert "taskcast: last cursor: c1" in said.stderr
