"""Counters for a process's consumers and layers, exposed in Prometheus' text format.

The hot path only bumps plain integers in dicts; ``MetricsCollector`` turns them into metric
families when ``/metrics`` is scraped.

| metric | type | labels |
|---|---|---|
| taskcast_connections | gauge | endpoint |
| taskcast_frames_received_total | counter | endpoint |
| taskcast_frames_sent_total | counter | endpoint |
| taskcast_error_frames_total | counter | endpoint, code |
| taskcast_dropped_frames_total | counter | endpoint |
| taskcast_reliable_delivery_lag_seconds | histogram | layer |
| taskcast_redis_reconnects_total | counter | layer |
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .layers.base import ChannelLayer

__all__ = ["Metrics", "MetricsCollector"]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.connections: defaultdict[str, int] = defaultdict(int)
        self.frames_in: defaultdict[str, int] = defaultdict(int)
        self.frames_out: defaultdict[str, int] = defaultdict(int)
        self.errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.dropped: defaultdict[str, int] = defaultdict(int)
        self.lag = Histogram(
            "taskcast_reliable_delivery_lag_seconds",
            "From a message's append to the stream to its fan-out in this process.",
            ["layer"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


class MetricsCollector(Collector):
    """Reads ``Metrics`` and the layers' reconnect counts on each scrape."""

    def __init__(self, metrics: Metrics, layers: Mapping[str, ChannelLayer]) -> None:
        self.metrics = metrics
        self.layers = layers

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield _family(GaugeMetricFamily, "taskcast_connections", "Open sockets.", m.connections)
        yield _family(
            CounterMetricFamily, "taskcast_frames_received", "Frames from clients.", m.frames_in
        )
        yield _family(
            CounterMetricFamily, "taskcast_frames_sent", "Frames to clients.", m.frames_out
        )
        yield _family(
            CounterMetricFamily,
            "taskcast_dropped_frames",
            "Frames dropped from a slow socket's full queue (pub/sub layers).",
            m.dropped,
        )
        errors = CounterMetricFamily(
            "taskcast_error_frames", "Error frames sent, by code.", labels=["endpoint", "code"]
        )
        for (endpoint, code), value in sorted(m.errors.items()):
            errors.add_metric([endpoint, code], value)
        yield errors
        reconnects = CounterMetricFamily(
            "taskcast_redis_reconnects", "Reconnections of a layer's reader.", labels=["layer"]
        )
        for alias, layer in self.layers.items():
            reconnects.add_metric([alias], layer.reconnects)
        yield reconnects


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    values: Mapping[str, int],
) -> Metric:
    family = kind(name, documentation, labels=["endpoint"])
    for endpoint, value in sorted(values.items()):
        family.add_metric([endpoint], value)
    return family
