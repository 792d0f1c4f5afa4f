"""The packages' boundaries: the library imports neither app package, and web and workers share
only ``showcase`` (settings, messages, groups, the queue's configuration): neither imports the
other. Each check runs in a fresh interpreter, so that nothing another test imported counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
for name in {modules!r}:
    __import__(name)
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & {forbidden!r})
print(",".join(loaded))
"""


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (["taskcast", "taskcast.layers", "taskcast.asyncapi"], {"web", "workers", "showcase"}),
        (["web.app", "web.__main__", "web.processes", "web.watch"], {"workers"}),
        (["workers.app", "workers.tasks", "workers.jobs", "workers.flower"], {"web"}),
    ],
)
def test_packages_import_only_what_they_may(modules: list[str], forbidden: set[str]) -> None:
    code = CHECK.format(modules=modules, forbidden=forbidden)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
