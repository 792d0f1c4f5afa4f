"""``python -m web``, as the README and the Procfile run it: a real process on a free port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from taskcast.testing import connect

pytestmark = pytest.mark.anyio


async def test_the_web_process_serves_the_endpoints_and_its_frame_limit(
    web_process: Callable[[dict[str, str]], Any], redis_url: str, key_prefix: str
) -> None:
    web = web_process(
        {
            "REDIS_URL": redis_url,
            "TASKCAST_KEY_PREFIX": key_prefix,
            "TASKCAST_MAX_FRAME_BYTES": "2048",
        }
    )
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"http://{web.base}/readyz", timeout=5)).json()["ready"] is True
    async with connect(web.ws_url("/ws/analytics")) as client:
        await client.send({"action": "ping"}, ref="1")
        assert await client.expect("pong") == {"action": "pong", "payload": None, "ref": "1"}
        await client.send({"action": "analytics", "payload": {"event": "x" * 4096}})
        assert await client.wait_closed() == 1009
    assert web.stop() == 0
