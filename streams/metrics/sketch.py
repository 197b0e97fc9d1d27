"""A mergeable latency sketch with fixed relative accuracy (DDSketch-style log buckets).

A value x > 0 falls in bucket i = ceil(log(x) / log(gamma)), gamma = (1 + a) / (1 - a); the
bucket's representative value 2 * gamma**i / (gamma + 1) is within a relative error `a` of
every value in the bucket. A sketch is only `bucket index -> count`, so sketches of windows
merge exactly by adding counts: an hour is the sum of its minutes, and ClickHouse can do the
same with sumMap(latency_sketch) (see clickhouse/002_analyst_views.sql, which must use the same
constants and the same rank rule as quantile() below).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
# Latencies below 10 microseconds are clamped: an LLM call never takes less, and a log scale
# needs a floor (0 or negative latencies from a broken client would otherwise have no bucket).
MIN_VALUE_MS = 0.01


def bucket_index(value_ms: float) -> int:
    return math.ceil(math.log(max(value_ms, MIN_VALUE_MS)) / _LOG_GAMMA)


def bucket_value(index: int) -> float:
    return 2.0 * GAMMA ** index / (GAMMA + 1.0)


class LatencySketch:
    """learn_one(latency_ms) / quantile(q); merge() adds another sketch's counts."""

    __slots__ = ("bins", "count")

    def __init__(self, bins: Mapping[int, int] | None = None):
        self.bins: dict[int, int] = dict(bins or {})
        self.count = sum(self.bins.values())

    def learn_one(self, value_ms: float) -> "LatencySketch":
        i = bucket_index(value_ms)
        self.bins[i] = self.bins.get(i, 0) + 1
        self.count += 1
        return self

    def learn_many(self, values_ms: Iterable[float]) -> "LatencySketch":
        for v in values_ms:
            self.learn_one(v)
        return self

    def merge(self, other: "LatencySketch") -> "LatencySketch":
        for i, n in other.bins.items():
            self.bins[i] = self.bins.get(i, 0) + n
        self.count += other.count
        return self

    def quantile(self, q: float) -> float:
        """The value at rank q * (n - 1) (the 'lower' rank of numpy), within the relative
        accuracy; 0.0 for an empty sketch."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile q={q} must be between 0 and 1")
        if self.count == 0:
            return 0.0
        rank = q * (self.count - 1)
        seen = 0
        for i in sorted(self.bins):
            seen += self.bins[i]
            if seen > rank:
                return bucket_value(i)
        return bucket_value(max(self.bins))  # unreachable unless counts were edited by hand

    # -- wire form: the Avro map / ClickHouse Map(String, Int64) ---------------------------
    def to_map(self) -> dict[str, int]:
        return {str(i): n for i, n in sorted(self.bins.items())}

    @classmethod
    def from_map(cls, m: Mapping[str, int]) -> "LatencySketch":
        return cls({int(k): int(v) for k, v in m.items()})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LatencySketch) and self.bins == other.bins

    def __repr__(self) -> str:
        return f"LatencySketch(count={self.count}, buckets={len(self.bins)})"
