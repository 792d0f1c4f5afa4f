"""``python -m web``, as the README and the Procfile run it: a real process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from taskcast.testing import connect

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def web_process() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "TASKCAST_MAX_FRAME_BYTES": "2048"}
    process = subprocess.Popen([sys.executable, "-m", "web"], env=env)
    base = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, "the web process exited"
        assert time.monotonic() < deadline, "the web process did not answer /healthz"
        time.sleep(0.05)
    try:
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0


async def test_the_web_process_serves_the_endpoints_and_its_frame_limit(web_process: str) -> None:
    async with connect(f"ws://{web_process}/ws/analytics") as client:
        await client.send({"action": "ping"}, ref="1")
        assert await client.expect("pong") == {"action": "pong", "payload": None, "ref": "1"}
        await client.send({"action": "analytics", "payload": {"event": "x" * 4096}})
        assert await client.wait_closed() == 1009
