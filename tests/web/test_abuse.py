"""Abuse: generated frames of every kind at every endpoint, and connection churn. Each frame is
answered as DESIGN.md says, the server stays up, and nothing is left behind."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from showcase.settings import Settings
from taskcast.testing import Closed, LiveServer, connect
from web.app import create_app

ENDPOINTS = ["/ws/chat", "/ws/reliable", "/ws/notifications", "/ws/analytics"]
ACTIONS = ["ping", "chat", "reliable_chat", "notification", "analytics", "system_notify", "error"]
CODES = {
    "invalid_json", "invalid_frame", "invalid_message", "unknown_action", "invalid_payload",
    "rate_limited", "internal_error", "unavailable",
}  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(ACTIONS) | st.text(max_size=20) | json_values,
        "payload": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "message": json_values,
                "event": json_values,
                "type": json_values,
                "data": json_values,
            },
        ),
        "ref": st.text(max_size=200) | json_values,
    },
).map(json.dumps)
frames = st.one_of(
    envelopes,
    json_values.map(json.dumps),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.binary(max_size=300),
    st.integers(65_537, 80_000).map(
        lambda n: json.dumps({"action": "chat", "payload": {"message": "x" * n}})
    ),
)


@pytest.fixture(scope="module")
def abused(redis_url: str) -> Iterator[tuple[LiveServer, Starlette, str]]:
    prefix = "tctest:abuse"
    app = create_app(Settings(redis_url=redis_url, key_prefix=prefix, rate_per_second=None))
    with LiveServer(app) as server:
        yield server, app, prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def tasks_in(app: Starlette) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return asyncio.run_coroutine_threadsafe(count(), app.state.loop).result(5)


async def answer(url: str, frame: str | bytes) -> None:
    async with connect(url) as client:
        if isinstance(frame, bytes):
            await client.send_bytes(frame)
        else:
            await client.send_text(frame)
        await client.send({"action": "ping"}, ref="probe")
        try:
            while (reply := await client.receive()).get("ref") != "probe" or reply[
                "action"
            ] != "pong":
                assert isinstance(reply.get("action"), str), reply
                if reply["action"] == "error":
                    assert reply["payload"]["code"] in CODES, reply
                    assert "Traceback" not in reply["payload"]["detail"]
        except Closed as closed:
            size = len(frame if isinstance(frame, bytes) else frame.encode())
            assert closed.code == 1009 and size > 65_536, (closed.code, size)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same frames on every run: CI must not flake on a new draw
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(frame=frames, endpoint=st.sampled_from(ENDPOINTS))
def test_any_frame_is_answered_and_the_server_lives(
    abused: tuple[LiveServer, Starlette, str], frame: str | bytes, endpoint: str
) -> None:
    server, _, _ = abused
    asyncio.run(answer(server.ws_url(endpoint), frame))


def test_after_the_abuse_nothing_is_left_behind(abused: tuple[LiveServer, Starlette, str]) -> None:
    server, app, _ = abused
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert_clean(app, baseline=tasks_in(app))


def assert_clean(app: Starlette, baseline: int) -> None:
    assert len(app.state.connections) == 0
    for alias, layer in app.state.layers.items():
        assert not layer._groups, alias  # no group keeps a member
        assert not getattr(layer, "_streams", {}), alias
    # A server-side task may still be finishing after its client returned (a loaded machine):
    # a leak stays, a straggler goes.
    deadline = time.monotonic() + 5
    while tasks_in(app) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tasks_in(app) <= baseline


async def churn(server: LiveServer, cycles: int) -> None:
    gate = asyncio.Semaphore(20)

    async def once(n: int) -> None:
        async with gate, connect(server.ws_url(ENDPOINTS[n % 4])) as client:
            await client.send({"action": "ping"})
            while (await client.receive())["action"] != "pong":
                pass

    await asyncio.gather(*(once(n) for n in range(cycles)))


def test_connection_churn_leaves_no_member_subscription_reader_or_task(
    abused: tuple[LiveServer, Starlette, str], redis_url: str
) -> None:
    server, app, prefix = abused
    asyncio.run(churn(server, 40))  # warm: the readers exist from here on
    baseline = tasks_in(app)
    asyncio.run(churn(server, 5000))
    assert_clean(app, baseline)
    client = redis.Redis.from_url(redis_url)
    for channel in (f"{prefix}:chat:chat_room", f"{prefix}:notifications:notifications"):
        # The last UNSUBSCRIBE is written as the last socket leaves; Redis confirms it later.
        deadline = time.monotonic() + 5
        while dict(client.pubsub_numsub(channel))[channel.encode()] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert dict(client.pubsub_numsub(channel))[channel.encode()] == 0


def test_clients_that_reset_during_the_join_leave_no_member(
    redis_url: str, key_prefix: str
) -> None:
    """The join waits on Redis before the handshake is answered: a client that resets then must
    not leave a member behind (it would hold a queue and keep its group's reader forever)."""
    app = create_app(Settings(redis_url=redis_url, key_prefix=key_prefix))
    with LiveServer(app) as server:
        for n in range(200):
            sock = socket.create_connection((server.host, server.port))
            sock.sendall(
                f"GET {ENDPOINTS[n % 4]} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST, at once
        # The server takes the 200 handshakes in its own time: wait until nothing has been
        # open or joined for a whole second (a leftover member stays; a late handshake passes).
        deadline, quiet_since = time.monotonic() + 15, time.monotonic()
        while time.monotonic() - quiet_since < 1.0 and time.monotonic() < deadline:
            if len(app.state.connections) or any(
                layer._groups for layer in app.state.layers.values()
            ):
                quiet_since = time.monotonic()
            time.sleep(0.02)
        assert_clean(app, baseline=tasks_in(app))
