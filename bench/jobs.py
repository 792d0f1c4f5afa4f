"""Jobs benchmark: N jobs running at once, each watched by its own socket on ``/ws/jobs/{id}``,
each reporting S progress steps. The steps are published from this process exactly as N
``StreamedTask``s would (``StreamedTask.publish_event``: the same keyed append per event), round
robin across the jobs at a steady rate; N Celery worker processes at once would not fit this
machine.

Against the same workload on the ceiling (bench/ceiling.py's rooms, a raw PUBLISH of the
ready frame per event). Prints, for each: latency from the progress call to the frame at its
watcher (p50/p99), lost and duplicated events, Redis commands per progress event (``INFO
commandstats`` over the phase: the keyed append and the web process's reads), and the web
process's memory per watched job.

    .venv/bin/python bench/jobs.py                           # 1,000 jobs x 20 steps
    .venv/bin/python bench/jobs.py --jobs 200 --steps 10 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import (  # noqa: E402 - after the path
    REDIS_URL,
    clean_up,
    free_port,
    percentile,
    rss_kib,
    start_server,
)

SECRET = "bench-secret"


def watchers(urls: list[str], steps: int, conn: Any) -> None:
    asyncio.run(_watch(urls, steps, conn))


async def _watch(urls: list[str], steps: int, conn: Any) -> None:
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(50)

    async def open_one(url: str) -> Any:
        async with gate:
            return await connect(url, open_timeout=120, max_queue=None, ping_interval=None)

    sockets = await asyncio.gather(*(open_one(url) for url in urls))
    conn.send("connected")
    latencies: list[float] = []
    state = {"events": 0, "duplicates": 0, "done": 0}
    finished = asyncio.Event()

    async def receive(ws: Any) -> None:
        seen: set[int] = set()
        async for text in ws:
            now = time.time_ns()
            payload = json.loads(text)["payload"]
            if payload.get("state") != "progress":
                continue
            step = payload["current"]
            if step in seen:
                state["duplicates"] += 1
                continue
            seen.add(step)
            state["events"] += 1
            latencies.append((now - int(payload["message"])) / 1e6)
            if len(seen) == steps:
                state["done"] += 1
                if state["done"] == len(sockets):
                    finished.set()

    tasks = [asyncio.create_task(receive(ws)) for ws in sockets]
    timeout = float(await asyncio.get_running_loop().run_in_executor(None, conn.recv))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), timeout)
    conn.send({**state, "latencies": latencies})
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def run(target: str, jobs: int, steps: int, rate: float, procs: int) -> dict[str, Any]:
    from showcase import ShowcaseJobWatcher
    from showcase.settings import Settings
    from taskcast import SyncPublisher
    from taskcast.jobs import JobEvent, JobEventPayload, watch_token

    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    port = free_port()
    # The ceiling: its rooms (one pattern subscription), a raw PUBLISH of a ready frame per event.
    extra = {"TASKCAST_JOB_SECRET": SECRET, "TASKCAST_MAX_CONNECTIONS": "20000"}
    web = start_server("pubsub" if target == "taskcast" else "ceiling", port, prefix, extra)
    store = redis.Redis.from_url(REDIS_URL)
    settings = Settings(redis_url=REDIS_URL, key_prefix=prefix)
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    ids = [str(uuid.uuid4()) for _ in range(jobs)]
    urls = [
        f"ws://127.0.0.1:{port}/ws/jobs/{job}?watch={watch_token(SECRET.encode(), job)}"
        if target == "taskcast"
        else f"ws://127.0.0.1:{port}/ws/room/{job}"
        for job in ids
    ]
    context = mp.get_context("spawn")
    pipes, children = [], []
    try:
        before = rss_kib(web.pid)
        for share in range(procs):
            parent, child = context.Pipe()
            process = context.Process(target=watchers, args=(urls[share::procs], steps, child))
            process.start()
            pipes.append(parent)
            children.append(process)
        for pipe in pipes:
            assert pipe.recv() == "connected"
        time.sleep(1.0)
        watched = rss_kib(web.pid)
        commands_before = _commands(store)
        for pipe in pipes:
            pipe.send(str(max(60.0, jobs * steps / rate * 3)))
        first = time.monotonic()
        sent = 0
        for step in range(1, steps + 1):
            for job in ids:
                payload = JobEventPayload(
                    job_id=job, state="progress", current=step, total=steps,
                    message=str(time.time_ns()),
                )  # fmt: skip
                if target == "ceiling":
                    frame = JobEvent(payload=payload).model_dump_json()
                    store.publish(f"{prefix}:ceiling:room:{job}", frame)
                else:
                    publisher.publish(
                        ShowcaseJobWatcher,
                        JobEvent(payload=payload),
                        to={"job_id": job},
                        key=f"{job}:progress:1:{step}",
                    )
                sent += 1
                time.sleep(max(0.0, first + sent / rate - time.monotonic()))
        reports = [pipe.recv() for pipe in pipes]
        commands = _commands(store) - commands_before
        latencies = sorted(x for r in reports for x in r["latencies"])
        received = sum(r["events"] for r in reports)
        return {
            "target": target,
            "jobs": jobs,
            "steps": steps,
            "rate_per_s": rate,
            "events": jobs * steps,
            "delivered": received,
            "lost": jobs * steps - received,
            "duplicated": sum(r["duplicates"] for r in reports),
            "latency_ms_p50": percentile(latencies, 0.5),
            "latency_ms_p99": percentile(latencies, 0.99),
            "redis_commands_per_event": round(commands / (jobs * steps), 2),
            "web_rss_per_watched_job_kib": round((watched - before) / jobs, 1),
        }
    finally:
        clean_up(children, web, store, prefix)


def _commands(store: redis.Redis) -> int:
    stats = store.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2000, help="progress events per second")
    parser.add_argument("--procs", type=int, default=2, help="watcher processes")
    args = parser.parse_args()
    for target in ("ceiling", "taskcast"):
        print(json.dumps(run(target, args.jobs, args.steps, args.rate, args.procs)), flush=True)


if __name__ == "__main__":
    main()
