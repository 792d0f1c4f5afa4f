"""What catch-ups cost a web process: ten clients resuming from a forged cursor (the start of the
stream) while the analytics layer holds 5,000 messages of 50 KB. Each socket holds a page or two,
not the history; other clients keep being answered. Bounds are generous: the point is that the
cost does not grow with the history (before paging: +2.7 GB kept, pings at 1.7 s p99)."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from showcase import AnalyticsConsumer
from showcase.messages import AnalyticsEvent, AnalyticsPayload
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import connect

pytestmark = pytest.mark.anyio

MESSAGES, SIZE, CLIENTS = 5_000, 50_000, 10


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


async def test_forged_cursor_catch_ups_cost_a_page_per_socket(
    web_process: Callable[[dict[str, str]], Any], redis_url: str, key_prefix: str
) -> None:
    web = web_process({"REDIS_URL": redis_url, "TASKCAST_KEY_PREFIX": key_prefix})
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix)
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    pad = "x" * SIZE
    for n in range(MESSAGES):
        event = AnalyticsEvent(payload=AnalyticsPayload(event="big", data={"n": n, "pad": pad}))
        publisher.publish(AnalyticsConsumer, event)
    epoch = redis.Redis.from_url(redis_url).hget(
        f"{key_prefix}:analytics:{{analytics}}:meta", "epoch"
    )
    assert epoch is not None
    forged = "\x1f".join(("analytics", epoch.decode(), "0-0", "0"))
    cursor = base64.urlsafe_b64encode(forged.encode()).rstrip(b"=").decode()
    pid = web.process.pid
    async with connect(web.ws_url("/ws/chat")) as pinger:
        await pinger.expect("chat_notification")
        before = memory_kib(pid, "VmRSS")
        readers = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).with_name("rawws.py")), "127.0.0.1",
            str(web.port), f"/ws/analytics?cursor={cursor}", str(MESSAGES), str(CLIENTS),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        finished = asyncio.ensure_future(readers.communicate())
        pings: list[float] = []
        peak = before
        while not finished.done():
            sent = time.monotonic()
            await pinger.send({"action": "ping"})
            await pinger.expect("pong", timeout=10)
            pings.append(time.monotonic() - sent)
            peak = max(peak, memory_kib(pid, "VmRSS"))
            await asyncio.sleep(0.05)
        out, _ = await asyncio.wait_for(finished, 10)
    result = json.loads(out)
    assert result["counts"] == [MESSAGES] * CLIENTS  # each got the whole history
    pings.sort()
    p99 = pings[int(len(pings) * 0.99)] if pings else 0.0
    growth_mib = (peak - before) / 1024
    print(f"catch-ups took {result['seconds']} s; RSS +{growth_mib:.0f} MiB; ping p99 {p99:.3f} s")
    assert growth_mib < 400, growth_mib
    assert p99 < 1.0, p99
