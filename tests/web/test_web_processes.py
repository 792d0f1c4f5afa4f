"""Two web processes on one port (TASKCAST_WEB_PROCESSES=2): both serve, a broadcast reaches the
sockets of both, /metrics counts the whole host whichever process answers, a cursor from one
resumes on either, and SIGTERM closes every socket with 1001."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from showcase import ReliableChatConsumer
from showcase.messages import SystemNotify
from showcase.settings import Settings
from taskcast import SyncPublisher
from taskcast.testing import LiveClient, connect

pytestmark = pytest.mark.anyio

SOCKETS = 12


def connections(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "taskcast_connections":
            return sum(s.value for s in family.samples if s.labels["endpoint"] == "/ws/reliable")
    return 0


async def until(client: LiveClient, message: str) -> tuple[list[str], str | None]:
    """Frames' messages up to and including ``message``, and the newest cursor among them."""
    seen: list[str] = []
    cursor = None
    while message not in seen:
        frame = await client.receive(timeout=10)
        seen.append(frame["payload"]["message"])
        cursor = frame.get("cursor", cursor)
    return seen, cursor


@pytest.fixture
def two_processes(web_process: Callable[[dict[str, str]], Any], settings: Settings) -> Any:
    """`python -m web` with TASKCAST_WEB_PROCESSES=2, on the test's Redis prefix."""
    env = {"REDIS_URL": settings.redis_url, "TASKCAST_KEY_PREFIX": settings.key_prefix}
    return web_process(env | {"TASKCAST_WEB_PROCESSES": "2"})


async def test_two_processes_share_the_port_the_groups_and_the_metrics(
    two_processes: Any, settings: Settings
) -> None:
    web = two_processes
    pids: set[int] = set()
    for _ in range(200):  # a connection each: the kernel spreads them over both processes
        async with httpx.AsyncClient(base_url=f"http://{web.base}") as http:
            pids.add((await http.get("/healthz")).json()["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2
    assert web.process.pid not in pids  # the supervisor serves nothing itself
    publisher = SyncPublisher.from_configs(settings.layer_configs())
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(connect(web.ws_url("/ws/reliable")))
            for _ in range(SOCKETS)
        ]
        publisher.publish(ReliableChatConsumer, SystemNotify(payload="to all"))
        cursors = [(await until(client, "to all"))[1] for client in clients]
        # Whichever process answers, /metrics counts the sockets of both.
        async with asyncio.timeout(10):
            answered: set[float] = set()
            while answered != {SOCKETS} or len(answered) != 1:
                async with httpx.AsyncClient(base_url=f"http://{web.base}") as http:
                    answered = {connections((await http.get("/metrics")).text) for _ in range(4)}
                await asyncio.sleep(0.2)
        # A cursor from one process resumes on whichever the next connection lands on.
        publisher.publish(ReliableChatConsumer, SystemNotify(payload="while away"))
        for cursor in cursors[:4]:
            async with connect(web.ws_url(f"/ws/reliable?cursor={cursor}")) as again:
                seen, _ = await until(again, "while away")
                assert "to all" not in seen and seen.count("while away") == 1
        # SIGTERM to the supervisor: every socket, on both processes, is closed with 1001.
        stopping = asyncio.create_task(asyncio.to_thread(web.stop, signal.SIGTERM))
        codes = [await client.wait_closed() for client in clients]
        assert codes == [1001] * SOCKETS
        assert await stopping == 0


async def pids_answering(base: str, want: int) -> set[int]:
    """The pids that answer /healthz, over fresh connections, until ``want`` of them did."""
    pids: set[int] = set()
    async with asyncio.timeout(20):
        while len(pids) < want:
            async with httpx.AsyncClient(base_url=f"http://{base}") as http:
                with contextlib.suppress(httpx.TransportError):
                    pids.add((await http.get("/healthz")).json()["pid"])
    return pids


async def test_a_web_process_that_dies_is_replaced(two_processes: Any) -> None:
    web = two_processes
    first = await pids_answering(web.base, 2)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    # The port keeps answering meanwhile (the other process), and a new process joins it.
    replaced = await pids_answering(web.base, 2)
    while victim in replaced or len(replaced) < 2:
        replaced = await pids_answering(web.base, 2)
    assert len(replaced - first) == 1


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(ChildProcessError):  # a zombie of this test's own is gone too
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    return False


async def test_web_processes_go_with_their_supervisor_even_a_killed_one(
    two_processes: Any,
) -> None:
    web = two_processes
    pids = await pids_answering(web.base, 2)
    web.kill()  # SIGKILL: the supervisor cannot pass anything on
    for _ in range(150):  # 15 s at most
        if all(gone(pid) for pid in pids):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"web processes outlived their supervisor: {pids}")


def test_more_web_processes_than_the_host_can_use_are_refused() -> None:
    env = {**os.environ, "TASKCAST_WEB_PROCESSES": str(4 * (os.cpu_count() or 1) + 1)}
    result = subprocess.run(
        [sys.executable, "-m", "web"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"taskcast: TASKCAST_WEB_PROCESSES is {env['TASKCAST_WEB_PROCESSES']}: at most 4 per "
        f"core ({4 * (os.cpu_count() or 1)} here; 0 means one per core)"
    ]


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rpartition(")")[2].split()[1]) == pid:
                    found.add(int(entry))
    return found


def test_sigterm_while_processes_start_stops_every_one(settings: Settings) -> None:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "TASKCAST_KEY_PREFIX": settings.key_prefix,
        "TASKCAST_WEB_PROCESSES": str(4 * (os.cpu_count() or 1)),
        "PORT": "0",
    }
    web = subprocess.Popen(
        [sys.executable, "-m", "web"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert web.stdout is not None
        assert "web processes on" in web.stdout.readline()  # printed as the first one starts
        web.send_signal(signal.SIGTERM)
        _, errors = web.communicate(timeout=60)
    finally:
        web.kill()
    assert web.returncode == 0
    # Each process got the signal (none started after it was left out, to be killed at last).
    assert "killed" not in errors, errors[-2000:]
