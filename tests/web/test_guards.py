"""Origin checks, token authentication and rate limits, end to end."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from showcase.settings import LOOPBACK_HOSTS, Settings
from taskcast.testing import Closed, LiveServer, connect
from web.app import create_app

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
        assert "ref" not in frame
        await client.send({"action": "ping", "ref": "r-over"})  # a request fails at once
        frame = await client.expect("error")
        assert (frame["payload"]["code"], frame["ref"]) == ("rate_limited", "r-over")
        with pytest.raises(Closed) as closed:
            for _ in range(40):
                await client.send({"action": "ping"})
            while True:
                await client.receive()
        assert closed.value.code == 1008


@pytest.mark.parametrize(
    "origin", ["https://{host}", "ws://{host}", "foo://{host}", "http://{hostname}:1"]
)
async def test_the_own_origin_is_scheme_host_and_port(server: LiveServer, origin: str) -> None:
    host = f"{server.host}:{server.port}"
    with pytest.raises(InvalidStatus, match="403"):
        async with connect(
            server.ws_url("/ws/chat"), origin=origin.format(host=host, hostname=server.host)
        ):
            pass


async def test_only_allowed_hosts_are_answered(redis_url: str, key_prefix: str) -> None:
    """DNS rebinding: a page on evil.example points its name at this server; the browser then
    sends Host: evil.example with Origin http://evil.example, same-origin to it."""
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix, allowed_hosts=["127.0.0.1"])
    with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient() as http:
            evil = await http.get(f"{server.url}/healthz", headers={"Host": "evil.example"})
            assert evil.status_code == 400
            assert (await http.get(f"{server.url}/healthz")).status_code == 200
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(
                b"GET /ws/chat HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            assert sock.recv(64).startswith(b"HTTP/1.1 400"), "a rebound Host was answered"
        async with connect(server.ws_url("/ws/chat")) as client:
            await client.expect("chat_notification")


def test_a_server_beyond_loopback_must_name_its_hosts() -> None:
    with pytest.raises(ValueError, match="TASKCAST_ALLOWED_HOSTS"):
        Settings(host="0.0.0.0").trusted_hosts()
    assert Settings(host="0.0.0.0", allowed_hosts=["a.example"]).trusted_hosts() == [
        "a.example",
        *LOOPBACK_HOSTS,
    ]
    # On loopback, no other name: a page on any site could point one at this machine.
    assert Settings(host="127.0.0.1").trusted_hosts() == list(LOOPBACK_HOSTS)
