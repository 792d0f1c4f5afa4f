"""A client that stops reading fills only its own queue: the others get everything, in order."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from showcase import ChatConsumer, ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import LiveServer, connect, stalled_client
from web.app import create_app

pytestmark = pytest.mark.anyio

PADDING = "x" * 20_000
COUNT = 600  # 12 MB per client: far more than the socket buffers between server and client


def read_frames(sock: socket.socket) -> tuple[list[bytes], int | None]:
    """Every frame the server sent until it closed: the text frames' payloads and the close code."""
    data = b""
    sock.settimeout(5)
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except TimeoutError:
        pass
    frames, code, at = [], None, 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            (length,) = struct.unpack("!H", data[at : at + 2])
            at += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[at : at + 8])
            at += 8
        payload, at = data[at : at + length], at + length
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0]
            break
        frames.append(payload)
    return frames, code


@pytest.mark.parametrize(
    ("path", "consumer"), [("/ws/chat", ChatConsumer), ("/ws/reliable", ReliableChatConsumer)]
)
async def test_a_stalled_client_does_not_hold_up_the_others(
    redis_url: str, key_prefix: str, path: str, consumer: type
) -> None:
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix, outbox_size=64)
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(create_app(settings)) as server:
        stalled = stalled_client(server.host, server.port, path)
        async with connect(server.ws_url(path)) as fast:
            await fast.send({"action": "ping"}, ref="ready")
            while (await fast.receive()).get("ref") != "ready":
                pass
            for n in range(COUNT):
                publisher.publish(consumer, SystemNotify(payload=f"{n} {PADDING}"))
            got = []
            async with asyncio.timeout(30):
                while len(got) < COUNT:
                    text = (await fast.receive())["payload"]["message"]
                    if text.endswith(PADDING):
                        got.append(int(text.split()[0]))
            assert got == list(range(COUNT))
            await fast.send({"action": "ping"}, ref="alive")
            while (await fast.receive()).get("ref") != "alive":
                pass
        frames, code = await asyncio.to_thread(read_frames, stalled)
        stalled.close()
        marker = PADDING.encode()
        numbers = [int(f.split(b'"message":"', 1)[1].split()[0]) for f in frames if marker in f]
        assert numbers == sorted(numbers)  # what it got came in order
        if path == "/ws/reliable":
            # Not closed: what it had no room for was paged in from its position once it read.
            assert code is None
            assert numbers == list(range(COUNT))
        else:
            assert 0 < len(numbers) < COUNT  # its oldest frames were dropped, not queued forever
            assert numbers[-1] == COUNT - 1  # and the newest kept
