from __future__ import annotations

import threading
from typing import Literal

import pytest

from taskcast import (
    BaseMessage,
    Consumer,
    InMemoryLayer,
    PingMessage,
    Publisher,
    PublishError,
    SyncPublisher,
    event_handler,
)
from taskcast.testing import Communicator

pytestmark = pytest.mark.anyio


class Alert(BaseMessage):
    action: Literal["alert"] = "alert"
    payload: str


class Stream(Consumer):
    layer_alias = "main"
    groups = ("a", "b")

    @event_handler
    async def alert(self, event: Alert) -> Alert:
        return event


class NoLayer(Consumer):
    pass


async def test_publish_reaches_the_consumers_groups() -> None:
    layer = InMemoryLayer()
    async with Communicator(Stream.as_asgi({"main": layer})) as client:
        await Publisher({"main": layer}).publish(Stream, Alert(payload="hi"), groups=["b"])
        assert await client.expect("alert") == {"action": "alert", "payload": "hi"}
        await client.expect_nothing()


@pytest.mark.parametrize(
    ("consumer", "event", "groups", "match"),
    [
        (Stream, PingMessage(), None, r"does not handle PingMessage \(accepts: Alert\)"),
        (Stream, Alert(payload="x"), ["c"], "does not join 'c'"),
        (NoLayer, Alert(payload="x"), None, "has no layer"),
    ],
)
async def test_publish_refuses_what_the_consumer_would_not_handle(
    consumer: type[Consumer], event: BaseMessage, groups: list[str] | None, match: str
) -> None:
    layer = InMemoryLayer()
    with pytest.raises(PublishError, match=match):
        await Publisher({"main": layer}).publish(consumer, event, groups=groups)
    with pytest.raises(PublishError, match=match):
        SyncPublisher({"main": layer.sync_sender()}).publish(consumer, event, groups=groups)


async def test_sync_publish_from_another_thread() -> None:
    layer = InMemoryLayer()
    publisher = SyncPublisher({"main": layer.sync_sender()})
    async with Communicator(Stream.as_asgi({"main": layer})) as client:
        thread = threading.Thread(target=publisher.publish, args=(Stream, Alert(payload="t")))
        thread.start()
        thread.join(5)
        frames = await client.expect_all("alert", "alert")  # one per group: a and b
        assert {f["payload"] for f in frames} == {"t"}
