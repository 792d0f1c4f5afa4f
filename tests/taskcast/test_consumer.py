from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, Literal

import pytest

from taskcast import (
    AddressRules,
    BaseMessage,
    ConnectionRefused,
    Consumer,
    ConsumerOptions,
    DefinitionError,
    InMemoryLayer,
    InvalidAddress,
    Publisher,
    event_handler,
    ws_handler,
)
from taskcast.protocol import close_reason
from taskcast.testing import Closed, Communicator

pytestmark = pytest.mark.anyio


class Say(BaseMessage):
    action: Literal["say"] = "say"
    payload: str


class Said(BaseMessage):
    action: Literal["said"] = "said"
    payload: str


class Tick(BaseMessage):
    action: Literal["tick"] = "tick"
    payload: int


class Tock(BaseMessage):
    action: Literal["tock"] = "tock"
    payload: int


class Crash(BaseMessage):
    action: Literal["crash"] = "crash"
    payload: None = None


class Room(Consumer):
    layer_alias = "main"
    groups = ("room",)
    renders: ClassVar[list[str]] = []
    disconnects: ClassVar[list[int]] = []

    @ws_handler
    async def say(self, message: Say) -> Said | None:
        if message.payload == "quiet":
            return None
        await self.broadcast(Said(payload=message.payload), exclude_self=message.payload == "x")
        return Said(payload="sent")

    @ws_handler
    async def crash(self, message: Crash) -> None:
        raise RuntimeError("secret internal detail")

    @event_handler
    async def tick(self, event: Tick) -> Said:
        Room.renders.append(f"tick:{self.member_id}")
        return Said(payload=f"tick {event.payload}")

    @event_handler(per_connection=True)
    async def tock(self, event: Tock) -> Said:
        Room.renders.append(f"tock:{self.member_id}")
        return Said(payload=f"tock for {self.member_id[:4]}")

    async def on_disconnect(self, code: int) -> None:
        Room.disconnects.append(code)


@pytest.fixture
def layer() -> InMemoryLayer:
    Room.renders.clear()
    Room.disconnects.clear()
    return InMemoryLayer()


def room(layer: InMemoryLayer, **options: int) -> Communicator:
    return Communicator(Room.as_asgi({"main": layer}, ConsumerOptions(**options)), "/room")


async def test_a_reply_carries_the_requests_ref(layer: InMemoryLayer) -> None:
    async with room(layer) as client:
        await client.send(Say(payload="quiet"), ref="q")  # no reply, no frame
        await client.send({"action": "ping"}, ref="p-1")
        assert await client.expect("pong") == {"action": "pong", "payload": None, "ref": "p-1"}


async def test_a_broadcast_reaches_every_member_including_the_sender(layer: InMemoryLayer) -> None:
    async with room(layer) as a, room(layer) as b:
        await a.send(Say(payload="hello"), ref="1")
        said, reply = await a.expect_all("said", "said")
        assert said == {"action": "said", "payload": "hello"}  # broadcasts carry no ref
        assert reply == {"action": "said", "payload": "sent", "ref": "1"}
        assert (await b.expect("said"))["payload"] == "hello"


async def test_exclude_self_skips_only_the_sender(layer: InMemoryLayer) -> None:
    async with room(layer) as a, room(layer) as b:
        await a.send(Say(payload="x"))
        assert (await a.expect("said"))["payload"] == "sent"
        assert (await b.expect("said"))["payload"] == "x"
        await a.expect_nothing()


async def test_a_shared_event_handler_runs_once_for_all_local_members(
    layer: InMemoryLayer,
) -> None:
    publisher = Publisher({"main": layer})
    async with room(layer) as a, room(layer) as b, room(layer) as c:
        await publisher.publish(Room, Tick(payload=7))
        for client in (a, b, c):
            assert (await client.expect("said"))["payload"] == "tick 7"
        assert len(Room.renders) == 1


async def test_a_per_connection_event_handler_runs_for_each_member(layer: InMemoryLayer) -> None:
    publisher = Publisher({"main": layer})
    async with room(layer) as a, room(layer) as b:
        await publisher.publish(Room, Tock(payload=1))
        first, second = await a.expect("said"), await b.expect("said")
        assert first["payload"] != second["payload"]
        assert len(Room.renders) == 2


async def test_leaving_removes_the_member_and_runs_the_hook(layer: InMemoryLayer) -> None:
    async with room(layer):
        assert layer.members("room") == 1
    assert layer.members("room") == 0
    assert Room.disconnects == [1000]


async def test_a_failing_handler_answers_internal_error_and_keeps_the_socket(
    layer: InMemoryLayer, caplog: pytest.LogCaptureFixture
) -> None:
    async with room(layer) as client:
        await client.send(Crash(), ref="c")
        frame = await client.expect("error")
        assert frame["payload"]["code"] == "internal_error"
        assert frame["ref"] == "c"
        assert "secret" not in str(frame)
        await client.send({"action": "ping"})
        await client.expect("pong")
    assert "secret internal detail" in caplog.text  # logged with its traceback
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.ERROR)


async def test_a_frame_over_the_limit_closes_with_1009(layer: InMemoryLayer) -> None:
    async with room(layer, max_frame_bytes=100) as client:
        await client.send(Say(payload="é" * 40))  # 80 chars of payload, more than 100 bytes
        assert await client.wait_closed() == 1009
    assert layer.members("room") == 0


async def test_a_binary_frame_over_the_limit_closes_with_1009(layer: InMemoryLayer) -> None:
    async with room(layer, max_frame_bytes=10) as client:
        await client.send_bytes(b"0123456789")
        assert (await client.expect("error"))["payload"]["code"] == "invalid_frame"
        await client.send_bytes(b"0123456789+")
        assert await client.wait_closed() == 1009


class Guarded(Consumer):
    async def authenticate(self) -> None:
        if self.websocket.query_params.get("token") != "open sesame":
            raise ConnectionRefused(4401, "no token")


async def test_authenticate_can_refuse_with_a_close_code() -> None:
    async with Communicator(Guarded.as_asgi(), "/", query_string="token=nope") as client:
        assert await client.wait_closed() == 4401
    async with Communicator(Guarded.as_asgi(), "/", query_string="token=open+sesame") as client:
        await client.send({"action": "ping"})
        await client.expect("pong")


class Flaky(Consumer):
    async def authenticate(self) -> None:
        raise RuntimeError("auth backend down")


async def test_a_failing_authenticate_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    async with Communicator(Flaky.as_asgi(), "/") as client:
        assert await client.wait_closed() == 1011
    assert "auth backend down" in caplog.text


class Broken(Room):
    async def on_connect(self) -> None:
        raise RuntimeError("boom")


async def test_a_failing_connect_hook_closes_with_1011_and_leaves_the_groups(
    layer: InMemoryLayer, caplog: pytest.LogCaptureFixture
) -> None:
    async with Communicator(Broken.as_asgi({"main": layer}), "/") as client:
        assert await client.wait_closed() == 1011
    assert layer.members("room") == 0
    assert "boom" in caplog.text


async def test_cancellation_leaves_the_groups(layer: InMemoryLayer) -> None:
    client = room(layer)
    await client.__aenter__()
    assert layer.members("room") == 1
    assert client._task is not None
    client._task.cancel()  # what a server shutdown does to a connection's task
    with pytest.raises(asyncio.CancelledError):
        await client._task
    assert layer.members("room") == 0


async def test_a_refused_handshake_raises_closed() -> None:
    class Shut(Consumer):
        async def run(self) -> None:
            await self.websocket.close(1008)

    with pytest.raises(Closed) as closed:
        async with Communicator(Shut.as_asgi(), "/"):
            pass
    assert closed.value.code == 1008


def test_a_group_the_route_cannot_fill_is_a_definition_error() -> None:
    class Lost(Consumer):
        layer_alias = "main"
        groups = ("room:{room}",)

    with pytest.raises(DefinitionError, match="needs room"):
        Lost.as_asgi({"main": InMemoryLayer()}, route="/ws/room/{room_name}")
    Lost.as_asgi({"main": InMemoryLayer()}, route="/ws/room/{room}")


@pytest.mark.parametrize("param", ["user", "connection"])
def test_a_route_may_not_name_the_user_or_the_connection(param: str) -> None:
    class Inbox(Consumer):
        layer_alias = "main"
        groups = ("user:{user}",)

    with pytest.raises(DefinitionError, match=f"{param} may not be a path parameter"):
        Inbox.as_asgi({"main": InMemoryLayer()}, route=f"/ws/inbox/{{{param}}}")


def test_address_rules() -> None:
    rules = AddressRules()
    assert rules.check("id", 5) == "5"  # a route's {id:int}
    for good in ("lobby", "नमस्ते", "cafe\u0301", "a.b~c-d_e", "x" * 64):
        assert rules.check("room", good) == good
    for bad in ("", "..", "\u3164", "a b", "a:b", "a/b", "x" * 65, "😀", True, None):
        with pytest.raises(InvalidAddress):
            rules.check("room", bad)
    strict = AddressRules(pattern="[a-z]+", max_chars=8)
    assert strict.check("room", "abc") == "abc"
    with pytest.raises(InvalidAddress, match="pattern"):
        strict.check("room", "ABC")


def test_a_close_reason_fits_a_close_frame() -> None:
    assert close_reason("ok") == "ok"
    cut = close_reason("é" * 100)  # 200 bytes
    assert len(cut.encode()) <= 123 and cut == "é" * 61
