"""Per-task-cluster drift detection: river's ADWIN on success rate, cost per call, latency and
traffic share, a vocabulary signature compared between windows (Jaccard), and new task types.

ADWIN alone raises alarms on long stationary streams (every detector, every cluster, every
metric is one more chance), so a detection only becomes a DriftRecord when it is *confirmed*:
the cluster has ``min_samples`` observations, ``min_after`` further samples are collected after
ADWIN cut its window, and the difference between the dropped (old) part and those new samples
is both large (``min_effect``) and significant (``min_z`` standard errors). This keeps the
stationary false-alarm rate at zero in bench/bench_drift.py while a 0.95 -> 0.6 success drop
is confirmed within a few dozen events of the cluster.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Iterable

from river import drift

METRICS = ("traffic_share", "success_rate", "cost_per_call", "latency_ms", "vocabulary", "new_task")

ACTIONS = {
    "success_rate": "check recent failures of this task cluster; pause promotion of its specialist and consider a retrain on fresh successful examples",
    "cost_per_call": "check the model mix and prompt lengths of this task cluster; a cheaper specialist may now pay off",
    "latency_ms": "check upstream/model latency for this task cluster; route to a faster model or scale serving",
    "traffic_share": "re-check the retrain priority of this task cluster; its volume changed",
    "vocabulary": "review recent examples: the task may have changed shape; re-validate the specialist before trusting it",
    "new_task": "a new task type appeared; review its label and example, it is a candidate for a specialist once it has enough examples",
}


@dataclass(frozen=True)
class DriftRecord:
    """Fields of schemas/drift_event.v1.avsc."""

    drift_id: str
    ts: int
    cluster_id: int
    metric: str
    before: float
    after: float
    evidence: str
    suggested_action: str
    severity: str = "warning"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DriftConfig:
    delta: float = 0.01              # ADWIN confidence; the confirmation below controls false alarms
    clock: int = 1                   # ADWIN checks for a cut after every sample (river's default 32 adds delay)
    min_samples: int = 100           # observations of a cluster before its alarms count
    min_after: int = 15              # samples gathered after a cut before confirming it
    max_after: int = 300             # ... and how long confirmation keeps trying before giving up
    min_before: int = 100            # the dropped (old) part must be at least this long
    min_z: float = 4.0               # standard errors between old and new mean
    min_effect_success: float = 0.1  # absolute change of success rate
    min_effect_ratio: float = 0.3    # relative change of cost, latency and traffic share
    share_block: int = 100           # global events per traffic-share sample
    vocab_window: int = 300          # cluster events per vocabulary window
    vocab_top: int = 30              # top terms that form the signature
    vocab_max_jaccard: float = 0.35  # alarm when consecutive signatures overlap less
    vocab_min_drop: float = 0.3      # ... and less than the cluster's usual overlap minus this
    warmup_events: int = 1000        # clusters first seen before this are the starting set
    new_task_min_count: int = 30
    new_task_min_share: float = 0.02  # share of traffic since the cluster first appeared
    new_task_horizon: int = 5000     # a cluster must prove itself within this many events
    cooldown: int = 2000             # cluster events between two alarms of one metric


class _Confirmed:
    """ADWIN plus confirmation: returns (before, after, n_before, n_after, z) once a cut holds.

    After a cut the "before" statistics are frozen (the dropped prefix, or the whole window when
    the prefix is short: a diluted but conservative reference) and later samples are tested
    against them as they arrive, from ``min_after`` up to ``max_after`` samples. Testing only
    once would lose a real change whenever its first samples were unlucky: ADWIN has already
    forgotten the old regime by then and would never cut again."""

    after_n, after_sum = 0, 0.0          # class defaults: detectors pickled before these existed still load

    def __init__(self, cfg: DriftConfig, min_effect: float, relative: bool, worse_sign: int = 0,
                 var_floor: float = 1e-4):
        self.cfg = cfg
        self.worse_sign = worse_sign     # +1: only increases alarm, -1: only decreases, 0: both
        self.var_floor = var_floor
        self.min_effect = min_effect
        self.relative = relative
        self.adwin = drift.ADWIN(delta=cfg.delta, clock=cfg.clock)
        self.n = 0
        self.cooldown_until = 0
        self.pending: tuple[float, float, int] | None = None   # old mean, old variance, old n
        self.after_n = 0
        self.after_sum = 0.0

    def update(self, x: float) -> tuple[float, float, int, int, float] | None:
        self.n += 1
        w0, m0, v0 = self.adwin.width, self.adwin.estimation, self.adwin.variance
        self.adwin.update(x)
        if self.pending is not None:
            self.after_n += 1
            self.after_sum += x
            return self._confirm() if self.after_n >= self.cfg.min_after else None
        if self.adwin.drift_detected and self.n >= self.cfg.min_samples and self.n >= self.cooldown_until:
            w1, m1 = self.adwin.width, self.adwin.estimation
            dropped = w0 + 1 - w1
            # river's ADWIN.variance is the window's sum of squared deviations: per-sample
            # variance is variance / width.
            var = max(v0 / max(w0, 1), 1e-12)
            if dropped >= self.cfg.min_before:
                self.pending = ((m0 * w0 + x - m1 * w1) / dropped, var, int(dropped))
            elif w0 >= self.cfg.min_before:
                self.pending = (m0, var, int(w0))
            else:
                return None
            self.after_n, self.after_sum = 0, 0.0
        return None

    def _confirm(self):
        old_mean, old_var, old_n = self.pending
        k = self.after_n
        new_mean = self.after_sum / k
        # Under "no change" the new samples share the old window's variance: a score test.
        var = max(old_var, self.var_floor)
        z = (new_mean - old_mean) / math.sqrt(var * (1.0 / old_n + 1.0 / k))
        effect = abs(new_mean - old_mean)
        if self.relative:
            effect = abs(math.expm1(new_mean - old_mean))      # values are log1p-transformed
        worse = z * self.worse_sign >= self.cfg.min_z if self.worse_sign else abs(z) >= self.cfg.min_z
        if effect >= self.min_effect and worse:
            self.pending = None
            self.cooldown_until = self.n + self.cfg.cooldown
            return old_mean, new_mean, old_n, k, abs(z)
        if k >= self.cfg.max_after:
            self.pending = None
        return None


@dataclass
class _ClusterState:
    first_seen: int
    count: int = 0
    detectors: dict = field(default_factory=dict)
    block_count: int = 0
    vocab: Counter = field(default_factory=Counter)
    vocab_n: int = 0
    signature: frozenset | None = None
    overlaps: deque = field(default_factory=lambda: deque(maxlen=20))
    vocab_cooldown: int = 0
    new_task_done: bool = False
    exempt: bool = False         # born in the warm-up, or split/merged: not a new task type


class DriftMonitor:
    """update(...) per clustered event; returns the drift records it confirms (usually none)."""

    def __init__(self, config: DriftConfig | None = None):
        self.config = config or DriftConfig()
        self.clusters: dict[int, _ClusterState] = {}
        self.events = 0
        self._block_events = 0

    def _state(self, cluster_id: int) -> _ClusterState:
        st = self.clusters.get(cluster_id)
        if st is None:
            cfg = self.config
            st = _ClusterState(first_seen=self.events)
            st.exempt = self.events < cfg.warmup_events
            st.detectors = {
                # On-call cares about the bad direction: failures up, cost up, latency up.
                # A Bernoulli variance below 0.99 * 0.01 would make one failure look significant.
                "success_rate": _Confirmed(cfg, cfg.min_effect_success, relative=False, worse_sign=-1,
                                           var_floor=0.0099),
                "cost_per_call": _Confirmed(cfg, cfg.min_effect_ratio, relative=True, worse_sign=+1),
                "latency_ms": _Confirmed(cfg, cfg.min_effect_ratio, relative=True, worse_sign=+1),
                "traffic_share": _Confirmed(
                    DriftConfig(**{**asdict(cfg), "min_samples": 10, "min_after": 5, "max_after": 30, "min_before": 10,
                                   "cooldown": 20}),
                    cfg.min_effect_ratio, relative=True),
            }
            self.clusters[cluster_id] = st
        return st

    def observe_lineage(self, records: Iterable[dict]) -> None:
        """Let lineage explain changes: a split child is no new task type, and a merge
        changes what a cluster is, so the survivor's detectors start afresh."""
        for rec in records:
            cid = int(rec["cluster_id"])
            if rec["change"] == "split":
                self._state(cid).exempt = True
                # The parent lost part of its traffic to the child: that is not drift.
                for rel in rec.get("related_cluster_ids", []):
                    parent = self.clusters.pop(int(rel), None)
                    st = self._state(int(rel))
                    st.exempt, st.new_task_done = True, parent.new_task_done if parent else True
            elif rec["change"] == "merged":
                old = self.clusters.pop(cid, None)
                st = self._state(cid)
                st.exempt = True
                st.new_task_done = old.new_task_done if old else True
                for rel in rec.get("related_cluster_ids", []):
                    self.clusters.pop(int(rel), None)

    def _record(self, ts: int, cid: int, metric: str, before: float, after: float, evidence: str,
                severity: str = "warning") -> DriftRecord:
        return DriftRecord(f"drift-{cid}-{metric}-{self.events}", int(ts), int(cid), metric, float(before),
                           float(after), evidence, ACTIONS[metric], severity)

    def update(self, cluster_id: int | None, success: bool, cost: float, latency_ms: float,
               tokens: Iterable[str] = (), ts_ms: int = 0) -> list[DriftRecord]:
        cfg = self.config
        self.events += 1
        out: list[DriftRecord] = []
        if cluster_id is not None:
            st = self._state(cluster_id)
            st.count += 1
            st.block_count += 1
            for metric, value in (("success_rate", 1.0 if success else 0.0),
                                  ("cost_per_call", math.log1p(max(cost, 0.0) * 1e6)),
                                  ("latency_ms", math.log1p(max(latency_ms, 0.0)))):
                hit = st.detectors[metric].update(value)
                if hit:
                    out.append(self._adwin_record(ts_ms, cluster_id, metric, hit))
            out += self._vocabulary(ts_ms, cluster_id, st, tokens)
            out += self._new_task(ts_ms, cluster_id, st)
        self._block_events += 1
        if self._block_events >= cfg.share_block:
            for cid, st in self.clusters.items():
                share = st.block_count / self._block_events
                st.block_count = 0
                hit = st.detectors["traffic_share"].update(math.log1p(share * 100.0))
                if hit and st.count >= cfg.min_samples:
                    out.append(self._adwin_record(ts_ms, cid, "traffic_share", hit))
            self._block_events = 0
        return out

    def _adwin_record(self, ts, cid, metric, hit) -> DriftRecord:
        before, after, n_before, n_after, z = hit
        if metric == "cost_per_call":
            before, after = math.expm1(before) / 1e6, math.expm1(after) / 1e6
        elif metric == "latency_ms":
            before, after = math.expm1(before), math.expm1(after)
        elif metric == "traffic_share":
            before, after = math.expm1(before) / 100.0, math.expm1(after) / 100.0
        severity = "warning"
        if metric == "success_rate" and after < before - 0.2:
            severity = "fatal"
        unit = "blocks of %d events" % self.config.share_block if metric == "traffic_share" else "events"
        evidence = (f"ADWIN(delta={self.config.delta}) cut; old window {n_before} {unit} mean {before:.4g}, "
                    f"confirmed on {n_after} later {unit} mean {after:.4g} (z={z:.1f})")
        return self._record(ts, cid, metric, before, after, evidence, severity)

    def _vocabulary(self, ts, cid, st: _ClusterState, tokens) -> list[DriftRecord]:
        cfg = self.config
        st.vocab.update(set(tokens))
        st.vocab_n += 1
        if st.vocab_n < cfg.vocab_window:
            return []
        signature = frozenset(t for t, _ in st.vocab.most_common(cfg.vocab_top))
        st.vocab.clear()
        st.vocab_n = 0
        out = []
        if st.signature is not None and signature:
            jac = len(signature & st.signature) / len(signature | st.signature)
            usual = sum(st.overlaps) / len(st.overlaps) if st.overlaps else None
            if (usual is not None and len(st.overlaps) >= 2 and jac < cfg.vocab_max_jaccard
                    and jac < usual - cfg.vocab_min_drop and st.count >= st.vocab_cooldown):
                new_terms = sorted(signature - st.signature)[:8]
                out.append(self._record(ts, cid, "vocabulary", usual, jac,
                                        f"Jaccard of top-{cfg.vocab_top} terms between windows of {cfg.vocab_window} events: "
                                        f"{jac:.2f} (usual {usual:.2f}); new terms: {', '.join(new_terms)}"))
                st.vocab_cooldown = st.count + cfg.cooldown
            st.overlaps.append(jac)
        st.signature = signature
        return out

    def _new_task(self, ts, cid, st: _ClusterState) -> list[DriftRecord]:
        cfg = self.config
        if st.exempt or st.new_task_done:
            return []
        age = self.events - st.first_seen
        if age > cfg.new_task_horizon:
            st.new_task_done = True           # stayed marginal: not a task type worth an alarm
            return []
        share = st.count / max(age, 1)
        if st.count >= cfg.new_task_min_count and share >= cfg.new_task_min_share:
            st.new_task_done = True
            return [self._record(ts, cid, "new_task", 0.0, share,
                                 f"cluster first seen at event {st.first_seen} (after a warm-up of {cfg.warmup_events}); "
                                 f"{st.count} events in the {age} since, share {share:.3f}", "info")]
        return []
