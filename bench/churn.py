"""Churn: 5,000 connect/disconnect cycles across the four endpoints of one `python -m web`;
prints the server's resident memory before, after, and after a second round of as many.

    .venv/bin/python bench/churn.py --cycles 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from fanout import rss_kib, start_server  # noqa: E402

ENDPOINTS = ["/ws/chat", "/ws/reliable", "/ws/notifications", "/ws/analytics"]


async def churn(port: int, cycles: int) -> None:
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(20)

    async def once(n: int) -> None:
        async with gate, connect(f"ws://127.0.0.1:{port}{ENDPOINTS[n % 4]}") as ws:
            await ws.send('{"action": "ping"}')
            while '"pong"' not in str(await ws.recv()):
                pass

    await asyncio.gather(*(once(n) for n in range(cycles)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=5000)
    args = parser.parse_args()
    from fanout import free_port

    port = free_port()
    os.environ["TASKCAST_RATE_PER_SECOND"] = "1000"
    server = start_server("pubsub", port, f"bench:{uuid.uuid4().hex[:8]}")
    try:
        asyncio.run(churn(port, 100))  # warm up: readers, pools, caches
        time.sleep(1)
        before = rss_kib(server.pid)
        started = time.monotonic()
        asyncio.run(churn(port, args.cycles))
        took = time.monotonic() - started
        after = rss_kib(server.pid)
        time.sleep(5)
        settled = rss_kib(server.pid)
        asyncio.run(churn(port, args.cycles))  # again: a leak grows again, a high-water mark not
        time.sleep(5)
        second = rss_kib(server.pid)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    print(
        json.dumps(
            {
                "cycles": args.cycles,
                "seconds": round(took, 1),
                "rss_kib_before": before,
                "rss_kib_after": after,
                "rss_kib_settled_5s": settled,
                "rss_growth_kib": settled - before,
                "rss_kib_after_a_second_round": second,
                "rss_growth_second_round_kib": second - settled,
            }
        )
    )


if __name__ == "__main__":
    main()
