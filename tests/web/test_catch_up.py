"""Catch-ups at their edges, on real Redis and real sockets: any backlog still kept resumes, in
order and once, whatever the socket's queue holds; a socket that fell behind live traffic is paged
in the same way; churn of presence notices evicts nothing; odd cursors are refused, not fatal."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest

from showcase import AnalyticsConsumer, ReliableChatConsumer
from showcase.messages import AnalyticsEvent, AnalyticsPayload, SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import LiveServer, connect, stalled_client
from web.app import create_app

from .rawws import RawReader

pytestmark = pytest.mark.anyio


def event(n: int, pad: int = 0) -> AnalyticsEvent:
    return AnalyticsEvent(payload=AnalyticsPayload(event="n", data={"n": n, "pad": "x" * pad}))


def numbers(frames: list[dict[str, Any]]) -> list[int]:
    return [frame["payload"]["data"]["n"] for frame in frames]


@pytest.mark.parametrize("missed", [1_100, 4_900])
async def test_a_resume_gets_every_message_still_kept_whatever_the_queue_holds(
    server: LiveServer, publisher: SyncPublisher, missed: int
) -> None:
    """The socket's queue holds 1,024 frames; the analytics layer keeps 5,000 messages."""
    url = server.ws_url("/ws/analytics")
    async with connect(url) as first:
        publisher.publish(AnalyticsConsumer, event(0))
        cursor = (await first.expect("analytics_notification"))["cursor"]
    for n in range(1, missed + 1):
        publisher.publish(AnalyticsConsumer, event(n))
    async with connect(f"{url}?cursor={cursor}", timeout=20) as again:
        frames = [await again.receive() for _ in range(missed)]
        assert numbers(frames) == list(range(1, missed + 1))
        assert all(frame["replayed"] for frame in frames)
        publisher.publish(AnalyticsConsumer, event(missed + 1))
        live = await again.expect("analytics_notification")
        assert numbers([live]) == [missed + 1] and "replayed" not in live
        await again.expect_nothing()


async def test_a_socket_that_fell_behind_live_traffic_is_paged_in_not_closed(
    redis_url: str, key_prefix: str
) -> None:
    """A client stops reading while 600 frames of 2 KB go out (its queue holds 16): once it
    reads again it gets every one, in order, once, and then live ones."""
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix, outbox_size=16)
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(create_app(settings)) as server:
        sock = stalled_client(server.host, server.port, "/ws/analytics")
        try:
            async with connect(server.ws_url("/ws/analytics")) as watcher:
                for n in range(600):
                    publisher.publish(AnalyticsConsumer, event(n, pad=2_000))
                # Every frame has reached a reading client: the reader has fanned them all out.
                assert numbers([await watcher.receive() for _ in range(600)]) == list(range(600))
            reader = RawReader(sock)
            got = []
            for _ in range(600):
                text = reader.frame()
                assert text is not None, f"closed with {reader.closed}"
                got.append(json.loads(text))
            publisher.publish(AnalyticsConsumer, event(600))
            live = reader.frame()
            assert live is not None and json.loads(live)["payload"]["data"]["n"] == 600
        finally:
            sock.close()
    assert numbers(got) == list(range(600))


async def test_presence_churn_evicts_nothing_from_the_history(
    server: LiveServer, publisher: SyncPublisher
) -> None:
    """600 connect/close cycles on /ws/reliable (the queue layer keeps 1,000 messages) with 5
    real messages among them: a client resuming from before gets the 5, and no gap."""
    url = server.ws_url("/ws/reliable")
    async with connect(url) as first:
        cursor = (await first.expect("reliable_chat_notification"))["cursor"]
    gate = asyncio.Semaphore(10)

    async def cycle() -> None:
        async with gate, connect(url) as client:
            await client.expect("reliable_chat_notification")

    for n in range(5):
        await asyncio.gather(*(cycle() for _ in range(120)))
        publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"real {n}"))
    async with connect(f"{url}?cursor={cursor}") as again:
        seen = []
        while len([t for t in seen if t.startswith("real")]) < 5:
            frame = await again.receive()
            assert frame["action"] != "gap", frame
            seen.append(frame["payload"]["message"])
        assert [t for t in seen if t.startswith("real")] == [f"real {n}" for n in range(5)]


def cursor_of(*fields: str) -> str:
    raw = "\x1f".join(("analytics", *fields))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "fields",
    [
        ("1700000000.1", f"{2**64}-0", "1"),  # an id past 64 bits
        ("1700000000.1", f"1-{2**64}", "1"),
        ("1700000000.1", "1-0", "-1"),  # a negative number
        ("1700000000.1", "1-0", str(2**63)),  # past Redis's counters
        ("1700000000.1", "1-0", "9" * 30),
        ("not-an-epoch", "1-0", "1"),
        ("1700000000.1" + "9" * 40, "1-0", "1"),
    ],
)
async def test_out_of_range_cursors_get_invalid_cursor_and_live_delivery(
    server: LiveServer, publisher: SyncPublisher, fields: tuple[str, ...]
) -> None:
    async with connect(server.ws_url(f"/ws/analytics?cursor={cursor_of(*fields)}")) as client:
        error = await client.expect("error")
        assert error["payload"]["code"] == "invalid_cursor"
        publisher.publish(AnalyticsConsumer, event(7))
        assert numbers([await client.expect("analytics_notification")]) == [7]
        await client.expect_nothing()


@pytest.mark.parametrize("entry_id", ["{now}-0", "18446744073709551615-18446744073709551615"])
async def test_a_position_past_the_newest_entry_is_a_reset_then_live(
    server: LiveServer, publisher: SyncPublisher, entry_id: str
) -> None:
    """An id from the future (forged, or a Redis restored from an older snapshot) cannot be
    placed: a reset notice, then live delivery; never silence until the clock passes it."""
    async with connect(server.ws_url("/ws/analytics")) as first:
        publisher.publish(AnalyticsConsumer, event(0))
        cursor = (await first.expect("analytics_notification"))["cursor"]
    epoch = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("\x1f")[1]
    future = entry_id.format(now=int(time.time() * 1000) + 3_600_000)
    async with connect(server.ws_url(f"/ws/analytics?cursor={cursor_of(epoch, future, '1')}")) as c:
        gap = await c.expect("gap")
        assert gap["payload"]["reason"] == "reset"
        publisher.publish(AnalyticsConsumer, event(1))
        assert numbers([await c.expect("analytics_notification")]) == [1]


async def test_an_entry_no_reader_can_decode_is_passed_over(
    server: LiveServer, publisher: SyncPublisher, client: Any, key_prefix: str
) -> None:
    """Written by another version or a tool: readers and catch-ups read past it (a gap where
    it was), without spinning on it."""
    stream = f"{key_prefix}:analytics:{{analytics}}:stream"
    async with connect(server.ws_url("/ws/analytics")) as live:
        publisher.publish(AnalyticsConsumer, event(0))
        cursor = (await live.expect("analytics_notification"))["cursor"]
        for _ in range(120):  # more than a page
            await client.xadd(stream, {"junk": "1"})
        publisher.publish(AnalyticsConsumer, event(1))
        assert numbers([await live.expect("analytics_notification")]) == [1]
    async with connect(server.ws_url(f"/ws/analytics?cursor={cursor}")) as back:
        assert numbers([await back.expect("analytics_notification")]) == [1]
        await back.expect_nothing()


async def test_presence_notices_leave_room_for_replies(redis_url: str, key_prefix: str) -> None:
    """A client that stops reading while others come and go: its queue fills with presence
    notices only up to the mark kept for replies, so its next ping is answered, not a 1013."""
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix, outbox_size=16)
    with LiveServer(create_app(settings)) as server:
        sock = stalled_client(server.host, server.port, "/ws/reliable")
        try:
            url = server.ws_url("/ws/reliable")
            for _ in range(100):
                async with connect(url) as other:
                    await other.expect("reliable_chat_notification")
            # A masked ping frame from the stalled client, then it reads.
            payload = b'{"action":"ping","ref":"late"}'
            mask = b"\x01\x02\x03\x04"
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
            reader = RawReader(sock)
            seen = []
            while (text := reader.frame()) is not None:
                seen.append(json.loads(text))
                if seen[-1].get("ref") == "late":
                    break
            assert reader.closed is None and seen[-1]["action"] == "pong"
        finally:
            sock.close()
