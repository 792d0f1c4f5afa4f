"""Faults against a private redis-server that the tests stop and start, and a web process killed
with SIGKILL. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from showcase import AnalyticsConsumer, ChatConsumer, ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import LayerUnavailable, SyncPublisher
from taskcast.testing import LiveClient, LiveServer, connect
from web.app import create_app

pytestmark = pytest.mark.anyio


def text(frame: dict[str, Any]) -> Any:
    payload = frame["payload"]
    return payload.get("message", payload.get("event")) if isinstance(payload, dict) else payload


async def publish_until_received(
    publisher: SyncPublisher, consumer: Any, client: LiveClient, payload: str, within: float
) -> float:
    """Publish ``payload`` every 50 ms until ``client`` receives it; returns the seconds taken."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            with contextlib.suppress(LayerUnavailable):
                publisher.publish(consumer, SystemNotify(payload=payload))
            try:
                while True:
                    frame = await client.receive(timeout=0.05)
                    if text(frame) == payload:
                        return time.monotonic() - started
            except AssertionError:  # nothing within 50 ms: publish again
                pass


async def test_a_redis_restart_keeps_the_sockets_and_delivery_resumes(private_redis: Any) -> None:
    settings = Settings(redis_url=private_redis.url, key_prefix="faults")
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(create_app(settings)) as server:
        async with (
            connect(server.ws_url("/ws/chat")) as chat,
            connect(server.ws_url("/ws/reliable")) as reliable,
        ):
            assert text(await chat.receive()) == "📢 Someone joined the chat"
            assert text(await reliable.receive()) == "🔒 Reliable chat connection established!"
            publisher.publish(ReliableChatConsumer, SystemNotify(payload="before"))
            assert text(await reliable.receive()) == "before"
            private_redis.stop()
            private_redis.start()
            for client in (chat, reliable):  # still open, still answering
                await client.send({"action": "ping"}, ref="alive")
                assert (await client.expect("pong"))["ref"] == "alive"
            took = await publish_until_received(publisher, ChatConsumer, chat, "back", 15)
            print(f"pub/sub delivery resumed {took:.2f}s after Redis came back")
            # Reliable: everything published after the restart arrives, after a loss notice
            # (this Redis keeps nothing on disk, so the stream began again).
            for n in range(3):
                publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"after {n}"))
            gap = await reliable.receive()
            assert (gap["action"], gap["payload"]["reason"]) == ("gap", "reset")
            assert [text(await reliable.receive()) for _ in range(3)] == [
                "after 0",
                "after 1",
                "after 2",
            ]


async def test_a_killed_web_process_loses_nothing_that_is_retained(
    web_process: Callable[[dict[str, str]], Any], redis_url: str, key_prefix: str
) -> None:
    web = web_process({"REDIS_URL": redis_url, "TASKCAST_KEY_PREFIX": key_prefix})
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix)
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    cursors = {}
    async with (
        connect(web.ws_url("/ws/reliable")) as reliable,
        connect(web.ws_url("/ws/analytics")) as analytics,
    ):
        cursors["/ws/reliable"] = (await reliable.receive())["cursor"]
        publisher.publish(AnalyticsConsumer, SystemNotify(payload="before"))
        cursors["/ws/analytics"] = (await analytics.receive())["cursor"]
        web.kill()  # SIGKILL: no goodbye to anyone
        for client in (reliable, analytics):
            assert await client.wait_closed() == 1006
    for n in range(3):
        publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"down {n}"))
        publisher.publish(AnalyticsConsumer, SystemNotify(payload=f"down {n}"))
    web.start()  # the same port, a new process
    async with connect(web.ws_url(f"/ws/reliable?cursor={cursors['/ws/reliable']}")) as again:
        got = [text(await again.receive()) for _ in range(4)]
        # Its join notice is transient: sent live, in whatever place the catch-up has reached.
        got.remove("🔒 Reliable chat connection established!")
        assert got == ["down 0", "down 1", "down 2"]
    async with connect(web.ws_url(f"/ws/analytics?cursor={cursors['/ws/analytics']}")) as again:
        assert [text(await again.receive()) for _ in range(3)] == ["down 0", "down 1", "down 2"]
        await again.expect_nothing()


async def test_a_web_process_started_without_redis_becomes_ready_when_it_comes(
    web_process: Callable[[dict[str, str]], Any], tmp_path: Any, private_redis: Any
) -> None:
    private_redis.stop()  # the port is reserved, nothing answers on it
    web = web_process({"REDIS_URL": private_redis.url, "TASKCAST_KEY_PREFIX": "cold"})
    async with httpx.AsyncClient(base_url=f"http://{web.base}") as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["layers"] == dict.fromkeys(
            ["chat", "queue", "notifications", "analytics", "jobs"], False
        )
        async with connect(web.ws_url("/ws/reliable")) as refused:
            assert await refused.wait_closed() == 1013  # try again later
        private_redis.start()
        deadline = time.monotonic() + 15
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "never became ready"
            await asyncio.sleep(0.05)
    async with connect(web.ws_url("/ws/reliable")) as reliable:
        assert text(await reliable.receive()) == "🔒 Reliable chat connection established!"
