"""Bad input, end to end: an error frame in the one shape, the socket stays open, and the other
clients of the endpoint see nothing of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette

from taskcast.testing import LiveClient, LiveServer, connect

pytestmark = pytest.mark.anyio

ENDPOINTS = {
    "/ws/chat": "chat",
    "/ws/reliable": "reliable_chat",
    "/ws/notifications": "notification",
    "/ws/analytics": "analytics",
}


MARKERS = {
    "/ws/chat": lambda mark: {"action": "chat", "payload": {"message": mark}},
    "/ws/reliable": lambda mark: {"action": "reliable_chat", "payload": {"message": mark}},
    "/ws/notifications": lambda mark: {"action": "notification", "payload": {"message": mark}},
    "/ws/analytics": lambda mark: {"action": "analytics", "payload": {"event": mark}},
}


async def broadcast_marker(sender: LiveClient, path: str, mark: str) -> None:
    await sender.send(MARKERS[path](mark))


@asynccontextmanager
async def pair(server: LiveServer, path: str) -> AsyncIterator[tuple[LiveClient, LiveClient]]:
    """Two settled clients of one endpoint. Each broadcasts a marker, which its consumer handles
    only after its join notice went out; a layer delivers a group's broadcasts in order, so once
    both have both markers, every join notice is behind them."""
    async with connect(server.ws_url(path)) as a, connect(server.ws_url(path)) as b:
        await broadcast_marker(a, path, "settled-a")
        await broadcast_marker(b, path, "settled-b")
        for client in (a, b):
            seen: set[str] = set()
            while len(seen) < 2:
                text = str(await client.receive())
                seen.update(mark for mark in ("settled-a", "settled-b") if mark in text)
        yield a, b


async def assert_untouched(a: LiveClient, b: LiveClient, path: str) -> None:
    """``a`` still answers and broadcasts; ``b``'s next frame is that broadcast: nothing caused
    by ``a``'s bad frame reached it (it would have been broadcast first)."""
    await a.send({"action": "ping"}, ref="alive")
    assert (await a.expect("pong"))["ref"] == "alive"
    await broadcast_marker(a, path, "still-here")
    for client in (a, b):
        frame = await client.receive()
        assert frame["action"] != "error" and "still-here" in str(frame), frame


def error(frame: dict[str, object], code: str) -> dict[str, object]:
    assert frame["action"] == "error"
    payload = frame["payload"]
    assert isinstance(payload, dict)
    assert payload["code"] == code
    assert isinstance(payload["detail"], str) and payload["detail"]
    assert set(payload) <= {"code", "detail", "errors"}
    return payload


BAD_TEXT = [
    ("{not json", "invalid_json"),
    ("[1, 2, 3]", "invalid_message"),
    ("null", "invalid_message"),
    ('{"payload": {"message": "x"}}', "invalid_message"),
    ('{"action": null}', "invalid_message"),
    ('{"action": "dance"}', "unknown_action"),
    ('{"action": "system_notify", "payload": "spoofed"}', "unknown_action"),
    ('{"action": "system_periodic_notify", "payload": "spoofed"}', "unknown_action"),
    ('{"action": "ping", "payload": {"unexpected": true}}', "invalid_payload"),
    ("[" * 5000 + "]" * 5000, "invalid_json"),
    # Unpaired surrogates: valid JSON, but no reply or broadcast could be UTF-8 encoded.
    (r'{"action": "ping", "ref": "\ud800"}', "invalid_json"),
    (r'{"action": "chat", "payload": {"message": "a\udc00"}}', "invalid_json"),
]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(("text", "code"), BAD_TEXT)
async def test_bad_text_frames_get_error_frames(
    server: LiveServer, path: str, text: str, code: str
) -> None:
    async with pair(server, path) as (a, b):
        await a.send_text(text)
        error(await a.receive(), code)
        await assert_untouched(a, b, path)


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_binary_frame_gets_an_error_frame(server: LiveServer, path: str) -> None:
    async with pair(server, path) as (a, b):
        await a.send_bytes(b'{"action": "ping"}')
        error(await a.receive(), "invalid_frame")
        await assert_untouched(a, b, path)


@pytest.mark.parametrize(("path", "action"), ENDPOINTS.items())
async def test_an_invalid_payload_lists_its_errors_and_keeps_the_ref(
    server: LiveServer, path: str, action: str
) -> None:
    async with pair(server, path) as (a, b):
        await a.send({"action": action, "payload": {"message": 42, "event": []}}, ref="r7")
        frame = await a.receive()
        assert frame["ref"] == "r7"
        payload = error(frame, "invalid_payload")
        assert payload["errors"], payload
        for item in payload["errors"]:
            assert set(item) == {"loc", "msg", "type"}
            assert item["loc"][0] == "payload"
        await assert_untouched(a, b, path)


async def test_an_event_only_action_names_what_clients_may_send(server: LiveServer) -> None:
    path = "/ws/notifications"
    async with pair(server, path) as (a, b):
        await a.send({"action": "system_periodic_notify", "payload": "x"}, ref="e")
        frame = await a.receive()
        payload = error(frame, "unknown_action")
        assert "sent by the server" in payload["detail"]
        assert "accepted: notification, ping" in payload["detail"]
        assert frame["ref"] == "e"
        await assert_untouched(a, b, path)


async def test_a_failing_handler_gets_internal_error_and_is_logged(
    server: LiveServer,
    app: Starlette,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = "/ws/chat"
    async with pair(server, path) as (a, b):

        async def broken(*args: object, **kwargs: object) -> None:
            raise ConnectionError("redis://secret-host:6379 is unreachable")

        monkeypatch.setattr(app.state.layers["chat"], "group_send", broken)
        await a.send({"action": "chat", "payload": {"message": "x"}}, ref="boom")
        frame = await a.receive()
        assert frame["ref"] == "boom"
        error(frame, "internal_error")
        assert "secret" not in str(frame) and "Traceback" not in str(frame)
        monkeypatch.undo()
        await assert_untouched(a, b, path)
    assert "secret-host" in caplog.text
    assert any(
        record.exc_info and "handle_chat" in record.getMessage() for record in caplog.records
    )


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_frame_over_the_limit_closes_that_socket_with_1009(
    server: LiveServer, path: str
) -> None:
    async with pair(server, path) as (a, b):
        await a.send({"action": "chat", "payload": {"message": "x" * 70_000}})
        assert await a.wait_closed() == 1009
        await b.send({"action": "ping"}, ref="still")
        while (frame := await b.receive()).get("ref") != "still":
            assert frame["action"] != "error"  # leave notices are fine; errors are not
