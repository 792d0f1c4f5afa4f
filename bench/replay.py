"""Catch-up benchmark: clients that resume on /ws/analytics after missing messages.

- ``reconnect``: M messages are published while nobody listens; then N clients connect at once
  with the cursor from before them. Prints the time until every client has every message, the
  frames/s that makes, and the web process's resident memory (before, peak).
- ``beside``: N-1 clients receive R broadcasts/s live on /ws/analytics for D seconds; with
  ``--catch-up``, one more client resumes from before M kept messages at the start. Prints the
  live clients' latency p50/p99 (publish to receipt); run it with and without to compare. The
  ceiling (bench/ceiling.py: a bare PUBLISH-forwarding app) runs the same live workload.

    .venv/bin/python bench/replay.py --suite      # the README's figures (a few minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import (  # noqa: E402 - after the path is set
    REDIS_URL,
    NodeClients,
    free_port,
    percentile,
    rss_kib,
    start_server,
)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


class Analytics:
    """Publishes analytics events as a task would (SyncPublisher), and reads the cursor."""

    def __init__(self, prefix: str) -> None:
        from showcase.settings import Settings
        from taskcast import SyncPublisher

        self.prefix = prefix
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.sync = SyncPublisher.from_configs(
            Settings(redis_url=REDIS_URL, key_prefix=prefix).layer_configs()
        )

    def send(self, name: str, padding: int = 100) -> None:
        from showcase import AnalyticsConsumer
        from showcase.messages import AnalyticsEvent, AnalyticsPayload

        payload = AnalyticsPayload(event=name, data={"pad": "x" * padding})
        self.sync.publish(AnalyticsConsumer, AnalyticsEvent(payload=payload))

    def cursor_before_everything(self) -> str:
        """A position before every kept message (what a client that saw none of them holds)."""
        import base64

        epoch = self.redis.hget(f"{self.prefix}:analytics:{{analytics}}:meta", "epoch")
        raw = "\x1f".join(("analytics", (epoch or b"-").decode(), "0-0", "0"))
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()

    def clean(self) -> None:
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        if keys:
            self.redis.delete(*keys)


def clients(url: str, count: int, frames: int, procs: int, tag: str) -> list[NodeClients]:
    shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    return [
        NodeClients(url, share, frames, f"/tmp/taskcast-replay-{tag}-{i}.f32")
        for i, share in enumerate(shares)
        if share
    ]


def latencies(group: list[NodeClients], tag: str) -> list[float]:
    values = array("f")
    for i in range(len(group)):
        out = Path(f"/tmp/taskcast-replay-{tag}-{i}.f32")
        values.frombytes(out.read_bytes())
        out.unlink()
    return sorted(values)


def reconnect(count: int, missed: int, procs: int) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    port = free_port()
    server = start_server("idle", port, prefix)
    analytics = Analytics(prefix)
    try:
        for seq in range(missed):
            analytics.send(f"bench:{seq}:{time.time_ns()}")
        url = f"ws://127.0.0.1:{port}/ws/analytics?cursor={analytics.cursor_before_everything()}"
        before = rss_kib(server.pid)
        peak = [before]
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.05):
                peak[0] = max(peak[0], rss_kib(server.pid))

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.time()
        group = clients(url, count, missed, procs, "reconnect")
        for node in group:
            assert node.recv() == "connected"
        for node in group:
            node.send("600")
        reports = [node.recv() for node in group]
        stop.set()
        watcher.join()
        latencies(group, "reconnect")  # (from publish: meaningless here; removes the files)
        elapsed = max(r["last"] for r in reports) - started
        received = sum(r["received"] for r in reports)
        return {
            "benchmark": "reconnect",
            "clients": count,
            "missed": missed,
            "received": received,
            "lost": count * missed - received,
            "duplicated": sum(r["duplicates"] for r in reports),
            "all_caught_up_s": round(elapsed, 2),
            "frames_per_s": round(received / elapsed),
            "server_rss_before_mib": round(before / 1024, 1),
            "server_rss_peak_mib": round(max(peak[0], peak_rss_kib(server.pid)) / 1024, 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        analytics.clean()


def beside(count: int, missed: int, rate: float, seconds: float, catch_up: bool) -> dict[str, Any]:
    """Live clients' latency while (optionally) one client catches up on ``missed``."""
    target = "idle"
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    port = free_port()
    server = start_server(target, port, prefix)
    analytics = Analytics(prefix)
    broadcasts = int(rate * seconds)
    try:
        for seq in range(missed):
            analytics.send(f"old:{seq}")
        live = clients(f"ws://127.0.0.1:{port}/ws/analytics", count, broadcasts, 2, "live")
        for node in live:
            assert node.recv() == "connected"
        late: list[NodeClients] = []
        if catch_up:
            url = (
                f"ws://127.0.0.1:{port}/ws/analytics?cursor={analytics.cursor_before_everything()}"
            )
            late = clients(url, 1, broadcasts, 1, "late")  # its old frames carry no bench: mark
            assert late[0].recv() == "connected"
        for node in live + late:
            node.send(str(seconds * 3))
        first = time.time()
        for seq in range(broadcasts):
            analytics.send(f"bench:{seq}:{time.time_ns()}")
            time.sleep(max(0.0, first + (seq + 1) / rate - time.time()))
        reports = [node.recv() for node in live + late]
        ordered = latencies(live, "live")
        if late:
            latencies(late, "late")
        received = sum(r["received"] for r in reports[: len(live)])
        return {
            "benchmark": "beside",
            "live_clients": count,
            "catching_up": 1 if catch_up else 0,
            "missed": missed if catch_up else 0,
            "rate_per_s": rate,
            "lost": count * broadcasts - received,
            "latency_ms_p50": percentile(ordered, 0.50),
            "latency_ms_p99": percentile(ordered, 0.99),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        analytics.clean()


def ceiling_live(count: int, rate: float, seconds: float) -> dict[str, Any]:
    """The same live workload on the ceiling app (a raw PUBLISH of a ready frame)."""
    from bench.fanout import run

    result = run("ceiling", count, int(rate * seconds), rate, 2)
    return {
        "benchmark": "beside",
        "target": "ceiling",
        "live_clients": count,
        "rate_per_s": rate,
        "latency_ms_p50": result["latency_ms_p50"],
        "latency_ms_p99": result["latency_ms_p99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("benchmark", nargs="?", choices=("reconnect", "beside"))
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--missed", type=int, default=5000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--catch-up", action="store_true")
    parser.add_argument("--suite", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TASKCAST_RATE_PER_SECOND", "1000")
    if args.suite:
        runs = [
            lambda: reconnect(1000, 5000, 2),
            lambda: ceiling_live(999, 20.0, 15.0),
            lambda: beside(999, 5000, 20.0, 15.0, catch_up=False),
            lambda: beside(999, 5000, 20.0, 15.0, catch_up=True),
        ]
        for go in runs:
            print(json.dumps(go()), flush=True)
    elif args.benchmark == "reconnect":
        print(json.dumps(reconnect(args.clients, args.missed, args.procs)))
    elif args.benchmark == "beside":
        result = beside(args.clients, args.missed, args.rate, args.seconds, args.catch_up)
        print(json.dumps(result))
    else:
        parser.error("name a benchmark or give --suite")


if __name__ == "__main__":
    main()
