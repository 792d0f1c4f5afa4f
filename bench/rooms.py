"""Rooms benchmark: N clients each in a room of its own, against the same N clients in one room,
on Taskcast's ``/ws/room/{room_name}`` (events published with ``SyncPublisher`` addressed
``to={"room_name": ...}``) and on the ceiling's rooms (bench/ceiling.py: a raw ``PUBLISH`` per
room, one pattern subscription).

Own rooms: M broadcasts (5,000), broadcast i to room i mod N (each reaches one client). One
room: M broadcasts (1,000) to the room (each reaches N clients). What a broadcast costs must not
grow with the number of rooms a process holds: Redis commands per broadcast, and the web
process's CPU per broadcast and per delivered frame (from /proc), with delivery figures as in
fanout.py. Own rooms run at N clients and at 10 (the same broadcasts among fewer rooms).

    .venv/bin/python bench/rooms.py                     # 1,000 clients (~3 minutes)
    .venv/bin/python bench/rooms.py --clients 200 --broadcasts 400 --own-broadcasts 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import (  # noqa: E402 - after the path
    REDIS_URL,
    NodeClients,
    drop_prefix,
    free_port,
    node_available,
    percentile,
    start_server,
    stop_server,
)

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def settle(pid: int, quiet: float = 1.0, limit: float = 120.0) -> None:
    """Until the server has used no CPU for ``quiet`` seconds (the joins fanned out)."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return
        last = now


class Publisher:
    def __init__(self, target: str, prefix: str) -> None:
        self.target = target
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.channel = f"{prefix}:ceiling:room:"
        if target == "taskcast":
            from showcase.settings import Settings
            from taskcast import SyncPublisher

            settings = Settings(redis_url=REDIS_URL, key_prefix=prefix)
            self.sync = SyncPublisher.from_configs(settings.layer_configs())

    def send(self, room: str, text: str) -> None:
        if self.target == "ceiling":
            frame = {"action": "room_notification", "payload": {"message": text, "room_name": room}}
            self.redis.publish(self.channel + room, json.dumps(frame))
        else:
            from showcase import RoomConsumer
            from showcase.messages import SystemNotify

            self.sync.publish(RoomConsumer, SystemNotify(payload=text), to={"room_name": room})

    def commands(self) -> dict[str, int]:
        stats = self.redis.info("commandstats")
        return {k[8:]: int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info"}


def run(target: str, layout: str, clients_n: int, broadcasts: int) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    port = free_port()
    server = start_server("ceiling" if target == "ceiling" else "pubsub", port, prefix)
    publisher = Publisher(target, prefix)
    own = layout == "own"
    room = "r{i}" if own else "all"
    per_client = broadcasts // clients_n if own else broadcasts
    out = f"/tmp/taskcast-rooms-{prefix.replace(':', '-')}.f32"
    clients = NodeClients(f"ws://127.0.0.1:{port}/ws/room/{room}", clients_n, per_client, out)
    try:
        assert clients.recv() == "connected"
        settle(server.pid)
        channels = len(publisher.redis.pubsub_channels(f"{prefix}*"))
        before, cpu_before = publisher.commands(), cpu_seconds(server.pid)
        clients.send("120")
        first = time.time()
        for seq in range(broadcasts):
            name = f"r{seq % clients_n}" if layout == "own" else "all"
            publisher.send(
                name, f"bench:{seq // clients_n if layout == 'own' else seq}:{time.time_ns()}"
            )
        after = publisher.commands()  # every broadcast is in: publishing is synchronous
        report = clients.recv()
        cpu = cpu_seconds(server.pid) - cpu_before  # before the clients hang up (leave notices)
        used = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}
        latencies = array("f")
        latencies.frombytes(Path(out).read_bytes())
        ordered = sorted(latencies)
        received = report["received"]
        return {
            "target": target,
            "rooms": clients_n if layout == "own" else 1,
            "clients": clients_n,
            "broadcasts": broadcasts,
            "delivered": received,
            "lost": clients_n * per_client - received,
            "duplicated": report["duplicates"],
            "delivered_frames_per_s": round(received / max(1e-9, report["last"] - first)),
            "latency_ms_p50": percentile(ordered, 0.5),
            "latency_ms_p99": percentile(ordered, 0.99),
            "redis_commands_per_broadcast": round(sum(used.values()) / broadcasts, 2),
            "redis_commands": used,
            "server_cpu_ms_per_broadcast": round(cpu * 1000 / broadcasts, 3),
            "server_cpu_us_per_delivered_frame": round(cpu * 1e6 / max(1, received), 1),
            "channels_subscribed": channels,
        }
    finally:
        if clients.is_alive():
            clients.kill()
        if os.path.exists(out):
            os.unlink(out)
        stop_server(server)
        drop_prefix(publisher.redis, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=1000, help="to the one room")
    parser.add_argument("--own-broadcasts", type=int, default=5000, help="among the own rooms")
    args = parser.parse_args()
    if not node_available():
        raise SystemExit("rooms.py needs bench/node_modules (npm install --prefix bench)")
    # Own rooms at N and at 10: the same cost per broadcast whatever the number of rooms held.
    own, one = args.own_broadcasts, args.broadcasts
    for layout, clients_n, count in (
        ("own", args.clients, own),
        ("own", 10, own),
        ("one", args.clients, one),
    ):
        for target in ("ceiling", "taskcast"):
            print(json.dumps(run(target, layout, clients_n, count)), flush=True)


if __name__ == "__main__":
    main()
