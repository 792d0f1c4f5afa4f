"""A Redis restored from an older snapshot: the stream keeps its epoch but its numbers go back, so
they would be reused. Live members and resuming clients get a ``reset`` gap, never a silent one."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from showcase import ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import LiveServer, connect
from web.app import create_app

pytestmark = pytest.mark.anyio


def text(frame: dict[str, Any]) -> str:
    return str(frame["payload"].get("message") or frame["payload"].get("reason"))


async def test_history_that_went_backwards_is_a_reset_gap(private_redis: Any) -> None:
    settings = Settings(redis_url=private_redis.url, key_prefix="restored")
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(create_app(settings)) as server:
        url = server.ws_url("/ws/reliable")
        async with connect(url) as live:
            await live.expect("reliable_chat_notification")  # its join notice (not kept)
            for n in (1, 2):
                publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"m{n}"))
            assert [text(await live.receive()) for _ in range(2)] == ["m1", "m2"]
            redis.Redis.from_url(private_redis.url).save()  # the snapshot: m1, m2
            for n in (3, 4):
                publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"m{n}"))
            last = [await live.receive() for _ in range(2)]
            assert [text(frame) for frame in last] == ["m3", "m4"]
            cursor = last[-1]["cursor"]
            private_redis.stop()  # SIGKILL: m3 and m4 are lost with it
            private_redis.start()  # from the snapshot: the stream's numbers are back at 2
            await live.send({"action": "ping"}, ref="still")
            assert (await live.expect("pong"))["ref"] == "still"
            publisher.publish(ReliableChatConsumer, SystemNotify(payload="m5"))  # numbered 3
            gap = await live.expect("gap")
            assert gap["payload"]["reason"] == "reset"
            assert text(await live.receive()) == "m5"
        async with connect(f"{url}?cursor={cursor}") as back:
            # Presence notices (its own join, the first client's leave) are transient: they come
            # whenever they come. What is kept comes in order: the reset, then m5.
            presence = {"🔒 Reliable chat connection established!", "🚪 Left reliable chat!"}
            kept: list[dict[str, Any]] = []
            while len(kept) < 2:
                frame = await back.receive()
                if frame["payload"].get("message") not in presence:
                    kept.append(frame)
            assert [f["action"] for f in kept] == ["gap", "reliable_chat_notification"]
            assert kept[0]["payload"]["reason"] == "reset" and text(kept[1]) == "m5"


async def test_a_history_lost_with_redis_is_never_replayed_from_memory(private_redis: Any) -> None:
    """Pages a web process keeps for catch-ups belong to one life of the stream: after Redis
    lost everything, a resume gets the reset and nothing of the old life."""
    settings = Settings(redis_url=private_redis.url, key_prefix="lost")
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(create_app(settings)) as server:
        url = server.ws_url("/ws/reliable")
        async with connect(url) as early:
            start = (await early.expect("reliable_chat_notification"))["cursor"]  # no stream yet
        async with connect(url) as live:
            await live.expect("reliable_chat_notification")
            for n in range(250):
                publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"old {n}"))
            last = [await live.receive() for _ in range(250)][-1]["cursor"]
        async with connect(f"{url}?cursor={start}") as back:  # fills the page cache
            got = []
            while len(got) < 250:
                frame = await back.receive()
                if frame["payload"].get("message", "").startswith("old"):
                    got.append(frame)
        private_redis.stop()
        private_redis.start()  # empty
        async with connect(f"{url}?cursor={last}") as again:
            # Its join notice is transient: it may come before the catch-up's first notice.
            while (frame := await again.receive())["action"] != "gap":
                assert frame["payload"]["message"] == "🔒 Reliable chat connection established!"
            assert frame["payload"]["reason"] == "reset"
            publisher.publish(ReliableChatConsumer, SystemNotify(payload="new"))
            while (frame := await again.receive())["payload"].get("message") != "new":
                assert not frame["payload"].get("message", "").startswith("old"), frame
