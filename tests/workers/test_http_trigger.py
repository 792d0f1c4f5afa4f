"""POST /api/broadcast: a bearer token from settings; 202 and a task id, 401, 422; 404 when off."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import SecretStr

from showcase.settings import Settings
from taskcast.testing import LiveServer, connect
from web.app import create_app

from ..conftest import RedisServer

pytestmark = pytest.mark.anyio
TOKEN = "s3cret-token"


@pytest.fixture
def guarded(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(
        create_app(settings.model_copy(update={"broadcast_token": SecretStr(TOKEN)}))
    ) as live:
        yield live


async def test_a_valid_request_enqueues_the_task_and_the_clients_get_it(
    worker: None, guarded: LiveServer
) -> None:
    async with connect(guarded.ws_url("/ws/notifications")) as client, httpx.AsyncClient() as http:
        await client.expect("notification_broadcast")  # its own connect notice
        response = await http.post(
            f"{guarded.url}/api/broadcast",
            json={"target": "notifications", "message": "deploy finished"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 202
        assert response.json()["task"] == "workers.tasks.send_notification"
        assert len(response.json()["task_id"]) == 36
        frame = await client.expect("notification_broadcast")
        assert frame["payload"] == {"type": "system", "message": "deploy finished"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
async def test_a_missing_or_wrong_token_is_401(
    guarded: LiveServer, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{guarded.url}/api/broadcast", json={"target": "chat", "message": "x"}, headers=headers
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        b'{"target": "everyone", "message": "x"}',
        b'{"target": "chat"}',
        b'{"target": "chat", "message": ""}',
        b'{"target": "chat", "message": "   "}',  # blank: what a socket's chat frame refuses too
        b'{"target": "chat", "message": "' + b"x" * 4097 + b'"}',
        b'{"target": "chat", "message": "x", "extra": 1}',
        b"not json",
    ],
)
async def test_a_bad_body_is_422(guarded: LiveServer, body: bytes) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{guarded.url}/api/broadcast",
            content=body,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_without_a_token_configured_the_endpoint_is_off(server: LiveServer) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/api/broadcast",
            json={"target": "chat", "message": "x"},
            headers={"Authorization": "Bearer anything"},
        )
    assert response.status_code == 404


@pytest.mark.parametrize("empty", ["", "  "])
async def test_an_empty_token_leaves_the_endpoint_off(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, empty: str
) -> None:
    """compose's ${VAR:-} used to pass "": then "Authorization: Bearer " was accepted."""
    monkeypatch.setenv("TASKCAST_BROADCAST_TOKEN", empty)
    app = create_app(Settings(redis_url=settings.redis_url, key_prefix=settings.key_prefix))
    with LiveServer(app) as server:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{server.url}/api/broadcast",
                json={"target": "chat", "message": "x"},
                headers={"Authorization": "Bearer"},  # and nothing after it
            )
    assert response.status_code == 404


async def test_a_large_body_is_413_before_it_is_read(guarded: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off while it streams
        for _ in range(1000):
            yield b"x" * 1024

    async with httpx.AsyncClient() as http:
        declared = await http.post(
            f"{guarded.url}/api/broadcast", content=b"x" * 400_000, headers=headers
        )
        streamed = await http.post(
            f"{guarded.url}/api/broadcast", content=chunks(), headers=headers
        )
    assert declared.status_code == streamed.status_code == 413


async def test_with_the_broker_away_it_is_503_not_a_traceback(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    away = settings.model_copy(
        update={"broadcast_token": SecretStr(TOKEN), "celery_broker_url": "redis://127.0.0.1:9/0"}
    )
    with LiveServer(create_app(away)) as server:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{server.url}/api/broadcast",
                json={"target": "chat", "message": "x"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            )
    assert response.status_code == 503 and "unavailable" in response.json()["detail"]
    assert not any(record.exc_info for record in caplog.records)


async def test_a_message_is_the_same_message_on_every_way_in(
    worker: None, guarded: LiveServer
) -> None:
    """4,096 characters pass over HTTP and over a socket; 4,097 fail on both."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(guarded.ws_url("/ws/chat")) as client, httpx.AsyncClient() as http:
        await client.expect("chat_notification")
        longest = "y" * 4096
        ok = await http.post(
            f"{guarded.url}/api/broadcast",
            json={"target": "chat", "message": longest},
            headers=headers,
        )
        assert ok.status_code == 202
        assert (await client.expect("chat_notification"))["payload"]["message"] == longest
        await client.send({"action": "chat", "payload": {"message": longest + "y"}}, ref="long")
        refused = await client.expect("error")
        assert (refused["ref"], refused["payload"]["code"]) == ("long", "invalid_payload")


@pytest.mark.parametrize(
    "body",
    [
        {"target": "analytics", "message": "x(y)"},  # the task would refuse the name
        {"target": "analytics", "message": "e" * 101},
        {"target": "chat", "message": "\u200b\u200b"},  # nothing one can see
        {"target": "chat", "message": "a\x00b"},
    ],
)
async def test_what_a_task_would_refuse_is_422_here(
    guarded: LiveServer, body: dict[str, str]
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{guarded.url}/api/broadcast", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 422, response.text


async def test_with_the_broker_stalled_it_is_503_in_seconds(
    settings: Settings, private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    stalled = settings.model_copy(
        update={"broadcast_token": SecretStr(TOKEN), "celery_broker_url": private_redis.url}
    )
    assert private_redis.process is not None
    with LiveServer(create_app(stalled)) as server:
        os.kill(private_redis.process.pid, signal.SIGSTOP)  # accepts, never answers
        try:
            async with httpx.AsyncClient() as http:
                started = time.monotonic()
                response = await http.post(
                    f"{server.url}/api/broadcast",
                    json={"target": "chat", "message": "x"},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=60,
                )
                took = time.monotonic() - started
        finally:
            os.kill(private_redis.process.pid, signal.SIGCONT)
    assert response.status_code == 503, response.text
    assert took < 15, took
    assert not any(record.exc_info for record in caplog.records)
