"""What the decision policy knows about each task cluster, folded from the streams it reads.

ClusterStatsTracker learns, in river's style, one record at a time:
  learn_window(MetricsWindow)   closed ledger windows (a re-emitted revision replaces the old one)
  learn_curated(Observation)    curated training examples (once per event_id)
  learn_registry(RegistryEvent) adapters becoming shadow / active / deprecated per cluster
  learn_drift(DriftEvent)       drift signals per cluster
and reads out stats(now_ms) -> {cluster_id: ClusterStats} over a trailing horizon (one day by
default). Traffic rates are extrapolated to a day from the span actually observed, but never
from less than `min_span_s` (one hour), so a burst in the first minute does not look like a
busy cluster.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

from streams.metrics.format_errors import is_format_error
from streams.metrics.windows import UNCLUSTERED

TRAINABLE_OUTCOMES = ("success", "unknown")   # failed or escalated answers never train a specialist


@dataclass(frozen=True)
class DriftSignal:
    drift_id: str
    ts: int
    metric: str
    severity: str
    before: float = 0.0
    after: float = 0.0


@dataclass(frozen=True)
class ClusterStats:
    cluster_id: int
    curated_examples: int = 0
    calls_per_day: float = 0.0
    spend_per_day_usd: float = 0.0
    tokens_per_day: float = 0.0
    regret_cost_per_day_usd: float = 0.0      # ledger regret against the best observed model
    success_rate: float | None = None
    active_specialist: str | None = None
    active_since_ms: int | None = None
    shadow_specialists: tuple[str, ...] = ()
    drift: tuple[DriftSignal, ...] = ()

    def regret_pct(self, specialist_cost_per_1k: float | None = None) -> float:
        """Share of the cluster's spend that is avoidable, in %: the larger of the ledger's
        regret (a cheaper observed model does as well) and what a specialist priced at
        `specialist_cost_per_1k` USD per 1k tokens would save on the same tokens. The same
        formula is in clickhouse/002_analyst_views.sql (replaceable_fraction)."""
        if self.spend_per_day_usd <= 0:
            return 0.0
        avoidable = self.regret_cost_per_day_usd
        if specialist_cost_per_1k is not None:
            avoidable = max(avoidable, self.spend_per_day_usd - self.tokens_per_day * specialist_cost_per_1k / 1000.0)
        return 100.0 * max(0.0, avoidable) / self.spend_per_day_usd


def is_trainable(obs: Mapping[str, Any]) -> bool:
    """A curated row that may become a training example (the same rule write_snapshot applies)."""
    return (obs.get("duplicate_of") is None
            and obs.get("outcome", "unknown") in TRAINABLE_OUTCOMES
            and bool((obs.get("prompt") or "").strip()) and bool((obs.get("response") or "").strip())
            and not is_format_error(obs.get("response"), obs.get("tool_calls"), obs.get("metadata")))


class ClusterStatsTracker:
    def __init__(self, horizon_s: int = 86_400, min_span_s: int = 3_600):
        self.horizon_ms = horizon_s * 1000
        self.min_span_ms = min_span_s * 1000
        # cluster -> window_id -> (window_start, window_ms, calls, cost, tokens, regret, successes, known)
        self.windows: dict[int, dict[str, tuple]] = {}
        self.curated_ids: dict[int, set[bytes]] = {}
        self.curated_override: dict[int, int] = {}
        self.active: dict[int, tuple[str, int]] = {}
        self.shadows: dict[int, dict[str, int]] = {}
        self.drift: dict[int, dict[str, DriftSignal]] = {}

    def learn_window(self, mw: Mapping[str, Any]) -> "ClusterStatsTracker":
        cluster = mw["cluster_id"]
        if cluster == UNCLUSTERED:
            return self
        rows = self.windows.setdefault(cluster, {})
        prev = rows.get(mw["window_id"])
        if prev is not None and prev[8] >= mw["revision"]:
            return self   # a replay of a revision already learned
        rows[mw["window_id"]] = (mw["window_start"], mw["window_seconds"] * 1000, mw["calls"], mw["cost_usd"],
                                 mw["input_tokens"] + mw["output_tokens"], mw["regret_cost_usd"], mw["successes"],
                                 mw["successes"] + mw["failures"] + mw["escalations"], mw["revision"])
        return self

    def learn_curated(self, obs: Mapping[str, Any]) -> "ClusterStatsTracker":
        cluster = obs.get("cluster_id")
        if cluster is None or not is_trainable(obs):
            return self
        # 8-byte digests keep the memory per example small; collisions are negligible at 1e9 ids.
        self.curated_ids.setdefault(cluster, set()).add(hashlib.blake2b(obs["event_id"].encode(), digest_size=8).digest())
        return self

    def set_curated_count(self, cluster_id: int, count: int) -> "ClusterStatsTracker":
        """Use a count from the ledger instead (e.g. after a restart without the id sets)."""
        self.curated_override[cluster_id] = count
        return self

    def learn_registry(self, ev: Mapping[str, Any]) -> "ClusterStatsTracker":
        cluster = ev.get("cluster_id")
        if cluster is None or ev.get("kind") != "adapter":
            return self
        model, state, ts = ev["model_id"], ev["state"], ev["ts"]
        shadows = self.shadows.setdefault(cluster, {})
        if state == "active":
            self.active[cluster] = (model, ts)
            shadows.pop(model, None)
        elif state == "shadow":
            shadows[model] = ts
        else:   # deprecated, failed, candidate: no longer serving or shadowing
            shadows.pop(model, None)
            if self.active.get(cluster, (None,))[0] == model:
                del self.active[cluster]
        return self

    def learn_drift(self, ev: Mapping[str, Any]) -> "ClusterStatsTracker":
        sig = DriftSignal(ev["drift_id"], ev["ts"], ev["metric"], ev.get("severity", "warning"),
                          float(ev.get("before", 0.0)), float(ev.get("after", 0.0)))
        self.drift.setdefault(ev["cluster_id"], {})[sig.drift_id] = sig
        return self

    # -- checkpoint (the decision agent saves it beside its input offsets) -------------------
    def to_bytes(self) -> bytes:
        state = {
            "v": 1, "horizon_ms": self.horizon_ms, "min_span_ms": self.min_span_ms,
            "windows": {str(c): {w: list(r) for w, r in rows.items()} for c, rows in self.windows.items()},
            "curated": {str(c): sorted(i.hex() for i in ids) for c, ids in self.curated_ids.items()},
            "curated_override": {str(c): n for c, n in self.curated_override.items()},
            "active": {str(c): list(v) for c, v in self.active.items()},
            "shadows": {str(c): v for c, v in self.shadows.items()},
            "drift": {str(c): [list(dataclasses.astuple(s)) for s in v.values()] for c, v in self.drift.items()},
        }
        return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, blob: bytes) -> "ClusterStatsTracker":
        state = json.loads(zlib.decompress(blob))
        if state.get("v") != 1:
            raise ValueError(f"policy checkpoint version {state.get('v')} is not 1; discard it and replay")
        t = cls(state["horizon_ms"] // 1000, state["min_span_ms"] // 1000)
        t.windows = {int(c): {w: tuple(r) for w, r in rows.items()} for c, rows in state["windows"].items()}
        t.curated_ids = {int(c): {bytes.fromhex(i) for i in ids} for c, ids in state["curated"].items()}
        t.curated_override = {int(c): n for c, n in state["curated_override"].items()}
        t.active = {int(c): (v[0], v[1]) for c, v in state["active"].items()}
        t.shadows = {int(c): dict(v) for c, v in state["shadows"].items()}
        t.drift = {int(c): {d[0]: DriftSignal(*d) for d in v} for c, v in state["drift"].items()}
        return t

    def stats(self, now_ms: int) -> dict[int, ClusterStats]:
        since = now_ms - self.horizon_ms
        out: dict[int, ClusterStats] = {}
        clusters = set(self.windows) | set(self.curated_ids) | set(self.curated_override) | set(self.active) | set(self.drift)
        for cluster in sorted(clusters):
            rows = self.windows.get(cluster, {})
            for wid in [w for w, r in rows.items() if r[0] + r[1] <= since]:
                del rows[wid]    # older than the horizon: forget
            live = [r for r in rows.values() if r[0] < now_ms]
            calls = sum(r[2] for r in live)
            if live:
                first = min(r[0] for r in live)
                span = max(self.min_span_ms, min(self.horizon_ms, now_ms - first))
            else:
                span = self.horizon_ms
            per_day = 86_400_000 / span
            known = sum(r[7] for r in live)
            drift = self.drift.get(cluster, {})
            for did in [d for d, s in drift.items() if s.ts <= since]:
                del drift[did]
            active = self.active.get(cluster)
            out[cluster] = ClusterStats(
                cluster_id=cluster,
                curated_examples=self.curated_override.get(cluster, len(self.curated_ids.get(cluster, ()))),
                calls_per_day=calls * per_day,
                spend_per_day_usd=sum(r[3] for r in live) * per_day,
                tokens_per_day=sum(r[4] for r in live) * per_day,
                regret_cost_per_day_usd=sum(r[5] for r in live) * per_day,
                success_rate=(sum(r[6] for r in live) / known) if known else None,
                active_specialist=active[0] if active else None,
                active_since_ms=active[1] if active else None,
                shadow_specialists=tuple(sorted(self.shadows.get(cluster, {}))),
                drift=tuple(sorted(drift.values(), key=lambda s: (s.ts, s.drift_id))),
            )
        return out
