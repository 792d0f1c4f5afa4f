"""Client benchmark: what `taskcast.client` costs a reader, and how fast it resumes.

- ``read``: one client reads M broadcasts published flat out on /ws/reliable (the ``queue``
  layer), as (a) a bare ``websockets`` loop that parses each frame (the floor for a Python
  reader), (b) ``taskcast.client`` with plain dicts, (c) ``taskcast.client`` typed with the app's
  classes; and the bare loop on the ceiling (bench/ceiling.py) with the same workload. Prints
  frames/s and the client process's CPU per frame (µs), from the first measured frame to the last.
- ``restart``: ``taskcast.client`` follows /ws/reliable while R broadcasts/s are published; the
  web process is killed (SIGKILL), left down ``--down`` seconds (the broadcasts kept by Redis) and
  started again, K times, ``--up`` seconds apart. Prints the outage (kill to the new server
  answering), the time from the new server answering to the client's first frame (its backoff's
  share), and lost / repeated broadcasts over the whole run.

    .venv/bin/python bench/clients.py            # both (about a minute)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import (  # noqa: E402 - after the path is set
    Publisher,
    drop_prefix,
    free_port,
    percentile,
    start_server,
)


def text_of(payload: Any) -> str:
    return payload if isinstance(payload, str) else str(payload.get("message", ""))


async def read(url: str, kind: str, total: int, conn: Any) -> None:
    """Count frames tagged "m:"; report once ``total`` arrived. "w:" frames say it is ready."""
    ready = False
    seen = 0
    started = cpu = 0.0

    def got(text: str) -> bool:
        nonlocal ready, seen, started, cpu
        if text.startswith("w:") and not ready:
            ready = True
            conn.send("ready")
        elif text.startswith("m:"):
            if seen == 0:
                started, cpu = time.perf_counter(), time.process_time()
            seen += 1
        return seen >= total

    if kind == "bare":
        from websockets.asyncio.client import connect as ws_connect

        async with ws_connect(url, max_size=2**23, compression=None) as ws:
            async for raw in ws:
                if got(text_of(json.loads(raw).get("payload", ""))):
                    break
    else:
        from showcase import ReliableChatConsumer
        from taskcast.client import connect

        options: dict[str, Any] = {"messages": ReliableChatConsumer} if kind == "typed" else {}
        async with connect(url, **options) as client:
            async for frame in client:
                if got(text_of(frame.payload)):
                    break
    conn.send((seen, time.perf_counter() - started, time.process_time() - cpu))


def reader_process(url: str, kind: str, total: int, conn: Any) -> None:
    asyncio.run(read(url, kind, total, conn))


def spawn(target: Any, *args: Any) -> tuple[Any, Any]:
    """A client process running ``target(*args, conn)``, and this side's end of ``conn``."""
    mine, theirs = mp.Pipe()
    process = mp.get_context("spawn").Process(target=target, args=(*args, theirs))
    process.start()
    return process, mine


def tear_down(process: Any, server: Any, publisher: Publisher, prefix: str) -> None:
    process.join(timeout=10)
    process.kill()
    server.kill()
    server.wait()
    drop_prefix(publisher.redis, prefix)


def run_read(target: str, kind: str, total: int) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    port = free_port()
    publisher = Publisher(target, prefix)
    server = start_server(target, port, prefix)
    path = "/ws" if target == "ceiling" else "/ws/reliable"
    process, conn = spawn(reader_process, f"ws://127.0.0.1:{port}{path}", kind, total)
    try:
        deadline = time.monotonic() + 30
        while not conn.poll(0.05):  # warm-up frames until the reader has one
            if time.monotonic() > deadline:
                raise RuntimeError("the reader never got a frame")
            publisher.send("w:")
        conn.recv()
        for seq in range(total):
            publisher.send(f"m:{seq}")
        if not conn.poll(120):
            raise RuntimeError("the reader did not finish")
        seen, seconds, cpu = conn.recv()
        return {
            "server": target,
            "reader": kind,
            "frames": seen,
            "frames_per_s": round(seen / seconds),
            "client_cpu_us_per_frame": round(cpu / seen * 1e6, 1),
        }
    finally:
        tear_down(process, server, publisher, prefix)


async def follow(url: str, conn: Any) -> None:
    from taskcast.client import connect

    async with connect(url) as client:
        await client.wait_open(30)
        conn.send("ready")
        async for frame in client:
            if frame.action == "gap":
                conn.send((-1, False, time.time()))
                continue
            text = text_of(frame.payload)
            if text.startswith("m:"):
                conn.send((int(text[2:]), frame.replayed, time.time()))
            elif text == "end":
                break
    conn.send(None)


def follower_process(url: str, conn: Any) -> None:
    asyncio.run(follow(url, conn))


def run_restart(restarts: int, rate: float, down: float, up: float) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    port = free_port()
    publisher = Publisher("reliable", prefix)
    server = start_server("reliable", port, prefix)
    process, mine = spawn(follower_process, f"ws://127.0.0.1:{port}/ws/reliable")
    received: list[tuple[int, bool, float]] = []
    answered: list[float] = []
    outages: list[float] = []
    seq = 0

    def publish_for(seconds: float) -> None:
        nonlocal seq
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            publisher.send(f"m:{seq}")
            seq += 1
            while mine.poll():
                received.append(mine.recv())
            time.sleep(1 / rate)

    try:
        if not mine.poll(30):
            raise RuntimeError("the follower did not start")
        mine.recv()
        publish_for(1.0)
        for _ in range(restarts):
            killed = time.time()
            server.kill()
            server.wait()
            publish_for(down)  # kept by Redis while no server runs
            server = start_server("reliable", port, prefix)
            answered.append(time.time())
            outages.append(answered[-1] - killed)
            publish_for(up)  # longer than the client's STEADY: its backoff starts over
        publisher.send("end")
        while (item := mine.recv() if mine.poll(30) else None) is not None:
            received.append(item)
    finally:
        tear_down(process, server, publisher, prefix)
    gaps = sum(1 for number, _, _ in received if number < 0)
    received = [item for item in received if item[0] >= 0]
    counts = Counter(number for number, _, _ in received)
    resumed = sorted(
        (min(at for _, _, at in received if at >= ready) - ready) * 1000 for ready in answered
    )
    return {
        "restarts": restarts,
        "published": seq,
        "lost": seq - len(counts),
        "lost_first": sorted(set(range(seq)) - set(counts))[:5],
        "gaps": gaps,
        "repeated": sum(n - 1 for n in counts.values()),
        "replayed": sum(1 for _, replayed, _ in received if replayed),
        "outage_s_mean": round(sum(outages) / len(outages), 2),
        "resumed_after_server_answered_ms_p50": percentile(resumed, 0.5),
        "resumed_after_server_answered_ms_max": round(resumed[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", choices=("read", "restart", "all"), default="all")
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--down", type=float, default=1.0, help="seconds with no server")
    parser.add_argument("--up", type=float, default=4.0, help="seconds between restarts")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    if args.which in ("read", "all"):
        for target, kind in (
            ("ceiling", "bare"),
            ("reliable", "bare"),
            ("reliable", "plain"),
            ("reliable", "typed"),
        ):
            print(json.dumps(run_read(target, kind, args.frames)), flush=True)
    if args.which in ("restart", "all"):
        print(json.dumps(run_restart(args.restarts, args.rate, args.down, args.up)), flush=True)


if __name__ == "__main__":
    main()
