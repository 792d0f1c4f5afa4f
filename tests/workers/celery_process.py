"""A Celery command (`celery -A workers …`) in the background, for the tests that run workers,
beat or `celery call` as an operator would; ``wait_for(text)`` waits for a line of its output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading


class CeleryProcess:
    """``own_group``: in a process group of its own, so that ``kill`` reaches the whole of it
    (a worker's main process and its pool) at once."""

    def __init__(self, args: list[str], env: dict[str, str], *, own_group: bool = False) -> None:
        self.own_group = own_group
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=own_group,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30, count: int = 1) -> None:
        """Until ``count`` lines of the output contain ``text``."""
        with self.changed:
            found = self.changed.wait_for(lambda: self.count(text) >= count, timeout)
        assert found, f"{text!r} not in the output:\n{''.join(self.lines[-30:])}"

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def _signal(self, sig: int) -> None:
        if self.own_group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL (to the whole group, with ``own_group``): nothing acknowledges, rejects or
        requeues what it was running."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
