"""Fan-out benchmark: N real WebSocket clients on one `python -m web` process, one sender.

Prints one JSON object: connect time for N clients while each join is broadcast to the room,
server memory per idle connection, then M broadcasts (a client's `chat` frames, each carrying its
sequence number and send time) with delivered frames per second, publish-to-receipt latency
p50/p99, and lost and duplicated frames.

    .venv/bin/python bench/fanout.py --clients 100 --messages 200 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PORT": str(port), "TASKCAST_LOG_LEVEL": "warning", **env}
    process = subprocess.Popen([sys.executable, "-m", "web"], cwd=ROOT, env=full_env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


class Receiver:
    """One client: records (seq, latency) of every benchmark frame it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: dict[int, float] = {}
        self.duplicates = 0
        self.barriers: set[str] = set()
        self.changed = asyncio.Event()

    async def run(self) -> None:
        async for text in self.ws:
            now = time.time_ns()
            assert isinstance(text, str)
            marker = text.find("bench:")
            if marker < 0:
                continue
            _, seq, sent = text[marker:].split('"', 1)[0].split(":")[:3]
            if seq == "barrier":
                self.barriers.add(sent)
            elif int(seq) in self.seen:
                self.duplicates += 1
            else:
                self.seen[int(seq)] = (now - int(sent)) / 1e6
            self.changed.set()


async def wait_for(condition: object, receivers: list[Receiver], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        waits = [asyncio.ensure_future(r.changed.wait()) for r in receivers]
        await asyncio.wait(waits, timeout=min(remaining, 0.5), return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
        for receiver in receivers:
            receiver.changed.clear()
    return True


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else -1.0


async def bench(args: argparse.Namespace, port: int, pid: int) -> dict[str, object]:
    url = f"ws://127.0.0.1:{port}{args.endpoint}"
    action = args.action
    idle_before = rss_kib(pid)
    gate = asyncio.Semaphore(50)

    async def open_one() -> ClientConnection:
        async with gate:
            return await connect(url, open_timeout=60, max_queue=None)

    started = time.monotonic()
    sockets = await asyncio.gather(*(open_one() for _ in range(args.clients)))
    receivers = [Receiver(ws) for ws in sockets]
    tasks = [asyncio.create_task(r.run()) for r in receivers]
    sender = sockets[0]

    async def barrier(name: str) -> bool:
        payload = {"message": f"bench:barrier:{name}"}
        await sender.send(json.dumps({"action": action, "payload": payload}))
        return await wait_for(lambda: all(name in r.barriers for r in receivers), receivers, 120)

    await barrier("joined")
    connect_seconds = time.monotonic() - started
    idle_after = rss_kib(pid)

    interval = 1 / args.rate if args.rate else 0
    started = time.monotonic()
    for seq in range(args.messages):
        payload = {"message": f"bench:{seq}:{time.time_ns()}"}
        await sender.send(json.dumps({"action": action, "payload": payload}))
        if interval:
            await asyncio.sleep(max(0.0, started + (seq + 1) * interval - time.monotonic()))
    expected = args.messages * len(receivers)
    done = await wait_for(
        lambda: sum(len(r.seen) for r in receivers) >= expected, receivers, args.timeout
    )
    elapsed = time.monotonic() - started
    await barrier("end")
    latencies = [ms for r in receivers for ms in r.seen.values()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        "endpoint": args.endpoint,
        "clients": args.clients,
        "broadcasts": args.messages,
        "rate_per_s": args.rate or "max",
        "connect_all_with_join_broadcasts_s": round(connect_seconds, 2),
        "server_rss_per_idle_connection_kib": round((idle_after - idle_before) / args.clients, 1),
        "delivered": len(latencies),
        "lost": expected - len(latencies),
        "duplicated": sum(r.duplicates for r in receivers),
        "completed": done,
        "delivered_frames_per_s": round(len(latencies) / elapsed),
        "latency_ms_p50": percentile(latencies, 0.50),
        "latency_ms_p99": percentile(latencies, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50, help="broadcasts per second; 0 = max")
    parser.add_argument("--endpoint", default="/ws/chat")
    parser.add_argument("--action", default="chat")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    port = free_port()
    server = start_server(port, {})
    try:
        result = asyncio.run(bench(args, port, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
