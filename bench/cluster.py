"""Broadcasts per second into a three-primary Redis Cluster against one Redis node, both private
(started here on free ports, nothing kept on disk), on the pub/sub and the reliable layer.

Publisher processes send flat out to G groups (spread over every slot, so over every primary)
through the workers' sync senders for a few seconds; one receiving process holds a member in each
group through the async layer (its subscriber: one connection per primary on the Cluster). Prints
one JSON object per run: broadcasts/s sent, delivered/s, lost, and per broadcast the Redis
commands and bytes (in + out, over every node) it cost.

    .venv/bin/python bench/cluster.py            # node and cluster, pubsub and reliable
    .venv/bin/python bench/cluster.py --seconds 10 --groups 1000 --publishers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskcast.delivery import pack_message  # noqa: E402
from taskcast.layers import (  # noqa: E402
    RedisPubSubLayer,
    RedisPubSubSender,
    RedisReliableLayer,
    RedisReliableSender,
)
from tests.conftest import RedisServer  # noqa: E402
from tests.topologies import ClusterSet  # noqa: E402

EXPIRY, CAPACITY = 60, 1000


def sender(kind: str, url: str, prefix: str) -> Any:
    if kind == "pubsub":
        return RedisPubSubSender(url, prefix)
    return RedisReliableSender(url, prefix, expiry=EXPIRY, capacity=CAPACITY)


def publish(kind: str, url: str, prefix: str, groups: int, seconds: float, conn: Any) -> None:
    out = sender(kind, url, prefix)
    conn.recv()  # go
    sent, n = 0, 0
    data = pack_message(json.dumps("x" * 100))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(100):
            out.group_send(f"g{n % groups}", data)
            n += 1
        sent += 100
    conn.send(sent)


class Counter:
    def __init__(self) -> None:
        self.member_id = uuid.uuid4().hex
        self.count = 0

    def deliver(self, delivery: Any) -> bool:
        self.count += 1
        return True

    def replay(self, replay: Any) -> None:
        pass


def nodes_stats(ports: list[int]) -> tuple[int, int]:
    commands = traffic = 0
    for port in ports:
        client = redis.Redis(port=port)
        stats = client.info("commandstats")
        commands += sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
        info = client.info("stats")
        traffic += int(info["total_net_input_bytes"]) + int(info["total_net_output_bytes"])
        client.close()
    return commands, traffic


async def run(
    topology: str, kind: str, url: str, ports: list[int], groups: int, seconds: float, n: int
) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:6]}"
    if kind == "pubsub":
        layer: Any = RedisPubSubLayer(url, prefix)
    else:
        layer = RedisReliableLayer(url, prefix, expiry=EXPIRY, capacity=CAPACITY)
    counter = Counter()
    for g in range(groups):
        await layer.group_add(f"g{g}", counter)
    context = mp.get_context("spawn")
    pipes, children = [], []
    for _ in range(n):
        parent, child = context.Pipe()
        process = context.Process(target=publish, args=(kind, url, prefix, groups, seconds, child))
        process.start()
        pipes.append(parent)
        children.append(process)
    await asyncio.sleep(2)  # the publishers import and connect
    commands, traffic = nodes_stats(ports)
    started = time.monotonic()
    for pipe in pipes:
        pipe.send("go")
    loop = asyncio.get_running_loop()
    sent = sum([await loop.run_in_executor(None, pipe.recv) for pipe in pipes])
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 30
    while counter.count < sent and time.monotonic() < deadline:
        last = counter.count
        await asyncio.sleep(0.5)
        if counter.count == last:
            break  # drained
    commands_after, traffic_after = nodes_stats(ports)
    for process in children:
        process.join(10)
    await layer.close()
    return {
        "topology": topology,
        "layer": kind,
        "groups": groups,
        "publishers": n,
        "broadcasts_per_s": round(sent / elapsed),
        "delivered_per_s": round(counter.count / (time.monotonic() - started)),
        "lost": sent - counter.count,
        "redis_commands_per_broadcast": round((commands_after - commands) / sent, 2),
        "redis_bytes_per_broadcast": round((traffic_after - traffic) / sent),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--publishers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        node = RedisServer(Path(directory))
        node.start()
        cluster = ClusterSet(Path(directory) / "cluster")
        cluster.start()
        try:
            for kind in ("pubsub", "reliable"):
                for name, url, ports in (
                    ("one node", node.url, [node.port]),
                    ("cluster of 3", cluster.url, cluster.ports),
                ):
                    result = asyncio.run(
                        run(name, kind, url, ports, args.groups, args.seconds, args.publishers)
                    )
                    print(json.dumps(result), flush=True)
        finally:
            node.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
