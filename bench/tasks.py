"""Task benchmark: from `send_task` to the frame at a client, through one worker process.

Starts `python -m web` and one `celery -A workers worker --pool=solo` (one process), connects one
WebSocket client, then: M tasks at a steady rate (latency p50/p99 from send_task to the frame),
and M tasks flat out (broadcasts per second the worker sustains). Prints one JSON object per
target (pub/sub `send_chat_message`, reliable `send_reliable_message`).

    .venv/bin/python bench/tasks.py --tasks 500 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import REDIS_URL, free_port, percentile  # noqa: E402

TARGETS = {
    "pubsub": ("/ws/chat", "workers.tasks.send_chat_message"),
    "reliable": ("/ws/reliable", "workers.tasks.send_reliable_message"),
}


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def measure(target: str, count: int, rate: float, env: dict[str, str], port: int) -> Any:
    from websockets.asyncio.client import connect

    from showcase.settings import Settings
    from workers.app import create_celery

    path, task = TARGETS[target]
    settings = Settings(redis_url=REDIS_URL, key_prefix=env["TASKCAST_KEY_PREFIX"])
    celery = create_celery(settings)
    received: dict[str, float] = {}
    changed = asyncio.Event()
    async with connect(f"ws://127.0.0.1:{port}{path}", open_timeout=30) as ws:

        async def read() -> None:
            async for text in ws:
                at = str(text).find("bench:")
                if at >= 0:
                    received[str(text)[at : str(text).index('"', at)]] = time.time()
                    changed.set()

        reader = asyncio.create_task(read())

        async def wait_for(names: list[str], timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while not all(n in received for n in names) and time.monotonic() < deadline:
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 1)

        # Warm up: the worker's first task opens its connections.
        await asyncio.to_thread(celery.send_task, task, kwargs={"message": "bench:warm:0"})
        await wait_for(["bench:warm:0"], 30)

        sent: dict[str, float] = {}
        started = time.time()
        for n in range(count):
            name = f"bench:steady:{n}"
            sent[name] = time.time()
            await asyncio.to_thread(celery.send_task, task, kwargs={"message": name})
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.time()))
        await wait_for(list(sent), 60)
        latencies = sorted((received[n] - t) * 1000 for n, t in sent.items() if n in received)

        names = [f"bench:burst:{n}" for n in range(count)]
        first = time.time()
        for name in names:
            celery.send_task(task, kwargs={"message": name})
        await wait_for(names, 120)
        got = [received[n] for n in names if n in received]
        reader.cancel()
    return {
        "target": target,
        "task": task,
        "steady_rate_per_s": rate,
        "latency_ms_p50": percentile(latencies, 0.5),
        "latency_ms_p99": percentile(latencies, 0.99),
        "steady_lost": count - len(latencies),
        "burst_tasks": count,
        "burst_lost": count - len(got),
        "broadcasts_per_s_one_worker": round(len(got) / (max(got) - first)) if got else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50)
    args = parser.parse_args()
    for target in TARGETS:
        prefix = f"bench:{uuid.uuid4().hex[:8]}"
        port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": REDIS_URL,
            "PORT": str(port),
            "TASKCAST_LOG_LEVEL": "warning",
        }
        env |= {"TASKCAST_KEY_PREFIX": prefix}
        web = start([sys.executable, "-m", "web"], env)
        worker = start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
            ],
            env,
        )
        try:
            time.sleep(3)
            print(
                json.dumps(asyncio.run(measure(target, args.tasks, args.rate, env, port))),
                flush=True,
            )
        finally:
            for process in (worker, web):
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            keys += client.scan_iter(match=f"_kombu.binding*{prefix}*", count=1000)
            if keys:
                client.delete(*keys)


if __name__ == "__main__":
    main()
