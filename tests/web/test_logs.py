"""What the web process logs: request URLs without their tokens or cursors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from taskcast.testing import connect
from tests.conftest import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def logged_web(redis_url: str, key_prefix: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": redis_url}
    env |= {"TASKCAST_KEY_PREFIX": key_prefix, "TASKCAST_LOG_LEVEL": "info"}
    web = subprocess.Popen(
        [sys.executable, "-m", "web"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except httpx.TransportError:
            assert web.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    yield f"127.0.0.1:{port}", web
    web.kill()
    web.communicate(timeout=10)


async def test_tokens_and_cursors_never_reach_the_log(
    logged_web: tuple[str, subprocess.Popen[str]],
) -> None:
    base, web = logged_web
    async with connect(f"ws://{base}/ws/chat?token=s3cret-token&cursor=QUJDREVG") as client:
        await client.send({"action": "ping"}, ref="in")
        while (await client.receive()).get("ref") != "in":
            pass
    # A name spelled another way is the same parameter to the server (Starlette decodes it), and
    # a value runs to the next "&", quotes and all.
    async with connect(f"ws://{base}/ws/chat?%74oken=s3cret-token") as client:
        await client.send({"action": "ping"}, ref="encoded")
        while (await client.receive()).get("ref") != "encoded":
            pass
    async with httpx.AsyncClient() as http:
        await http.get(f"http://{base}/healthz?token=s3cret-http")
        await http.get(f"http://{base}/healthz?x=1&TOKEN=ab%22s3cret-quoted")
    web.terminate()
    _, log = web.communicate(timeout=15)
    assert "WebSocket /ws/chat?token=[redacted]&cursor=[redacted]" in log
    assert "WebSocket /ws/chat?%74oken=[redacted]" in log
    assert "s3cret" not in log and "QUJDREVG" not in log
