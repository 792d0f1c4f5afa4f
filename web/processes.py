"""Several web processes on one port: ``TASKCAST_WEB_PROCESSES=N`` (0: one per core).

Each process is a whole web tier of its own (its own uvicorn, layers, subscriber connections and
limits) that binds the port with SO_REUSEPORT; the kernel spreads new connections across them.
Chosen over uvicorn's ``--workers`` (one socket shared by forked workers), because each process
then runs this package's own server (the handshake guard, and on SIGTERM every socket closed
with 1001 first, see ``web.__main__``) and because the kernel balances by connection, where a
shared socket feeds whichever process wakes first. The supervisor here holds the port (bound,
never listening: it accepts nothing), starts the processes, starts again one that dies, and on
SIGTERM or SIGINT passes the signal on and waits for them. ``/metrics`` adds up every process
(``taskcast.host_metrics``) through a folder they share.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

log = logging.getLogger("taskcast.web")

RESTART_DELAY = 1.0  # seconds before a process that died is started again
STOP_WAIT = 15.0  # seconds the processes get to close their sockets and exit
EARLY = 5.0  # a process that dies this soon after its start did not start
EARLY_DEATHS = 3  # in a row: the supervisor gives up (a restart would fail the same way)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def processes_wanted(setting: int) -> int:
    """How many web processes ``TASKCAST_WEB_PROCESSES`` asks for; ``ValueError`` past four per
    core (more buys nothing but memory, and a typo of 1000 would bring the host down)."""
    cores = os.cpu_count() or 1
    if setting > 4 * cores:
        raise ValueError(
            f"TASKCAST_WEB_PROCESSES is {setting}: at most 4 per core ({4 * cores} here; "
            "0 means one per core)"
        )
    return setting or cores


class Supervisor:
    def __init__(self, host: str, port: int, count: int) -> None:
        self.count = count
        self.holder = reuse_port_socket(host, port)  # the port, even when PORT=0
        self.host, self.port = host, self.holder.getsockname()[1]
        self.metrics = Path(tempfile.mkdtemp(prefix="taskcast-metrics-"))
        self.context = multiprocessing.get_context("spawn")
        self.children: list[BaseProcess | None] = [None] * count
        self.started = [0.0] * count
        self.early_deaths = 0
        self.stopping = False
        self.signalled: set[int] = set()  # the processes SIGTERM was passed on to

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        print(f"taskcast: {self.count} web processes on {self.host}:{self.port}", flush=True)
        try:
            while not self.stopping:
                for index, child in enumerate(self.children):
                    if self.stopping:  # a signal while processes start: start no more
                        break
                    if child is not None and child.is_alive():
                        continue
                    if child is not None:
                        early = time.monotonic() - self.started[index] < EARLY
                        self.early_deaths = self.early_deaths + 1 if early else 0
                        if self.early_deaths >= EARLY_DEATHS:
                            print("taskcast: web processes exit as they start; stopping")
                            self._stop(signal.SIGTERM, None)
                            self._wait()
                            return 1
                        log.warning(
                            "web process %s exited with %s; starting another",
                            child.pid,
                            child.exitcode,
                        )
                        time.sleep(RESTART_DELAY)
                        if self.stopping:
                            break
                    self.children[index] = self._start()
                    self.started[index] = time.monotonic()
                time.sleep(0.2)
            return self._wait()
        finally:
            self.holder.close()
            shutil.rmtree(self.metrics, ignore_errors=True)

    def _start(self) -> BaseProcess:
        env = {"TASKCAST_METRICS_DIR": str(self.metrics), "PORT": str(self.port)}
        child = self.context.Process(target=serve_one, args=(self.host, self.port, env))
        child.start()
        return child

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._pass_on()

    def _pass_on(self) -> None:
        for child in self.children:
            pid = None if child is None else child.pid
            if pid is not None and pid not in self.signalled and child and child.is_alive():
                self.signalled.add(pid)
                os.kill(pid, signal.SIGTERM)

    def _wait(self) -> int:
        self._pass_on()  # and to one that was starting as the signal came
        deadline = time.monotonic() + STOP_WAIT
        for child in self.children:
            if child is None:
                continue
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                log.warning("web process %s did not stop in %.0f s; killed", child.pid, STOP_WAIT)
                child.kill()
                child.join(5)
        return 0


def serve_one(host: str, port: int, env: dict[str, str]) -> None:
    """One web process (in a child of the supervisor). It goes when its supervisor goes, even
    one killed with SIGKILL: no process is left serving on its own."""
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    os.environ.update(env)
    from web.__main__ import serve

    serve(sockets=[_listening(host, port)])


def _exit_with(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)  # the usual way out: every socket closed with 1001


def _listening(host: str, port: int) -> socket.socket:
    sock = reuse_port_socket(host, port)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
