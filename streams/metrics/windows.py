"""Tumbling metric windows per (tenant, cluster_id, model): the ledger's unit of account.

    agg = WindowAggregator(window_s=60, grace_s=120)
    agg.add(observation)              # an Observation dict (schemas/observation.v1.avsc)
    rows = agg.flush(watermark_ms)    # MetricsWindow dicts (schemas/metrics_window.v1.avsc)
    blob = agg.to_bytes(); agg = WindowAggregator.from_bytes(blob)   # checkpoint / restore

Time is event time (the observation's ts). A window [start, start + window) is emitted by the
first flush whose watermark reaches its end (revision 1) and stays open for `grace` more:
  - an event for an open window updates it and the next flush re-emits it with revision + 1
    (the sink's ReplacingMergeTree(revision) keeps the newest);
  - an event whose window ended more than `grace` before the watermark is *late*: it is
    counted in stats["late_dropped"] and dropped. The raw observation table still holds it,
    so spend views over `observations` stay complete; only the per-minute ledger misses it.
Idempotence: every event id is remembered while its window is open, so a replayed event is
counted once (stats["duplicates"]). Ids are kept per window start across all keys, so a replay
that comes back with a different cluster id or model is still recognised. After eviction a
replayed event is late and dropped, so it cannot count twice either.
Restarts: checkpoint with to_bytes() *before* committing the input offsets. On restart restore
the checkpoint and consume from the committed offset: events already in the checkpoint are
skipped by id, later ones are added, and windows re-emitted after the restore carry the same
revision and content as before the crash (the sink's replacing merge makes that harmless).
Events without a cluster id are accounted under cluster_id = -1 (UNCLUSTERED), with no regret
(a mix of tasks has no best model).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import zlib
from typing import Any, Iterable, Mapping

from streams.metrics.baseline import ClusterBaseline, regret
from streams.metrics.format_errors import is_format_error
from streams.metrics.sketch import MIN_VALUE_MS, LatencySketch, _LOG_GAMMA

UNCLUSTERED = -1
_STATE_VERSION = 1
_KNOWN_OUTCOMES = ("success", "failure", "escalated")


def window_id(tenant: str, cluster_id: int, model: str, window_start_ms: int, window_seconds: int) -> str:
    """Deterministic id of a window: the same traffic always lands on the same ledger row."""
    key = f"{tenant}\x1f{cluster_id}\x1f{model}\x1f{window_start_ms}\x1f{window_seconds}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def _ms(ts: Any) -> int:
    if isinstance(ts, int):
        return ts
    if isinstance(ts, _dt.datetime):
        return int(ts.timestamp() * 1000)
    return int(ts)


class _Window:
    __slots__ = ("calls", "input_tokens", "output_tokens", "cost", "successes", "failures",
                 "escalations", "format_errors", "sketch", "revision", "dirty", "taught")

    def __init__(self) -> None:
        self.calls = self.input_tokens = self.output_tokens = 0
        self.successes = self.failures = self.escalations = self.format_errors = 0
        self.cost = 0.0
        self.sketch = LatencySketch()
        self.revision = 0          # last revision emitted; 0 = never emitted
        self.dirty = False         # changed since its last emission
        self.taught = [0, 0, 0, 0.0]  # calls, known, successes, cost already given to the baseline

    @property
    def known(self) -> int:
        return self.successes + self.failures + self.escalations

    def state(self) -> list[Any]:
        return [self.calls, self.input_tokens, self.output_tokens, self.cost, self.successes, self.failures,
                self.escalations, self.format_errors, self.sketch.to_map(), self.revision, self.dirty, self.taught]

    @classmethod
    def from_state(cls, s: list[Any]) -> "_Window":
        w = cls()
        (w.calls, w.input_tokens, w.output_tokens, w.cost, w.successes, w.failures,
         w.escalations, w.format_errors, bins, w.revision, w.dirty, w.taught) = s
        w.sketch = LatencySketch.from_map(bins)
        return w


class WindowAggregator:
    def __init__(self, window_s: int = 60, grace_s: int = 120, baseline: ClusterBaseline | None = None):
        if window_s < 1:
            raise ValueError(f"window_s={window_s} must be >= 1")
        if grace_s < 0:
            raise ValueError(f"grace_s={grace_s} must be >= 0")
        self.window_s = window_s
        self.grace_s = grace_s
        self.window_ms = window_s * 1000
        self.grace_ms = grace_s * 1000
        self.baseline = baseline if baseline is not None else ClusterBaseline()
        self.windows: dict[tuple[str, int, str, int], _Window] = {}
        self.seen: dict[int, set[str]] = {}      # window start -> event ids counted
        self.watermark_ms = -(2 ** 62)           # highest watermark flushed so far
        self.max_event_ts = -(2 ** 62)
        self.stats = {"accepted": 0, "duplicates": 0, "late_dropped": 0, "late_updates": 0, "emitted": 0}

    @classmethod
    def from_settings(cls, settings: Any, baseline: ClusterBaseline | None = None) -> "WindowAggregator":
        return cls(settings.metrics_window_seconds, settings.metrics_grace_seconds, baseline)

    # -- input -----------------------------------------------------------------------------
    def add(self, obs: Mapping[str, Any]) -> bool:
        """Count one observation; False when it was a duplicate or too late to count."""
        ts = _ms(obs["ts"])
        start = ts - ts % self.window_ms
        if start + self.window_ms + self.grace_ms <= self.watermark_ms:
            self.stats["late_dropped"] += 1
            return False
        ids = self.seen.get(start)
        if ids is None:
            ids = self.seen[start] = set()
        eid = obs["event_id"]
        if eid in ids:
            self.stats["duplicates"] += 1
            return False
        ids.add(eid)
        cluster = obs.get("cluster_id")
        key = (obs["tenant"], UNCLUSTERED if cluster is None else cluster, obs["model"], start)
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = _Window()
        elif w.revision:
            w.dirty = True
            self.stats["late_updates"] += 1
        w.calls += 1
        w.input_tokens += obs["input_tokens"]
        w.output_tokens += obs["output_tokens"]
        w.cost += obs["cost_usd"]
        outcome = obs["outcome"]
        if outcome == "success":
            w.successes += 1
        elif outcome == "failure":
            w.failures += 1
        elif outcome == "escalated":
            w.escalations += 1
        if is_format_error(obs.get("response"), obs.get("tool_calls"), obs.get("metadata")):
            w.format_errors += 1
        # Inlined LatencySketch.learn_one: this is the hot path.
        lat = obs["latency_ms"]
        i = math.ceil(math.log(lat if lat > MIN_VALUE_MS else MIN_VALUE_MS) / _LOG_GAMMA)
        bins = w.sketch.bins
        bins[i] = bins.get(i, 0) + 1
        w.sketch.count += 1
        if ts > self.max_event_ts:
            self.max_event_ts = ts
        self.stats["accepted"] += 1
        return True

    def add_many(self, observations: Iterable[Mapping[str, Any]]) -> int:
        return sum(1 for o in observations if self.add(o))

    # -- output ----------------------------------------------------------------------------
    def flush(self, watermark_ms: int) -> list[dict[str, Any]]:
        """Emit every window that ended at or before the watermark and is new or changed;
        evict windows whose grace has passed. The watermark never moves backwards."""
        if watermark_ms > self.watermark_ms:
            self.watermark_ms = watermark_ms
        wm = self.watermark_ms
        due = sorted(k for k, w in self.windows.items()
                     if k[3] + self.window_ms <= wm and (w.revision == 0 or w.dirty))
        # Teach the baseline first (only what it has not seen of each window), so every
        # window of this flush is judged against the same reference.
        for key in due:
            if key[1] == UNCLUSTERED:
                continue   # unclustered calls mix tasks: no model comparison makes sense there
            w = self.windows[key]
            known = w.known
            t = w.taught
            self.baseline.learn_one(key[1], key[2], w.calls - t[0], known - t[1], w.successes - t[2],
                                    w.cost - t[3], key[3] + self.window_ms)
            w.taught = [w.calls, known, w.successes, w.cost]
        out = []
        refs: dict[int, Any] = {}
        for key in due:
            w = self.windows[key]
            tenant, cluster, model, start = key
            if cluster not in refs:
                refs[cluster] = None if cluster == UNCLUSTERED else self.baseline.reference(cluster)
            regret_cost, gap = regret(refs[cluster], w.calls, w.known, w.successes, w.cost)
            w.revision += 1
            w.dirty = False
            out.append({
                "window_id": window_id(tenant, cluster, model, start, self.window_s),
                "revision": w.revision,
                "window_start": start,
                "window_seconds": self.window_s,
                "tenant": tenant,
                "cluster_id": cluster,
                "model": model,
                "calls": w.calls,
                "input_tokens": w.input_tokens,
                "output_tokens": w.output_tokens,
                "cost_usd": w.cost,
                "successes": w.successes,
                "failures": w.failures,
                "escalations": w.escalations,
                "format_errors": w.format_errors,
                "latency_sketch": w.sketch.to_map(),
                "latency_p50": w.sketch.quantile(0.50),
                "latency_p95": w.sketch.quantile(0.95),
                "latency_p99": w.sketch.quantile(0.99),
                "regret_cost_usd": regret_cost,
                "quality_gap": gap,
            })
        self.stats["emitted"] += len(out)
        horizon = wm - self.window_ms - self.grace_ms
        for key in [k for k in self.windows if k[3] <= horizon]:
            del self.windows[key]
        for start in [s for s in self.seen if s <= horizon]:
            del self.seen[start]
        return out

    @property
    def open_windows(self) -> int:
        return len(self.windows)

    # -- checkpoint ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        state = {
            "v": _STATE_VERSION, "window_s": self.window_s, "grace_s": self.grace_s,
            "watermark_ms": self.watermark_ms, "max_event_ts": self.max_event_ts, "stats": self.stats,
            "windows": [[list(k), w.state()] for k, w in self.windows.items()],
            "seen": [[s, sorted(ids)] for s, ids in self.seen.items()],
            "baseline": self.baseline.state(),
        }
        return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, blob: bytes, window_s: int | None = None, grace_s: int | None = None) -> "WindowAggregator":
        """Restore a checkpoint. Passing the configured window_s/grace_s checks that they did
        not change since the checkpoint (windows of another size cannot be continued)."""
        state = json.loads(zlib.decompress(blob))
        if state.get("v") != _STATE_VERSION:
            raise ValueError(f"metrics checkpoint version {state.get('v')} is not {_STATE_VERSION}; discard it and replay")
        if window_s is not None and window_s != state["window_s"]:
            raise ValueError(f"metrics checkpoint has {state['window_s']} s windows but "
                             f"DISTILLERY_METRICS_WINDOW_SECONDS={window_s}; discard the checkpoint or restore the setting")
        agg = cls(state["window_s"], state["grace_s"] if grace_s is None else grace_s,
                  ClusterBaseline.from_state(state["baseline"]))
        agg.watermark_ms = state["watermark_ms"]
        agg.max_event_ts = state["max_event_ts"]
        agg.stats = dict(state["stats"])
        agg.windows = {(k[0], k[1], k[2], k[3]): _Window.from_state(s) for k, s in state["windows"]}
        agg.seen = {s: set(ids) for s, ids in state["seen"]}
        return agg
