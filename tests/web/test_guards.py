"""Origin checks, token authentication and rate limits, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from taskcast.testing import Closed, LiveServer, connect
from web.app import create_app
from web.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def guarded(settings: Settings, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    changes: dict[str, Any] = request.param
    with LiveServer(create_app(settings.model_copy(update=changes))) as live:
        yield live


@pytest.mark.parametrize(
    "guarded", [{"allowed_origins": ["https://partner.example"]}], indirect=True
)
async def test_a_handshake_from_a_foreign_origin_is_refused(guarded: LiveServer) -> None:
    url = guarded.ws_url("/ws/chat")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    for origin in (f"http://{guarded.host}:{guarded.port}", "https://partner.example", None):
        async with connect(url, origin=origin) as client:  # own host, allowed, no browser
            await client.expect("chat_notification")


TOKENS = {"ws_tokens": {"everything": None, "chat-only": ["/ws/chat"]}}


@pytest.mark.parametrize("guarded", [TOKENS], indirect=True)
@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/ws/chat", 4401),
        ("/ws/chat?token=wrong", 4401),
        ("/ws/reliable?token=chat-only", 4403),
    ],
)
async def test_missing_bad_or_unsuited_tokens_are_refused(
    guarded: LiveServer, path: str, code: int
) -> None:
    async with connect(guarded.ws_url(path)) as client:
        assert await client.wait_closed() == code


@pytest.mark.parametrize("guarded", [TOKENS], indirect=True)
async def test_good_tokens_open_their_endpoints(guarded: LiveServer) -> None:
    async with connect(guarded.ws_url("/ws/chat?token=chat-only")) as client:
        await client.expect("chat_notification")
    cookie = {"Cookie": "taskcast_token=everything"}
    async with connect(guarded.ws_url("/ws/reliable"), additional_headers=cookie) as client:
        await client.expect("reliable_chat_notification")


@pytest.mark.parametrize("guarded", [{"rate_per_second": 2.0, "rate_burst": 3}], indirect=True)
async def test_a_client_over_its_rate_gets_errors_then_is_closed(guarded: LiveServer) -> None:
    async with connect(guarded.ws_url("/ws/analytics")) as client:
        for _ in range(3):  # the burst
            await client.send({"action": "ping"})
            await client.expect("pong")
        await client.send({"action": "ping"})
        frame = await client.expect("error")
        assert frame["payload"]["code"] == "rate_limited"
        with pytest.raises(Closed) as closed:
            for _ in range(40):
                await client.send({"action": "ping"})
            while True:
                await client.receive()
        assert closed.value.code == 1008
