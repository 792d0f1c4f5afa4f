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
import operator
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
        for pid, families in self._files():
            live = _alive(pid)
            for family in families:
                if family["type"] == "gauge" and not live:
                    continue  # a dead process holds no sockets
                metric = merged.setdefault(
                    family["name"], Metric(family["name"], family["help"], family["type"])
                )
                add = max if _one_per_host(family) else operator.add
                for name, labels, value in family["samples"]:
                    key = (metric.name, name, json.dumps(labels, sort_keys=True))
                    values[key] = add(values[key], float(value)) if key in values else value
        for (family_name, name, labels), value in values.items():
            merged[family_name].add_sample(name, json.loads(labels), value)
        yield from merged.values()

    def _files(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Each process's families, checked: a file that is not one of ours (another name, half
        a write, hand-made) is left out, never a failed scrape."""
        for path in sorted(self.directory.glob("*.json")):
            if not path.stem.isdigit():
                continue
            try:
                families = json.loads(path.read_text())
                for family in families:
                    _check(family)
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                continue  # gone meanwhile, or not ours
            yield int(path.stem), families


def _check(family: dict[str, Any]) -> None:
    if not isinstance(family["name"], str) or not isinstance(family["help"], str):
        raise TypeError("a family has a name and a help text")
    if family["type"] not in ("counter", "gauge", "histogram", "summary", "info", "unknown"):
        raise ValueError("not a family type")
    for name, labels, value in family["samples"]:
        if not (isinstance(name, str) and isinstance(labels, dict)):
            raise TypeError("a sample has a name and labels")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError("a sample's value is a number")


def _one_per_host(family: dict[str, Any]) -> bool:
    """Families that describe the program, not a share of the work (``python_info``, a start
    time): one value for the host, not a sum."""
    name = family["name"]
    return bool(family["type"] == "info" or name.endswith(("_info", "_start_time_seconds")))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # there, another user's
        return True
    return True
