"""Per-process limits on what clients hold: open sockets, silent peers, file descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from showcase.settings import Settings
from taskcast.testing import Closed, LiveServer, connect, raw_client
from web.app import create_app

pytestmark = pytest.mark.anyio


async def test_past_the_connection_cap_a_handshake_is_closed_1013(
    redis_url: str, key_prefix: str
) -> None:
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix, max_connections=3)
    with LiveServer(create_app(settings)) as server:
        url = server.ws_url("/ws/analytics")
        async with connect(url), connect(url), connect(url) as third:
            await third.send({"action": "ping"}, ref="3")
            assert (await third.expect("pong"))["ref"] == "3"
            async with connect(url) as fourth:
                assert await fourth.wait_closed() == 1013
        async with connect(url) as again:  # room again once they left
            await again.send({"action": "ping"}, ref="again")
            assert (await again.expect("pong"))["ref"] == "again"


async def test_many_handshakes_at_once_cannot_overshoot_the_cap(
    redis_url: str, key_prefix: str
) -> None:
    """Each handshake awaits Redis (the join) before its socket counts as open: the cap must
    count handshakes in flight, or 100 at once all pass a cap of 10."""
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix, max_connections=10)
    with LiveServer(create_app(settings)) as server:
        url = server.ws_url("/ws/reliable")
        async with contextlib.AsyncExitStack() as stack:
            clients = await asyncio.gather(
                *(stack.enter_async_context(connect(url)) for _ in range(100))
            )

            async def fate(client: Any) -> str:
                try:
                    await client.send({"action": "ping"}, ref="p")
                    while (await client.receive()).get("ref") != "p":
                        pass
                    return "open"
                except Closed as closed:
                    return f"closed {closed.code}"
                except ConnectionClosed as closed:  # refused before the ping went out
                    return f"closed {closed.rcvd.code if closed.rcvd else 1006}"

            fates = await asyncio.gather(*(fate(c) for c in clients))
        assert fates.count("open") == 10, sorted(fates)
        assert fates.count("closed 1013") == 90, sorted(fates)
        async with httpx.AsyncClient(base_url=server.url) as http:  # health checks still answer
            assert (await http.get("/healthz")).status_code == 200


def limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open-files limit")


async def test_a_peer_that_stops_answering_pings_is_closed_and_descriptors_are_raised(
    web_process: Callable[[dict[str, str]], Any], redis_url: str, key_prefix: str
) -> None:
    web = web_process(
        {
            "REDIS_URL": redis_url,
            "TASKCAST_KEY_PREFIX": key_prefix,
            "TASKCAST_WS_PING_INTERVAL": "0.5",
            "TASKCAST_WS_PING_TIMEOUT": "0.5",
        }
    )
    soft, hard = limits(web.process.pid)
    assert soft == hard, (soft, hard)
    host, port = web.base.split(":")
    silent = raw_client(host, int(port), "/ws/analytics")  # completes the handshake, then nothing
    silent.settimeout(0.2)
    started, closed = time.monotonic(), False
    while not closed and time.monotonic() - started < 10:
        try:
            closed = silent.recv(65536) == b""  # pings (unanswered), a close, then the end
        except TimeoutError:
            await asyncio.sleep(0.05)
        except OSError:
            closed = True
    silent.close()
    assert closed, "a peer that never answered a ping was kept open"


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before it closed ``sock`` within ``seconds``; None if it did not."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except TimeoutError:
        return None
    except OSError:
        pass
    return got


def test_silent_slow_and_oversized_request_heads_are_not_held(
    web_process: Callable[[dict[str, str]], Any], redis_url: str, key_prefix: str
) -> None:
    web = web_process(
        {
            "REDIS_URL": redis_url,
            "TASKCAST_KEY_PREFIX": key_prefix,
            "TASKCAST_HANDSHAKE_TIMEOUT": "1",
        }
    )
    host, port = web.base.split(":")
    silent = socket.create_connection((host, int(port)))
    slow = socket.create_connection((host, int(port)))
    slow.sendall(b"GET /ws/chat HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    huge = socket.create_connection((host, int(port)))
    huge.sendall(
        b"GET /ws/analytics?cursor=" + b"A" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    started = time.monotonic()
    assert (closed_within(huge, 5) or b"").startswith(b"HTTP/1.1 431")
    assert time.monotonic() - started < 1.0  # promptly, not at the deadline
    assert closed_within(silent, 5) == b""
    assert closed_within(slow, 5) == b""
    for sock in (silent, slow, huge):
        sock.close()
    assert httpx.get(f"http://{web.base}/healthz", timeout=5).status_code == 200


def test_a_body_sent_with_its_head_is_not_head_and_a_trickling_one_is_cut(
    web_process: Callable[[dict[str, str]], Any], redis_url: str, key_prefix: str
) -> None:
    """curl and http.client send a POST's head and body in one write: only the head counts
    toward the head limit. The longest message in its most escaped JSON (4,096 emoji as
    surrogate escapes, ~49 KB) is accepted; a body that trickles in is cut at the deadline."""
    web = web_process(
        {
            "REDIS_URL": redis_url,
            "TASKCAST_KEY_PREFIX": key_prefix,
            "TASKCAST_BROADCAST_TOKEN": "s3cret",
            "TASKCAST_HANDSHAKE_TIMEOUT": "1",
        }
    )
    host, port = web.base.split(":")
    body = json.dumps({"target": "chat", "message": "😀" * 4096}).encode()  # ASCII-escaped
    assert len(body) > 48_000
    head = (
        f"POST /api/broadcast HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer s3cret\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body)  # one write
        answer = closed_within(sock, 10) or b""
    assert answer.startswith(b"HTTP/1.1 202"), answer[:200]
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body[:100])  # and never the rest
        started = time.monotonic()
        answer = closed_within(sock, 10) or b""
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 5
