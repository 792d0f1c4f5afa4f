"""A Redis that stalls longer than the clients' 5 s reply timeout, while clients send frames to
the showcase's endpoints: every frame reaches every member once.

The stall is a private redis-server stopped with SIGSTOP and resumed with SIGCONT (this Redis
refuses DEBUG SLEEP: ``enable-debug-command`` is off and cannot be turned on at run time). A
stopped Redis behaves as a sleeping one: the kernel still accepts connections and buffers what
clients write, and when it resumes it runs every command it received, including those whose
client timed out and closed the connection meanwhile. So a command retried after its timeout runs
twice unless it is a no-op the second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from showcase.settings import Settings
from taskcast.layers.redis_common import Keys
from taskcast.testing import Frame, LiveClient, LiveServer, connect
from web.app import create_app

pytestmark = pytest.mark.anyio

ENDPOINTS = {
    # path: (the client's action, the broadcast's action, the broadcast's text)
    "/ws/reliable": ("reliable_chat", "reliable_chat_notification", "📨 {}"),
    "/ws/analytics": ("analytics", "analytics_notification", "📊 Analytics: {}"),
    "/ws/chat": ("chat", "chat_notification", "💬 {}"),
}
JOIN_NOTICES = {
    "/ws/chat": "📢 Someone joined the chat",
    "/ws/reliable": "🔒 Reliable chat connection established!",
}
STALL = 7.0  # seconds: between one and two of the clients' 5 s reply timeouts
STREAMS = {"/ws/reliable": ("queue", "reliable_chat"), "/ws/analytics": ("analytics", "analytics")}


def text(frame: Frame) -> Any:
    payload = frame["payload"]
    return payload.get("message", payload.get("event")) if isinstance(payload, dict) else payload


def frame_for(path: str, value: str) -> dict[str, Any]:
    action = ENDPOINTS[path][0]
    if action == "analytics":
        return {"action": action, "payload": {"event": value}}
    return {"action": action, "payload": {"message": value}}


def expected(path: str, value: str) -> tuple[str, str]:
    _, action, template = ENDPOINTS[path]
    return action, template.format(value)


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


@contextlib.contextmanager
def stopped(process: Any) -> Iterator[None]:
    """Redis stalled: SIGSTOP, and certainly stopped (the kernel says so) before this yields;
    resumed on the way out, whatever happened."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5
        while state(process.pid) not in ("T", "t"):
            assert time.monotonic() < deadline, "redis-server did not stop"
            time.sleep(0.005)
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


async def pair(stack: contextlib.AsyncExitStack, server: LiveServer, path: str) -> list[LiveClient]:
    """A sender and a watcher on ``path``, past the join notices."""
    sender = await stack.enter_async_context(connect(server.ws_url(path)))
    notice = JOIN_NOTICES.get(path)
    if notice is not None:
        assert text(await sender.receive()) == notice
    watcher = await stack.enter_async_context(connect(server.ws_url(path)))
    if notice is not None:
        assert text(await watcher.receive()) == notice
        assert text(await sender.receive()) == notice  # the watcher's
    return [sender, watcher]


async def until_quiet(client: LiveClient, wanted: tuple[str, str], within: float) -> list[Frame]:
    """Every frame ``client`` receives until ``wanted`` has come and then nothing for a second."""
    got: list[Frame] = []
    deadline = time.monotonic() + within
    while True:
        seen = any((f["action"], text(f)) == wanted for f in got)
        wait = 1.0 if seen else max(0.0, deadline - time.monotonic())
        try:
            got.append(await client.receive(timeout=wait))
        except AssertionError:
            assert seen, f"{wanted!r} did not arrive within {within}s; got {got!r}"
            return got


def evalsha_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def warm_up(clients: dict[str, list[LiveClient]]) -> None:
    """Once through every path, so that the layers' scripts are loaded (a call made during the
    stall then runs when Redis resumes, rather than failing with NOSCRIPT) and every handler
    has returned."""
    for path, (sender, _) in clients.items():
        await sender.send(frame_for(path, "warm"))
    for path, members in clients.items():
        for client in members:
            frame = await client.receive()
            assert (frame["action"], text(frame)) == expected(path, "warm")
    for sender, _ in clients.values():
        # A socket's frames are handled in turn: its pong says that the handler of the one
        # before has returned (the analytics one hands the event to a task after it has
        # broadcast it), so that nothing of it is left waiting on Redis during the stall.
        await sender.send({"action": "ping"}, ref="done")
        assert (await sender.expect("pong"))["ref"] == "done"


async def test_a_redis_stall_longer_than_the_timeout_delivers_each_frame_once(
    private_redis: Any,
) -> None:
    settings = Settings(redis_url=private_redis.url, key_prefix="stall")
    look = redis.Redis.from_url(private_redis.url, socket_timeout=10)
    with contextlib.closing(look), LiveServer(create_app(settings)) as server:
        async with contextlib.AsyncExitStack() as stack:
            clients = {path: await pair(stack, server, path) for path in ENDPOINTS}
            await warm_up(clients)
            before = evalsha_calls(look)

            unique = {path: f"stall-{uuid.uuid4().hex}" for path in ENDPOINTS}
            with stopped(private_redis.process):
                for path, (sender, _) in clients.items():
                    await sender.send(frame_for(path, unique[path]))
                # How long Redis stays away: past a call's timeout, so that every call made
                # now times out and a retry of it is sent, and short of the retry's, so that it
                # still waits when Redis resumes and runs both.
                await asyncio.sleep(STALL)

            received = await asyncio.gather(
                *(
                    until_quiet(client, expected(path, unique[path]), within=15)
                    for path, members in clients.items()
                    for client in members
                )
            )
            ran = evalsha_calls(look) - before  # before the sockets leave (their notices)
        members = [(path, role) for path in ENDPOINTS for role in ("sender", "watcher")]
        for (path, role), frames in zip(members, received, strict=True):
            wanted = expected(path, unique[path])
            got = [
                (f["action"], f["payload"]["code"] if f["action"] == "error" else text(f))
                for f in frames
            ]
            if (path, role) == ("/ws/chat", "sender"):
                # Its publish timed out and was not retried: it was told so, before it came.
                assert got == [("error", "unavailable"), wanted]
            elif role == "sender":
                # Its append may have been refused too, but not twice, and kept once anyway.
                assert got in ([wanted], [("error", "unavailable"), wanted]), (path, got)
            else:
                assert got == [wanted], (path, got)

        # Each reliable send ran twice in Redis (the call that timed out, when Redis resumed,
        # and redis-py's retry of it), and its key made the second a no-op: kept once.
        assert ran == 2 * len(STREAMS)
        for path, (alias, group) in STREAMS.items():
            stream = Keys(f"{settings.key_prefix}:{alias}").stream(group)
            entries = look.xrange(stream)
            kept = [e for _, e in entries if unique[path].encode() in e[b"d"]]
            assert len(kept) == 1, (stream, entries)
