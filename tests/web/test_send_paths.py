"""The two ways a frame leaves: stepped eagerly on uvicorn's own send, or awaited anywhere else
(another server, a middleware that wraps ``send``). Both deliver the same frames, in order."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from showcase import ChatConsumer, ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.eager import TESTED, steppable_send
from taskcast.testing import LiveServer, connect
from web.app import create_app

pytestmark = pytest.mark.anyio


class WrapsSend:
    """A middleware of the kind users add: it wraps ``send`` in a function of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted(message: Message) -> None:
            self.sent += 1
            await send(message)

        await self.app(scope, receive, counted)


def writers(app: Starlette) -> list[bool]:
    return [consumer._writer.eager for consumer in app.state.connections._open]


@pytest.mark.parametrize("wrapped", [False, True], ids=["eager", "awaited"])
async def test_both_send_paths_deliver_every_frame_in_order(
    settings: Settings, wrapped: bool
) -> None:
    app = create_app(settings)
    served: ASGIApp = WrapsSend(app) if wrapped else app
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    with LiveServer(served) as server:
        async with (
            connect(server.ws_url("/ws/chat")) as chat,
            connect(server.ws_url("/ws/reliable")) as reliable,
        ):
            await chat.expect("chat_notification")
            await reliable.expect("reliable_chat_notification")
            assert writers(app) == [not wrapped] * 2
            for n in range(200):
                publisher.publish(ChatConsumer, SystemNotify(payload=f"chat {n}"))
                publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"kept {n}"))
            chats = [(await chat.receive())["payload"]["message"] for _ in range(200)]
            kept = [(await reliable.receive())["payload"]["message"] for _ in range(200)]
            assert chats == [f"chat {n}" for n in range(200)]
            assert kept == [f"kept {n}" for n in range(200)]
            await chat.send({"action": "ping"}, ref="r")
            assert (await chat.expect("pong"))["ref"] == "r"
            await chat.expect_nothing()
    if wrapped:
        assert isinstance(served, WrapsSend) and served.sent > 400


def test_only_sends_known_to_be_steppable_are_stepped() -> None:
    async def plain(message: Message) -> None: ...

    assert not steppable_send(plain)
    assert not steppable_send(print)


def test_the_tested_versions_are_the_ones_pyproject_declares() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    declared = pyproject["tool"]["taskcast"]["eager-send"]
    assert {name: (low[2:], high[1:]) for name, (low, high) in declared.items()} == TESTED
