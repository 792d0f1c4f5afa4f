"""taskcast.client and ``python -m taskcast`` against a real server (``python -m web``) that is
stopped and started again mid-stream: nothing lost, nothing repeated, one gap where messages were
trimmed; refused tokens; requests matched to replies under concurrency; bounded backoff."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import serve

from showcase import ReliableChatConsumer
from showcase.messages import ReliableChatNotificationMessage, SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.client import Client, Frame, Refused, RequestFailed, State, connect
from taskcast.testing import next_frames, resuming
from tests.conftest import free_port

pytestmark = pytest.mark.anyio

JOINED = "🔒 Reliable chat connection established!"


class States:
    """The client's state changes, as they come."""

    def __init__(self) -> None:
        self.seen: list[tuple[State, dict[str, Any]]] = []
        self.changed = asyncio.Event()

    def __call__(self, state: State, details: dict[str, Any]) -> None:
        self.seen.append((state, details))
        self.changed.set()

    async def until(self, state: State, count: int = 1) -> None:
        async with asyncio.timeout(20):
            while sum(1 for s, _ in self.seen if s == state) < count:
                self.changed.clear()
                await self.changed.wait()

    def delays(self) -> list[float]:
        return [d["delay"] for s, d in self.seen if s == "reconnecting" and "delay" in d]


async def texts_until(client: Client, last: str) -> list[Frame]:
    frames = []
    async with asyncio.timeout(20):
        async for frame in client:
            if frame.action == "reliable_chat_notification" and frame.payload["message"] == JOINED:
                continue  # each connection's own join notice: not kept, sent live
            frames.append(frame)
            if frame.payload.get("message") == last:
                return frames
    raise AssertionError(f"the stream ended before {last!r}")


@pytest.fixture
def server_env(settings: Settings) -> dict[str, str]:
    return {"REDIS_URL": settings.redis_url, "TASKCAST_KEY_PREFIX": settings.key_prefix}


async def test_a_restart_mid_stream_loses_nothing_and_repeats_nothing(
    web_process: Callable[[dict[str, str]], Any],
    server_env: dict[str, str],
    publisher: SyncPublisher,
) -> None:
    web = web_process(server_env)
    states = States()
    say = lambda text: publisher.publish(ReliableChatConsumer, SystemNotify(payload=text))  # noqa: E731
    url = web.ws_url("/ws/reliable")
    async with connect(url, messages=ReliableChatConsumer, on_state=states, backoff=(0.1, 1)) as c:
        await states.until("open")
        say("before")
        before = await texts_until(c, "before")
        assert isinstance(before[-1].message, ReliableChatNotificationMessage)  # typed by its class
        assert before[-1].sent_at is not None and not before[-1].replayed
        web.stop(signal.SIGTERM)  # every socket closed with 1001, then the process exits
        for n in range(3):
            say(f"while down {n}")
        web.start()  # the same port
        await states.until("open", 2)
        say("after")
        frames = await texts_until(c, "after")
    assert [f.payload["message"] for f in frames] == [
        "while down 0",
        "while down 1",
        "while down 2",
        "after",
    ]
    assert all(f.replayed for f in frames[:3])  # ("after" too, if the catch-up was still on)
    assert any(d.get("code") == 1001 for s, d in states.seen if s == "reconnecting")
    assert c.state == "closed"


async def test_messages_trimmed_while_away_come_as_one_gap(
    web_process: Callable[[dict[str, str]], Any],
    server_env: dict[str, str],
    settings: Settings,
) -> None:
    env = server_env | {"TASKCAST_QUEUE_CAPACITY": "3"}
    web = web_process(env)
    small = Settings(redis_url=settings.redis_url, key_prefix=settings.key_prefix, queue_capacity=3)
    publisher = SyncPublisher.from_configs(small.layer_configs())
    say = lambda text: publisher.publish(ReliableChatConsumer, SystemNotify(payload=text))  # noqa: E731
    states = States()
    async with resuming(web.ws_url("/ws/reliable"), on_state=states) as client:
        await states.until("open")
        say("first")
        joined, first = await next_frames(client, 2)
        assert (joined.payload["message"], first.payload["message"]) == (JOINED, "first")
        web.stop(signal.SIGTERM)
        for n in range(6):
            say(f"away {n}")
        web.start()
        frames = await texts_until(client, "away 5")
    actions = [f.action for f in frames]
    assert actions.count("gap") == 1 and actions[0] == "gap"
    assert frames[0].payload["reason"] == "trimmed"
    assert [f.payload["message"] for f in frames[1:]] == ["away 3", "away 4", "away 5"]


async def test_a_refused_token_stops_the_client(
    web_process: Callable[[dict[str, str]], Any], server_env: dict[str, str]
) -> None:
    web = web_process(server_env | {"TASKCAST_WS_TOKENS": json.dumps({"good": None})})
    states = States()
    client = connect(web.ws_url("/ws/chat"), token="bad", on_state=states, backoff=(0.05, 0.1))
    async with client:
        with pytest.raises(Refused) as refused:
            async with asyncio.timeout(10):
                async for _ in client:
                    pass
        assert refused.value.code == 4401
        await asyncio.sleep(0.3)  # three backoffs' time: no attempt follows
        # Refused at the handshake or just after it: one connection, and no other tried.
        assert [s for s, _ in states.seen] in (
            ["connecting", "closed"],
            ["connecting", "open", "closed"],
        )
    async with connect(web.ws_url("/ws/chat"), token="good") as allowed:
        assert (await allowed.request("ping")).action == "pong"


async def test_requests_get_their_own_replies(
    web_process: Callable[[dict[str, str]], Any], server_env: dict[str, str]
) -> None:
    web = web_process(server_env)
    async with connect(web.ws_url("/ws/chat"), request_timeout=10) as client:
        replies = await asyncio.gather(*(client.request("ping") for _ in range(50)))
        assert all(reply.action == "pong" for reply in replies)
        assert len({reply.ref for reply in replies}) == 50
        with pytest.raises(RequestFailed) as failed:
            await client.request("chat", {"message": 5})
        assert failed.value.frame.payload["code"] == "invalid_payload"
        # The broadcast that a chat frame causes is no reply: it comes through iteration.
        await client.send("chat", {"message": "hello"})
        async with asyncio.timeout(10):
            async for frame in client:
                if frame.payload.get("message") == "💬 hello":
                    assert frame.ref is None
                    break


async def test_backoff_grows_and_stays_bounded(
    web_process: Callable[[dict[str, str]], Any], server_env: dict[str, str]
) -> None:
    web = web_process(server_env)
    states = States()
    async with connect(web.ws_url("/ws/chat"), on_state=states, backoff=(0.05, 0.4)) as client:
        await states.until("open")
        web.stop(signal.SIGTERM)
        await states.until("reconnecting", 12)  # the server stays down
        delays = states.delays()
        assert all(0 < d <= 0.4 for d in delays)
        assert max(delays[-4:]) > 0.2 >= min(delays[:2])  # it grew, up to its bound
        web.start()
        await states.until("open", 2)
        assert client.state == "open"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskcast", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_command_line_tails_and_sends(
    web_process: Callable[[dict[str, str]], Any],
    server_env: dict[str, str],
    publisher: SyncPublisher,
) -> None:
    web = web_process(server_env | {"TASKCAST_WS_TOKENS": json.dumps({"good": None})})
    sent = cli("send", web.ws_url("/ws/reliable"), "reliable_chat", '{"message": "kept"}')
    assert sent.returncode == 2 and "refused: closed 4401" in sent.stderr  # no token
    sent = cli(
        "send",
        web.ws_url("/ws/system"),
        "user_message",
        '{"message": "hi"}',
        TASKCAST_TOKEN="good",
    )
    assert sent.returncode == 0, sent.stderr
    reply = json.loads(sent.stdout)
    assert reply["action"] == "system_echo" and reply["payload"]["message"].endswith("hi")
    bad = cli("send", web.ws_url("/ws/chat"), "chat", '{"message": 5}', TASKCAST_TOKEN="good")
    assert bad.returncode == 1 and json.loads(bad.stdout)["payload"]["code"] == "invalid_payload"
    assert cli("send", web.ws_url("/ws/chat"), "chat", "{nope").returncode == 2
    quiet = cli(
        "send",
        web.ws_url("/ws/chat"),
        "chat",
        '{"message": "x"}',
        "--no-reply",
        TASKCAST_TOKEN="good",
    )
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stderr
    typo = cli("send", web.ws_url("/ws/chat"), "chta", "{}", "--no-reply", TASKCAST_TOKEN="good")
    assert typo.returncode == 1 and json.loads(typo.stdout)["payload"]["code"] == "unknown_action"
    # Live from its start (a reliable endpoint without a cursor), then from a cursor: only what
    # came after it.
    url = web.ws_url("/ws/reliable")
    tail = subprocess.Popen(
        [sys.executable, "-m", "taskcast", "tail", url, "--count", "4"],
        env={**os.environ, "TASKCAST_TOKEN": "good"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None
        assert tail.stderr.readline().strip() == "taskcast: connected"
        for n in range(3):
            publisher.publish(ReliableChatConsumer, SystemNotify(payload=f"kept {n}"))
        out, errors = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 0
    frames = [json.loads(line) for line in out.splitlines()]
    kept = [f for f in frames if f["payload"]["message"] != JOINED]
    assert [f["payload"]["message"] for f in kept] == ["kept 0", "kept 1", "kept 2"]
    last = [line for line in errors.splitlines() if "last cursor" in line]
    assert last == [f"taskcast: last cursor: {kept[-1]['cursor']}"]  # to resume from
    again = cli("tail", url, "--cursor", kept[0]["cursor"], "--count", "3", TASKCAST_TOKEN="good")
    frames = [json.loads(line) for line in again.stdout.splitlines()]
    assert [f["payload"]["message"] for f in frames if f["payload"]["message"] != JOINED] == [
        "kept 1",
        "kept 2",
    ]
    assert all(f.get("replayed") for f in frames if f["payload"]["message"] != JOINED)


async def test_the_readme_example_as_written(
    web_process: Callable[[dict[str, str]], Any],
    server_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Python: `taskcast.client`", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    namespace: dict[str, Any] = {"__name__": "readme_client"}
    exec(compile(code, "README.md", "exec", dont_inherit=True), namespace)
    web = web_process(server_env)
    url = web.ws_url("/ws/reliable")
    following = asyncio.create_task(namespace["follow"](url))
    out = ""
    async with connect(url) as other:
        async with asyncio.timeout(10):
            while "📨 hello" not in out:
                await asyncio.sleep(0.05)
                out += capsys.readouterr().out
        await other.send("reliable_chat", {"message": "bye"})
        await asyncio.wait_for(following, 10)
    out += capsys.readouterr().out
    assert out.splitlines()[0] == "pong"
    assert "📨 bye" in out.splitlines()[-1]


async def test_a_server_that_closes_at_once_is_asked_less_and_less_often() -> None:
    async def close_at_once(ws: Any) -> None:
        await ws.close(1011, "broken")

    states = States()
    async with serve(close_at_once, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/", on_state=states, backoff=(0.02, 0.16)):
            await states.until("reconnecting", 10)
    delays = states.delays()
    # Each connection opened, yet the delays grew to the bound instead of starting over.
    assert sum(1 for s, _ in states.seen if s == "open") >= 3
    assert max(delays[-2:]) > 0.08 >= min(delays[:2])
    assert all(d <= 0.16 for d in delays)


async def test_a_session_the_server_ends_ends_the_iteration() -> None:
    async def say_goodbye(ws: Any) -> None:
        await ws.send(json.dumps({"action": "bye", "payload": None}))
        await ws.close(1000, "done")

    states = States()
    async with serve(say_goodbye, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/", on_state=states) as client:
            async with asyncio.timeout(10):
                assert [frame.action async for frame in client] == ["bye"]
    assert [s for s, _ in states.seen] == ["connecting", "open", "closed"]


def test_a_url_that_is_no_websocket_url_is_said_without_its_token() -> None:
    for url in ["http://h/ws?token=s3cret", "ws://", "ws://h:99999/x?token=s3cret", "wss//h"]:
        with pytest.raises(ValueError, match="ws://host") as bad:
            Client(url)
        assert "s3cret" not in str(bad.value)
    said = cli("tail", "http://127.0.0.1:1/ws/chat?token=s3cret", TASKCAST_TOKEN="s3cret")
    assert said.returncode == 2
    assert "s3cret" not in said.stderr and "Traceback" not in said.stderr


async def test_a_request_made_before_the_server_is_up_gets_its_reply() -> None:
    async def answer(ws: Any) -> None:
        async for text in ws:
            frame = json.loads(text)
            await ws.send(json.dumps({"action": "pong", "payload": None, "ref": frame["ref"]}))

    port = free_port()
    async with connect(f"ws://127.0.0.1:{port}/", backoff=(0.05, 0.1)) as client:
        asking = asyncio.create_task(client.request("ping", timeout=10))
        await asyncio.sleep(0.3)  # a few refused connections meanwhile
        async with serve(answer, "127.0.0.1", port):
            reply = await asyncio.wait_for(asking, 10)
    assert (reply.action, reply.ref) == ("pong", "r1")


async def test_hostile_frames_are_skipped_and_a_full_queue_does_not_slow_close() -> None:
    async def hostile(ws: Any) -> None:
        await ws.send("[" * 200_000)  # nested past any parser
        await ws.send(b"\x00binary")
        await ws.send(json.dumps({"action": "fine", "payload": 1}))
        while True:  # then more than the client reads
            await ws.send(json.dumps({"action": "flood", "payload": "x" * 1000}))
            await asyncio.sleep(0)  # (this server shares the test's loop)

    async with serve(hostile, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = connect(f"ws://127.0.0.1:{port}/", max_queue=10)
        async with asyncio.timeout(5):  # close's handshake is bounded (a second), not 10 s
            async with client:
                first = await anext(client)
        assert first.action == "fine"
    assert client.state == "closed"
