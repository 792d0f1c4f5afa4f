"""Fan-out benchmark: N real WebSocket clients on one web process, M broadcasts published from
another process, on Taskcast's pub/sub and reliable layers and on the ceiling (bench/ceiling.py).

Prints one JSON object per run: delivered frames/s, latency p50/p99 from publish to receipt, lost
and duplicated frames, Redis commands per broadcast (INFO commandstats), the time for the N clients
to connect while each join is broadcast to the room, and server memory per idle connection.

    .venv/bin/python bench/fanout.py --target pubsub --clients 1000 --broadcasts 200 --rate 0
    .venv/bin/python bench/fanout.py --suite          # the README's table (several minutes)
    .venv/bin/python bench/fanout.py --processes-suite  # one web process against two
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

import httpx
import redis

from taskcast.testing import stalled_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PATHS = {
    "pubsub": "/ws/chat",
    "reliable": "/ws/reliable",
    "idle": "/ws/analytics",
    "ceiling": "/ws",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def tree_rss_kib(pid: int) -> int:
    """The memory of a process and its descendants (a supervisor and its web processes)."""
    total = rss_kib(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                total += tree_rss_kib(int(child))
    return total


def start_server(
    target: str,
    port: int,
    prefix: str,
    extra: dict[str, str] | None = None,
    processes: int = 1,
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PORT": str(port), "REDIS_URL": REDIS_URL}
    env |= {"TASKCAST_LOG_LEVEL": "warning", "TASKCAST_KEY_PREFIX": prefix}
    env |= {"CEILING_CHANNEL": f"{prefix}:ceiling", "TASKCAST_WEB_PROCESSES": str(processes)}
    env |= extra or {}
    if target == "ceiling":
        command = [sys.executable, "-m", "uvicorn", "bench.ceiling:app", "--port", str(port)]
        # The same server settings as `python -m web`, so that only the application differs.
        command += ["--ws", "websockets-sansio", "--ws-per-message-deflate", "false"]
        command += ["--log-level", "warning"]
        if processes > 1:  # uvicorn's own: one socket, shared by its worker processes
            command += ["--workers", str(processes)]
    else:
        command = [sys.executable, "-m", "web"]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def clean_up(
    children: list[Any], server: subprocess.Popen[bytes], client: redis.Redis, prefix: str
) -> None:
    """After a run: its client processes ended, its server stopped, its keys deleted."""
    for process in children:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    stop_server(server)
    drop_prefix(client, prefix)


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete what a run left in Redis under its key prefix."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


# Client processes -----------------------------------------------------------------------------
# Node's ws (bench/client.mjs, after `npm install --prefix bench`) by default: a Python client
# costs more CPU per frame than the server does, and the clients share the server's two cores.


class NodeClients:
    def __init__(self, url: str, count: int, broadcasts: int, out: str) -> None:
        command = [
            "node",
            str(ROOT / "bench" / "client.mjs"),
            url,
            str(count),
            str(broadcasts),
            out,
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def recv(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        return line if line == "connected" else json.loads(line)

    def send(self, timeout: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"go {timeout}\n")
        self.process.stdin.flush()

    def join(self, timeout: float) -> None:
        self.process.wait(timeout=timeout)

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.kill()


def node_available() -> bool:
    return (ROOT / "bench" / "node_modules" / "ws").is_dir()


def client_process(url: str, count: int, broadcasts: int, conn: Any, out: str) -> None:
    asyncio.run(clients(url, count, broadcasts, conn, out))


async def clients(url: str, count: int, broadcasts: int, conn: Any, out: str) -> None:
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(50)

    async def open_one() -> Any:
        async with gate:
            return await connect(url, open_timeout=120, max_queue=None, ping_interval=None)

    sockets = await asyncio.gather(*(open_one() for _ in range(count)))
    conn.send("connected")
    latencies = array("f")
    seen: list[set[int]] = [set() for _ in sockets]
    state = {"duplicates": 0, "barrier": 0.0, "done": 0}
    finished = asyncio.Event()

    async def receive(index: int, ws: Any) -> None:
        mine = seen[index]
        async for text in ws:
            now = time.time_ns()
            at = text.find("bench:")
            if at < 0:
                continue
            _, seq, sent = text[at : text.index('"', at)].split(":")
            if seq == "barrier":
                state["barrier"] = max(state["barrier"], now / 1e9)
                continue
            number = int(seq)
            if number in mine:
                state["duplicates"] += 1
                continue
            mine.add(number)
            latencies.append((now - int(sent)) / 1e6)
            if len(mine) == broadcasts:
                state["done"] += 1
                if state["done"] == len(sockets):
                    finished.set()

    tasks = [asyncio.create_task(receive(i, ws)) for i, ws in enumerate(sockets)]
    loop = asyncio.get_running_loop()
    timeout = float(await loop.run_in_executor(None, conn.recv))  # "go", with the time allowed
    if broadcasts:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), timeout)
    else:
        await asyncio.sleep(timeout)
    Path(out).write_bytes(latencies.tobytes())  # noqa: ASYNC240 - once, at the end
    conn.send(
        {
            "received": sum(len(s) for s in seen),
            "duplicates": state["duplicates"],
            "barrier": state["barrier"],
            "last": time.time(),
        }
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# The publisher (this process) -----------------------------------------------------------------


class Publisher:
    def __init__(self, target: str, prefix: str) -> None:
        self.target = target
        self.redis = redis.Redis.from_url(REDIS_URL)
        if target in ("pubsub", "reliable", "idle"):
            from showcase import AnalyticsConsumer, ChatConsumer, ReliableChatConsumer
            from showcase.messages import SystemNotify
            from showcase.settings import Settings
            from taskcast import SyncPublisher

            settings = Settings(redis_url=REDIS_URL, key_prefix=prefix)
            self.sync = SyncPublisher.from_configs(settings.layer_configs())
            self.consumer = {"pubsub": ChatConsumer, "reliable": ReliableChatConsumer}.get(
                target, AnalyticsConsumer
            )
            self.event = SystemNotify
        self.channel = f"{prefix}:ceiling"

    def send(self, text: str) -> None:
        if self.target == "ceiling":
            frame = json.dumps({"action": "chat_notification", "payload": {"message": text}})
            self.redis.publish(self.channel, frame)
        else:
            self.sync.publish(self.consumer, self.event(payload=text))

    def clients(self) -> int:
        return int(self.redis.info("clients")["connected_clients"])

    def commands(self) -> int:
        stats = self.redis.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")

    def writes(self) -> int:
        stats = self.redis.info("commandstats")
        return sum(
            int(stats.get(k, {}).get("calls", 0)) for k in ("cmdstat_publish", "cmdstat_evalsha")
        )


def percentile(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else -1.0


def run(
    target: str,
    clients_n: int,
    broadcasts: int,
    rate: float,
    procs: int,
    client: str = "node",
    stalled: int = 0,
    padding: int = 0,
    web_processes: int = 1,
) -> dict[str, Any]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    port = free_port()
    publisher = Publisher(target, prefix)
    redis_clients_before = publisher.clients()
    server = start_server(target, port, prefix, processes=web_processes)
    url = f"ws://127.0.0.1:{port}{PATHS[target]}"
    context = mp.get_context("spawn")
    shares = [clients_n // procs + (1 if i < clients_n % procs else 0) for i in range(procs)]
    children: list[Any] = []
    pipes: list[Any] = []
    outs: list[str] = []
    try:
        idle_before = tree_rss_kib(server.pid)
        writes_before = publisher.writes()
        started = time.time()
        for i, share in enumerate(shares):
            parent, child = context.Pipe()
            out = f"/tmp/taskcast-bench-{prefix.replace(':', '-')}-{i}.f32"
            if client == "node":
                node = NodeClients(url, share, broadcasts, out)
                children.append(node)
                pipes.append(node)
            else:
                process = context.Process(
                    target=client_process, args=(url, share, broadcasts, child, out)
                )
                process.start()
                children.append(process)
                pipes.append(parent)
            outs.append(out)
        for pipe in pipes:
            assert pipe.recv() == "connected"
        stuck = [stalled_client("127.0.0.1", port, PATHS[target]) for _ in range(stalled)]
        # Every join notice has been broadcast once the layer saw N writes; a barrier published
        # after them reaches each client after all the joins it receives.
        joins = 0 if target in ("ceiling", "idle") else clients_n
        deadline = time.monotonic() + 300
        while publisher.writes() - writes_before < joins and time.monotonic() < deadline:
            time.sleep(0.01)
        if target != "idle":
            publisher.send(f"bench:barrier:{time.time_ns()}")
        time.sleep(1.0 if clients_n < 2000 else 3.0)  # let the room settle before measuring
        idle_after = tree_rss_kib(server.pid)
        redis_clients = publisher.clients() - redis_clients_before
        commands_before = publisher.commands()
        timeout = max(30.0, broadcasts / rate * 2 if rate else 120.0) if broadcasts else 1.0
        for pipe in pipes:
            pipe.send(str(timeout))
        first = time.time()
        interval = 1 / rate if rate else 0.0
        pad = "x" * padding + " " if padding else ""
        for seq in range(broadcasts):
            publisher.send(f"{pad}bench:{seq}:{time.time_ns()}")
            if interval:
                time.sleep(max(0.0, first + (seq + 1) * interval - time.time()))
        commands = publisher.commands() - commands_before
        reports = [pipe.recv() for pipe in pipes]
        busy_rss = tree_rss_kib(server.pid)
        for sock in stuck:
            sock.close()
        latencies = array("f")
        for out in outs:
            latencies.frombytes(Path(out).read_bytes())
            os.unlink(out)
        ordered = sorted(latencies)
        expected = clients_n * broadcasts
        received = sum(r["received"] for r in reports)
        elapsed = max(r["last"] for r in reports) - first  # to the last client's last frame
        return {
            "target": target,
            "web_processes": web_processes,
            "client": client,
            "clients": clients_n,
            "broadcasts": broadcasts,
            "rate_per_s": rate or "max",
            "delivered": received,
            "lost": expected - received,
            "duplicated": sum(r["duplicates"] for r in reports),
            "delivered_frames_per_s": round(received / elapsed) if broadcasts else 0,
            "latency_ms_p50": percentile(ordered, 0.50),
            "latency_ms_p99": percentile(ordered, 0.99),
            "redis_commands_per_broadcast": round(commands / broadcasts, 2) if broadcasts else None,
            "connect_all_s": None
            if target == "idle"
            else round(max(r["barrier"] for r in reports) - started, 2),
            "server_rss_per_connection_kib": round((idle_after - idle_before) / clients_n, 1),
            "server_redis_connections": redis_clients,
            "stalled_clients": stalled,
            "server_rss_growth_during_broadcasts_kib": busy_rss - idle_after,
        }
    finally:
        clean_up(children, server, publisher.redis, prefix)


def suite() -> None:
    results = []

    client = "node" if node_available() else "python"

    def go(*args: Any) -> dict[str, Any]:
        result = run(*args, client=client)
        print(json.dumps(result), flush=True)
        results.append(result)
        return result

    for clients_n, flat_out in ((100, 1000), (1000, 200)):
        procs = 1 if clients_n <= 100 else 2
        best = {t: go(t, clients_n, flat_out, 0, procs) for t in ("ceiling", "pubsub", "reliable")}
        for t in ("pubsub", "reliable"):
            ratio = best[t]["delivered_frames_per_s"] / best["ceiling"]["delivered_frames_per_s"]
            print(
                json.dumps({"ratio_to_ceiling": t, "clients": clients_n, "ratio": round(ratio, 2)})
            )
        for t in ("ceiling", "pubsub", "reliable"):
            go(t, clients_n, 250, 50, procs)
    for t in ("pubsub", "reliable"):
        go(t, 10, 500, 0, 1)  # Redis commands per broadcast at 10 clients, against 1,000 above
    for clients_n in (1000, 5000):
        go("idle", clients_n, 0, 0, 2)


def processes_suite() -> None:
    """One web process against two, the same client load; the ceiling the same way (uvicorn's
    --workers). The README's "Every core" table."""
    client = "node" if node_available() else "python"
    for clients_n, broadcasts in ((100, 1000), (1000, 200)):
        for target in ("ceiling", "pubsub", "reliable"):
            for processes in (1, 2):
                result = run(target, clients_n, broadcasts, 0, 2, client, web_processes=processes)
                print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--target", choices=sorted(PATHS), default="pubsub")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--broadcasts", type=int, default=200)
    parser.add_argument(
        "--rate", type=float, default=50, help="broadcasts per second; 0 = flat out"
    )
    parser.add_argument("--procs", type=int, default=0, help="client processes (default: 1 or 2)")
    parser.add_argument("--client", choices=("node", "python"), default=None)
    parser.add_argument("--stalled", type=int, default=0, help="clients that never read")
    parser.add_argument("--padding", type=int, default=0, help="extra bytes per broadcast")
    parser.add_argument("--web-processes", type=int, default=1, help="server processes")
    parser.add_argument("--suite", action="store_true")
    parser.add_argument("--processes-suite", action="store_true", help="1 vs 2 web processes")
    args = parser.parse_args()
    if args.processes_suite:
        processes_suite()
        return
    if args.suite:
        suite()
        return
    procs = args.procs or (1 if args.clients <= 100 else 2)
    client = args.client or ("node" if node_available() else "python")
    result = run(
        args.target,
        args.clients,
        args.broadcasts,
        args.rate,
        procs,
        client,
        stalled=args.stalled,
        padding=args.padding,
        web_processes=args.web_processes,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
