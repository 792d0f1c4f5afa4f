"""Metrics of every process of a host, from whichever process answers the scrape.

Each web process writes its own samples (its registry, as ``/metrics`` would show it) to a file
of its own in a folder the processes share, once a second and when it answers a scrape; the
process that answers adds up every file: counters and histograms over every process that ever
wrote one (a process that died keeps its counts, until the folder is emptied at the next start),
gauges (open sockets) over the live processes only. prometheus-client's multiprocess mode does
the same with memory-mapped files, but only for metric objects it made: the counters here are
plain integers the hot path bumps and a collector reads (see ``taskcast.metrics``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

__all__ = ["HostMetrics"]


class HostMetrics(Collector):
    def __init__(self, directory: Path, registry: CollectorRegistry) -> None:
        self.directory = directory
        self.registry = registry  # this process's own
        self.path = directory / f"{os.getpid()}.json"

    def write(self) -> None:
        """This process's samples, replacing its last ones (never half a file: a rename)."""
        families = [
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "samples": [
                    [s.name, s.labels, s.value]
                    for s in family.samples
                    if not s.name.endswith("_created")  # a time, not a count
                ],
            }
            for family in self.registry.collect()
        ]
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(families))
        partial.replace(self.path)

    def collect(self) -> Iterator[Metric]:
        self.write()
        merged: dict[str, Metric] = {}
        values: dict[tuple[str, str, str], float] = {}
        for path in sorted(self.directory.glob("*.json")):
            live = _alive(int(path.stem))
            try:
                families = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # gone meanwhile
            for family in families:
                if family["type"] == "gauge" and not live:
                    continue  # a dead process holds no sockets
                metric = merged.setdefault(
                    family["name"], Metric(family["name"], family["help"], family["type"])
                )
                for name, labels, value in family["samples"]:
                    key = (metric.name, name, json.dumps(labels, sort_keys=True))
                    values[key] = values.get(key, 0.0) + value
        for (family_name, name, labels), value in values.items():
            merged[family_name].add_sample(name, json.loads(labels), value)
        yield from merged.values()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # there, another user's
        return True
    return True
