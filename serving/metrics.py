"""Prometheus metrics in the text exposition format (version 0.0.4), written here rather than
pulling in a client library: counters, gauges and fixed-bucket histograms with labels."""
from __future__ import annotations

import math
import threading
from typing import Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, doc: str, labels: Iterable[str] = ()):
        self.name, self.doc, self.label_names = name, doc, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, doc: str, labels: Iterable[str] = ()):
        super().__init__(name, doc, labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_fmt(v)}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, doc: str, labels: Iterable[str] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS):
        super().__init__(name, doc, labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[tuple[str, ...], list[float]] = {}   # bucket counts..., sum, count

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            row = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    row[i] += 1
            row[-2] += value
            row[-1] += 1

    def count(self, **labels: str) -> float:
        row = self._series.get(self._key(labels))
        return row[-1] if row else 0.0

    def render(self) -> list[str]:
        out = self.header()
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for key, row in items:
            for i, bound in enumerate(self.buckets):
                le = 'le="' + _fmt(bound) + '"'
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {_fmt(row[i])}")
            inf = 'le="+Inf"'
            out.append(f"{self.name}_bucket{_labels(self.label_names, key, inf)} {_fmt(row[-1])}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_fmt(row[-2])}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {_fmt(row[-1])}")
        return out


class Registry:
    def __init__(self):
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric):
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return self._add(Counter(name, doc, labels))

    def gauge(self, name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return self._add(Gauge(name, doc, labels))

    def histogram(self, name: str, doc: str, labels: Iterable[str] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
        return self._add(Histogram(name, doc, labels, buckets))

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines += metric.render()
        return "\n".join(lines) + "\n"


class ServingMetrics:
    """The serving tier's metric set (names are the dashboard's contract)."""

    def __init__(self):
        r = self.registry = Registry()
        self.requests = r.counter("distillery_serve_requests_total", "Chat completion requests answered", ("route", "status"))
        self.latency = r.histogram("distillery_serve_request_seconds", "End-to-end request latency", ("route",))
        self.route_overhead = r.histogram("distillery_serve_route_seconds", "Time spent assigning the cluster and routing", ())
        self.escalations = r.counter("distillery_serve_escalations_total", "Specialist answers replaced by the next model in the escalation chain", ("adapter",))
        self.format_errors = r.counter("distillery_serve_format_errors_total", "Malformed specialist answers on served traffic", ("adapter",))
        self.shadow_calls = r.counter("distillery_shadow_calls_total", "Shadow comparisons run", ("adapter", "outcome"))
        self.shadow_dropped = r.counter("distillery_shadow_dropped_total", "Shadow calls skipped because the shadow queue was full", ())
        self.commands = r.counter("distillery_promote_commands_total", "promote commands applied", ("action", "result"))
        self.decisions = r.counter("distillery_policy_decisions_total", "Promotion policy decisions published", ("action", "trigger"))
        self.adapter_loads = r.counter("distillery_adapter_loads_total", "Adapter load attempts", ("result",))
        self.adapter_load_seconds = r.histogram("distillery_adapter_load_seconds", "Adapter hot-load time (verify + load)", ())
        self.loaded_adapters = r.gauge("distillery_loaded_adapters", "Adapters resident in this process", ())
        self.publish_errors = r.counter("distillery_publish_errors_total", "Records that could not be published", ("topic",))
        self.snapshot_version = r.gauge("distillery_cluster_snapshot_version", "Cluster model version in use (-1: none yet)", ())
        self.snapshot_version.set(-1)

    def render(self) -> str:
        return self.registry.render()
