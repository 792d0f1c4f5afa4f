"""Reaching one room, one user, one connection: the seed's system echo and room chat, per-user
notifications, and a send to one socket, on real Redis and real sockets, across two web
processes (this test's live server and a `python -m web` of its own)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio

from showcase import NotificationConsumer, RoomConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings, TokenGrant
from taskcast import PublishError, SyncPublisher
from taskcast.testing import LiveClient, LiveServer, connect
from web.app import create_app

pytestmark = pytest.mark.anyio

ALICE, BOB, ANON = "alice-token", "bob-token", "anonymous-token"


@pytest.fixture
def users(settings: Settings) -> Settings:
    """The test's settings with two users: alice and bob, each token opening every path."""
    tokens = {ALICE: {"user": "alice"}, BOB: {"user": "bob", "paths": None}, ANON: None}
    return Settings(redis_url=settings.redis_url, key_prefix=settings.key_prefix, ws_tokens=tokens)


@pytest.fixture
def two(users: Settings, web_process: Callable[[dict[str, str]], Any]) -> Iterator[tuple[Any, Any]]:
    """Two web processes on the same Redis and key prefix: this test's (a live server in a
    thread) and a `python -m web` of its own."""
    tokens = {
        t: g.model_dump() if isinstance(g, TokenGrant) else g for t, g in users.ws_tokens.items()
    }
    env = {
        "REDIS_URL": users.redis_url,
        "TASKCAST_KEY_PREFIX": users.key_prefix,
        "TASKCAST_WS_TOKENS": json.dumps(tokens),
    }
    other = web_process(env)
    with LiveServer(create_app(users)) as one:
        yield one, other


def payload(frame: dict[str, Any]) -> Any:
    return frame["payload"]


async def test_system_echo(server: LiveServer) -> None:
    async with connect(server.ws_url("/ws/system")) as client:
        frame = await client.expect("system_echo")
        assert payload(frame) == {"message": "🔧 System: Connection established!"}
        await client.send({"action": "user_message", "payload": {"message": "hi"}}, ref="r1")
        frame = await client.expect("system_echo")
        assert frame == {
            "action": "system_echo",
            "payload": {"message": "🔧 System Echo: hi"},
            "ref": "r1",
        }
        await client.send({"action": "ping"})
        await client.expect("pong")
        await client.send({"action": "user_message", "payload": {"message": "  "}})
        assert payload(await client.expect("error"))["code"] == "invalid_payload"


async def room_joined(client: LiveClient, others: list[LiveClient], room: str) -> None:
    """The joiner hears nothing of its own arrival; each other member hears it."""
    for other in others:
        frame = await other.expect("room_notification")
        assert payload(frame) == {"message": f"🚪 Someone joined room '{room}'", "room_name": room}
    await client.expect_nothing(within=0.3)


async def test_rooms_are_isolated_across_processes(two: tuple[Any, Any]) -> None:
    one, other = two
    async with connect(one.ws_url("/ws/room/lobby?token=" + ALICE)) as a:
        await a.expect_nothing(within=0.3)  # nobody else was there
        async with connect(other.ws_url("/ws/room/lobby?token=" + BOB)) as b:
            await room_joined(b, [a], "lobby")
            async with connect(other.ws_url("/ws/room/kitchen?token=" + BOB)) as c:
                await c.expect_nothing(within=0.3)
                await b.send(
                    {"action": "room_chat", "payload": {"message": "hello", "room_name": "kitchen"}}
                )
                expected = {"message": "💬 hello", "room_name": "lobby"}
                assert payload(await a.expect("room_notification")) == expected
                assert payload(await b.expect("room_notification")) == expected  # sender too
                await c.send({"action": "room_chat", "payload": {"message": "soup"}})
                kitchen = {"message": "💬 soup", "room_name": "kitchen"}
                assert payload(await c.expect("room_notification")) == kitchen
                await a.expect_nothing(within=0.3)
                await b.expect_nothing(within=0.1)
        left = {"message": "👋 Someone left room 'lobby'", "room_name": "lobby"}
        assert payload(await a.expect("room_notification")) == left


@pytest.mark.parametrize(
    "room",
    ["a" * 65, "semi;colon", "sp%20ace", "new%0Aline", "...", "%E3%85%A4", "a:b", "%F0%9F%98%80"],
)
async def test_a_bad_room_name_is_refused_before_joining(
    server: LiveServer, client: Any, settings: Settings, room: str
) -> None:
    async with connect(server.ws_url(f"/ws/room/{room}")) as bad:
        assert await bad.wait_closed() == 4400
    channels = await client.pubsub_channels(f"{settings.key_prefix}*")
    assert not [c for c in channels if b"room:" in c]


async def test_a_user_is_reached_on_every_socket_and_nobody_else_is(
    two: tuple[Any, Any], users: Settings
) -> None:
    one, other = two
    path = "/ws/notifications?token="
    async with (
        connect(one.ws_url(path + ALICE)) as tab1,
        connect(other.ws_url(path + ALICE)) as tab2,
        connect(one.ws_url(path + BOB)) as bob,
        connect(other.ws_url(path + ANON)) as anonymous,
    ):
        for client in (tab1, tab2, bob, anonymous):  # the connect notices, everyone's
            while True:
                try:
                    await client.expect("notification_broadcast", timeout=0.5)
                except AssertionError:
                    break
        publisher = SyncPublisher.from_configs(users.layer_configs(), users.address_rules())
        publisher.publish(
            NotificationConsumer, SystemNotify(payload="for alice"), to={"user": "alice"}
        )
        for tab in (tab1, tab2):
            frame = await tab.expect("notification_broadcast")
            assert payload(frame) == {"type": "system", "message": "for alice"}
            await tab.expect_nothing(within=0.3)  # once, not once per group
        await bob.expect_nothing(within=0.1)
        await anonymous.expect_nothing(within=0.1)
        # Everyone, still: the constant group.
        publisher.publish(NotificationConsumer, SystemNotify(payload="all"))
        for client in (tab1, tab2, bob, anonymous):
            assert payload(await client.expect("notification_broadcast"))["message"] == "all"


async def test_a_room_is_reached_from_a_publisher(server: LiveServer, settings: Settings) -> None:
    publisher = SyncPublisher.from_configs(settings.layer_configs(), settings.address_rules())
    async with (
        connect(server.ws_url("/ws/room/lobby")) as lobby,
        connect(server.ws_url("/ws/room/attic")) as attic,
    ):
        await lobby.expect_nothing(within=0.3)  # attic's arrival is not the lobby's news
        publisher.publish(
            RoomConsumer, SystemNotify(payload="doors close"), to={"room_name": "attic"}
        )
        frame = await attic.expect("room_notification")
        assert payload(frame) == {"message": "doors close", "room_name": "attic"}
        await lobby.expect_nothing(within=0.3)


def test_publishers_refuse_what_no_socket_could_receive(settings: Settings) -> None:
    publisher = SyncPublisher.from_configs(settings.layer_configs(), settings.address_rules())
    event = SystemNotify(payload="x")
    with pytest.raises(PublishError, match="no group addressed by no values"):
        publisher.publish(RoomConsumer, event)
    with pytest.raises(PublishError, match="room_name may only contain"):
        publisher.publish(RoomConsumer, event, to={"room_name": "a b"})
    with pytest.raises(PublishError, match="no group addressed by room"):
        publisher.publish(RoomConsumer, event, to={"room": "lobby"})
    with pytest.raises(PublishError, match="does not join 'chat_room'"):
        publisher.publish(RoomConsumer, event, groups=["chat_room"])
    publisher.publish(RoomConsumer, event, groups=["room:lobby"])


def test_users_in_token_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="user may only contain"):
        Settings(ws_tokens={"t": {"user": "a b"}})
    settings = Settings(ws_tokens={"t": ["/ws/chat"], "u": None, "v": {"user": "carol"}})
    assert settings.token_authenticator() is not None


async def test_rooms_leave_nothing_behind(server: LiveServer, settings: Settings) -> None:
    store = redis.asyncio.Redis.from_url(settings.redis_url)
    for n in range(50):
        async with connect(server.ws_url(f"/ws/room/r{n}")):
            pass
    async with asyncio.timeout(5):  # the process unsubscribes as the last member leaves
        while channels := await store.pubsub_channels(f"{settings.key_prefix}*"):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert channels == []
    assert await store.keys(f"{settings.key_prefix}*") == []
    await store.aclose()


async def test_metrics_name_the_route_not_the_room(server: LiveServer) -> None:
    for n in range(20):
        async with connect(server.ws_url(f"/ws/room/m{n}")) as client:
            await client.send({"action": "room_chat", "payload": {"message": "x"}})
            await client.expect("room_notification")
    async with httpx.AsyncClient(base_url=server.url) as http:
        text = (await http.get("/metrics")).text
    rooms = [line for line in text.splitlines() if "/ws/room/" in line]
    assert rooms, text
    assert all('endpoint="/ws/room/{room_name}"' in line for line in rooms), rooms
    assert len(rooms) <= 4, rooms  # one series per metric, whatever the number of rooms


async def test_token_rules_name_routes_or_paths(settings: Settings) -> None:
    tokens = {"any-room": ["/ws/room/{room_name}"], "lobby-only": ["/ws/room/lobby"]}
    own = Settings(redis_url=settings.redis_url, key_prefix=settings.key_prefix, ws_tokens=tokens)
    with LiveServer(create_app(own)) as live:
        for token, path, code in [
            ("any-room", "/ws/room/attic", None),
            ("lobby-only", "/ws/room/lobby", None),
            ("lobby-only", "/ws/room/attic", 4403),
            ("any-room", "/ws/chat", 4403),
        ]:
            async with connect(live.ws_url(f"{path}?token={token}")) as client:
                if code is None:
                    await client.send({"action": "ping"})
                    await client.expect("pong")
                else:
                    assert await client.wait_closed() == code


@pytest.mark.parametrize("room", ["नमस्ते", "สวัสดี", "café", "cafe\u0301", "r_1.2~x-y"])
async def test_names_in_any_script_are_rooms(server: LiveServer, room: str) -> None:
    from urllib.parse import quote

    async with connect(server.ws_url(f"/ws/room/{quote(room)}")) as client:
        await client.send({"action": "room_chat", "payload": {"message": "hi"}})
        frame = await client.expect("room_notification")
        assert frame["payload"] == {"message": "💬 hi", "room_name": room}


def test_token_paths_that_open_nothing_stop_the_app(settings: Settings) -> None:
    def app_with(paths: list[str]) -> Any:
        tokens = {"t": paths}
        own = Settings(
            redis_url=settings.redis_url, key_prefix=settings.key_prefix, ws_tokens=tokens
        )
        return create_app(own)

    for bad in (["/ws/room/lobby/"], ["/ws/room/caf%C3%A9"], ["/ws/chatt"]):
        with pytest.raises(ValueError, match="is not a WebSocket endpoint"):
            app_with(bad)
    app_with(["/ws/room/{room_name}", "/ws/room/lobby", "/ws/room/café", "/ws/chat"])
