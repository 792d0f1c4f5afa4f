"""/metrics for a host of several processes (taskcast.host_metrics): counts added up, gauges of
live processes only, one value for what describes the program, and nothing in the shared folder
that is not a process's file can fail a scrape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from taskcast.host_metrics import HostMetrics


def samples(text: str) -> dict[str, float]:
    return {
        s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
    }


def a_dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def test_a_host_adds_up_its_processes_and_ignores_what_is_not_theirs(tmp_path: Path) -> None:
    mine = CollectorRegistry()
    Counter("sent", "Frames sent.", registry=mine).inc(3)
    Gauge("open", "Open sockets.", registry=mine).set(2)
    Gauge("python_info", "The interpreter.", ["version"], registry=mine).labels("3").set(1)
    dead = [
        {
            "name": "sent",
            "type": "counter",
            "help": "Frames sent.",
            "samples": [["sent_total", {}, 4]],
        },
        {"name": "open", "type": "gauge", "help": "Open sockets.", "samples": [["open", {}, 7]]},
        {
            "name": "python_info",
            "type": "gauge",
            "help": "The interpreter.",
            "samples": [["python_info", {"version": "3"}, 1]],
        },
    ]
    (tmp_path / f"{a_dead_pid()}.json").write_text(json.dumps(dead))
    (tmp_path / f"{os.getppid()}.json").write_text(json.dumps(dead))  # another live one
    (tmp_path / "notes.json").write_text("[]")  # not a process's
    (tmp_path / "12.json").write_text("{half")  # half a write
    bad = [{"name": "sent", "type": "counter", "help": "", "samples": [["sent_total", {}, "9"]]}]
    (tmp_path / "13.json").write_text(json.dumps(bad))  # a value that is not a number
    (tmp_path / "14.json").write_text(json.dumps([{"name": 1}]))
    (tmp_path / "15.tmp").write_text("[]")
    host = CollectorRegistry()
    host.register(HostMetrics(tmp_path, mine))
    got = samples(generate_latest(host).decode())
    assert got["sent_total"] == 11  # every process's counts, the dead one's too
    assert got["open"] == 9  # the live ones' sockets: a dead process holds none
    assert got["python_info"] == 1  # one interpreter kind, not one per process
