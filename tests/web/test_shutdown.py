"""SIGTERM: sockets closed with 1001, and reliable clients resume on another process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest

from showcase import ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import connect

pytestmark = pytest.mark.anyio


async def test_sigterm_closes_with_1001_and_reliable_clients_resume_elsewhere(
    web_process: Callable[[dict[str, str]], Any], settings: Settings
) -> None:
    env = {"REDIS_URL": settings.redis_url, "TASKCAST_KEY_PREFIX": settings.key_prefix}
    first = web_process(env)
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    async with (
        connect(first.ws_url("/ws/chat")) as chat,
        connect(first.ws_url("/ws/reliable")) as reliable,
    ):
        await chat.expect("chat_notification")
        cursor = (await reliable.expect("reliable_chat_notification"))["cursor"]
        publisher.publish(ReliableChatConsumer, SystemNotify(payload="in flight"))
        stopping = asyncio.create_task(asyncio.to_thread(first.stop, signal.SIGTERM))
        assert await chat.wait_closed() == 1001
        codes = []
        async with asyncio.timeout(10):
            while True:  # the reliable socket may get "in flight" before it closes, or not
                try:
                    frame = await reliable.receive()
                    cursor = frame.get("cursor", cursor)
                except Exception as closed:
                    codes.append(getattr(closed, "code", None))
                    break
        assert codes == [1001]
        assert await stopping in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    publisher.publish(ReliableChatConsumer, SystemNotify(payload="while down"))
    second = web_process(env)
    async with connect(second.ws_url(f"/ws/reliable?cursor={cursor}")) as again:
        texts = []
        # Its join notice is transient (sent live, wherever the catch-up has got to).
        while "🔒 Reliable chat connection established!" not in texts or "while down" not in texts:
            frame = await again.receive()
            texts.append(frame["payload"]["message"])
        await again.expect_nothing()
        assert "while down" in texts and texts.count("while down") == 1
        assert texts.count("in flight") <= 1  # never twice; once unless it arrived before the close
