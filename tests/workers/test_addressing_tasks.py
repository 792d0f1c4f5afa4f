"""Tasks reach one user and one connection: `celery call` and the HTTP trigger to one user's
sockets, and a Celery task sending to the one socket that asked for the work."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from celery import Celery

from showcase.messages import SystemNotify
from showcase.seed_messages import SystemEchoMessage, TextPayload, UserMessage
from showcase.settings import Settings
from taskcast import Consumer, SyncPublisher, event_handler, ws_handler
from taskcast.testing import LiveClient, LiveServer, connect
from web.app import create_app

pytestmark = pytest.mark.anyio

ALICE, BOB, SECRET = "alice-token", "bob-token", "trigger-secret"


@pytest.fixture
def settings(redis_url: str, key_prefix: str) -> Settings:
    tokens = {ALICE: {"user": "alice"}, BOB: {"user": "bob"}}
    return Settings(
        redis_url=redis_url, key_prefix=key_prefix, ws_tokens=tokens, broadcast_token=SECRET
    )


async def settled(client: LiveClient) -> LiveClient:
    """Past the connect notices (everyone's), until the socket is quiet."""
    while True:
        try:
            await client.expect("notification_broadcast", timeout=0.5)
        except AssertionError:
            return client


async def test_one_user_from_celery_call_and_from_the_http_trigger(
    worker: None, server: LiveServer, settings: Settings
) -> None:
    path = "/ws/notifications?token="
    async with (
        connect(server.ws_url(path + ALICE)) as tab1,
        connect(server.ws_url(path + ALICE)) as tab2,
        connect(server.ws_url(path + BOB)) as bob,
    ):
        for client in (tab1, tab2, bob):
            await settled(client)
        command = [sys.executable, "-m", "celery", "-A", "workers", "call"]
        command += ["workers.tasks.send_notification", "-a", '["psst"]', "-k", '{"user": "alice"}']
        env = {**os.environ, "REDIS_URL": settings.redis_url}
        env["TASKCAST_KEY_PREFIX"] = settings.key_prefix
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        for tab in (tab1, tab2):
            frame = await tab.expect("notification_broadcast", timeout=15)
            assert frame["payload"] == {"type": "system", "message": "psst"}
        await bob.expect_nothing(within=0.5)
        async with httpx.AsyncClient(base_url=server.url) as http:
            headers = {"Authorization": f"Bearer {SECRET}"}
            body = {"target": "notifications", "message": "for bob", "user": "bob"}
            response = await http.post("/api/broadcast", json=body, headers=headers)
            assert response.status_code == 202, response.text
            frame = await bob.expect("notification_broadcast", timeout=15)
            assert frame["payload"]["message"] == "for bob"
            await tab1.expect_nothing(within=0.5)
            await tab2.expect_nothing(within=0.1)
            for bad in ({**body, "user": "b o b"}, {**body, "target": "chat"}):
                response = await http.post("/api/broadcast", json=bad, headers=headers)
                assert response.status_code == 422, response.text


class Asker(Consumer):
    """Hands each question to a task, with this socket's address; the answer comes back to
    this socket alone."""

    layer_alias = "notifications"
    groups = ("asker:{connection}",)

    @ws_handler(summary="Ask")
    async def handle_user_message(self, message: UserMessage) -> None:
        tasks = self.websocket.app.state.tasks
        await tasks.send("test.answer", {"question": message.payload.message, "to": self.address})

    @event_handler(summary="The answer")
    async def system_notify(self, event: SystemNotify) -> SystemEchoMessage:
        return SystemEchoMessage(payload=TextPayload(message=event.payload))


@pytest.fixture
def asker_server(settings: Settings, celery_app: Celery) -> Iterator[LiveServer]:
    publisher = SyncPublisher.from_configs(settings.layer_configs(), settings.address_rules())

    @celery_app.task(name="test.answer")
    def answer(question: str, to: str) -> None:
        event = SystemNotify(payload=f"answer to {question}")
        publisher.publish(Asker, event, to={"connection": to})

    with LiveServer(create_app(settings, consumers={"/ws/asker": Asker})) as live:
        yield live


async def test_a_task_sends_to_the_one_connection_that_asked(
    asker_server: LiveServer, worker: None
) -> None:
    url = asker_server.ws_url("/ws/asker?token=" + ALICE)
    async with connect(url) as first, connect(url) as second:  # same user, two sockets
        await first.send(UserMessage.model_validate({"payload": {"message": "one"}}))
        frame = await first.expect("system_echo", timeout=15)
        assert frame["payload"] == {"message": "answer to one"}
        await second.expect_nothing(within=0.5)
        await second.send(UserMessage.model_validate({"payload": {"message": "two"}}))
        assert (await second.expect("system_echo", timeout=15))["payload"]["message"] == (
            "answer to two"
        )
        await first.expect_nothing(within=0.5)
