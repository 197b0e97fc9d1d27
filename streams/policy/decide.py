"""The retrain decision (S4 -> S5): which task clusters get a specialist trained, and when.

    policy = RetrainPolicy(PolicyThresholds.from_settings(settings), candidates)
    for d in policy.decide(tracker.stats(now_ms), now_ms, known_commands):
        info = write_snapshot(curated_rows_of(d.cluster_id), settings.artifacts_uri)
        command = build_command(d, info, now_ms)        # RetrainCommand (retrain_command.v1)

Triggers:
  thresholds  no specialist active or in shadow for the cluster, and
              curated examples >= min_examples, calls/day >= min_calls_per_day,
              regret >= min_regret_pct (ClusterStats.regret_pct, priced with the chosen base's
              cost_per_1k);
  drift       an active specialist, and a drift signal on the cluster (severity warning or
              fatal) newer than both the specialist's activation and the cluster's last
              command, and curated examples >= drift_min_examples.
At most one command per cluster per policy period (period index = now // period): a cluster is
blocked when it already has a command in the current period, or an unfinished one younger
than a period. Command ids are a hash of (cluster, period index, trigger, dataset sha256), so a
restart or replay that reaches the same decision on the same data emits the same id; pass the
commands already on the `retrain` topic as `known_commands` so a restart inside the same
period does not decide again at all.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from streams.policy.candidates import ModelCandidate, select_base_model
from streams.policy.snapshot import SnapshotInfo
from streams.policy.stats import ClusterStats

TRIGGERS = ("thresholds", "drift", "manual")


@dataclass(frozen=True)
class PolicyThresholds:
    min_examples: int = 200
    min_calls_per_day: float = 100
    min_regret_pct: float = 20.0
    period_seconds: int = 86_400
    drift_min_examples: int | None = None           # None: min_examples
    drift_severities: tuple[str, ...] = ("warning", "fatal")
    min_safety_grade: str = "D"                      # of the base model chosen

    def __post_init__(self) -> None:
        if self.period_seconds < 1:
            raise ValueError(f"period_seconds={self.period_seconds} must be >= 1")
        if self.min_examples < 1:
            raise ValueError(f"min_examples={self.min_examples} must be >= 1")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "PolicyThresholds":
        return cls(min_examples=settings.policy_min_examples, min_calls_per_day=settings.policy_min_calls_per_day,
                   min_regret_pct=settings.policy_min_regret_pct, period_seconds=settings.policy_period_seconds,
                   **overrides)


@dataclass(frozen=True)
class KnownCommand:
    """A retrain command already emitted, and whether its training run has finished."""
    command_id: str
    cluster_id: int
    ts: int
    finished: bool = False

    @classmethod
    def coerce(cls, c: "KnownCommand | Mapping[str, Any]", finished_ids: frozenset[str] = frozenset()) -> "KnownCommand":
        if isinstance(c, KnownCommand):
            return c
        return cls(c["command_id"], c["cluster_id"], c["ts"],
                   bool(c.get("finished", False)) or c["command_id"] in finished_ids)


@dataclass(frozen=True)
class Decision:
    cluster_id: int
    trigger: str
    period_index: int
    base_model: str
    evidence: dict[str, float]
    reason: str
    method: str = "auto"


@dataclass(frozen=True)
class Verdict:
    """Why a cluster did or did not get a decision (for logs, docs and tests)."""
    cluster_id: int
    decision: Decision | None
    reason: str


def period_index(now_ms: int, period_seconds: int) -> int:
    return now_ms // (period_seconds * 1000)


def command_id(cluster_id: int, period: int, trigger: str, dataset_sha256: str) -> str:
    key = f"retrain\x1f{cluster_id}\x1f{period}\x1f{trigger}\x1f{dataset_sha256}".encode()
    return "rt-" + hashlib.sha256(key).hexdigest()[:32]


class RetrainPolicy:
    def __init__(self, thresholds: PolicyThresholds, candidates: Iterable[ModelCandidate] = ()):
        self.t = thresholds
        self.candidates = list(candidates)

    def evaluate(self, cluster_stats: Mapping[int, ClusterStats] | Iterable[ClusterStats], now_ms: int,
                 known_commands: Iterable[KnownCommand | Mapping[str, Any]] = (),
                 finished_ids: Iterable[str] = ()) -> list[Verdict]:
        stats = list(cluster_stats.values()) if isinstance(cluster_stats, Mapping) else list(cluster_stats)
        finished = frozenset(finished_ids)
        commands = [KnownCommand.coerce(c, finished) for c in known_commands]
        period = period_index(now_ms, self.t.period_seconds)
        period_ms = self.t.period_seconds * 1000
        by_cluster: dict[int, list[KnownCommand]] = {}
        for c in commands:
            by_cluster.setdefault(c.cluster_id, []).append(c)
        out = []
        for s in sorted(stats, key=lambda s: s.cluster_id):
            out.append(self._one(s, now_ms, period, period_ms, by_cluster.get(s.cluster_id, [])))
        return out

    def decide(self, cluster_stats: Mapping[int, ClusterStats] | Iterable[ClusterStats], now_ms: int,
               open_commands: Iterable[KnownCommand | Mapping[str, Any]] = (),
               finished_ids: Iterable[str] = ()) -> list[Decision]:
        return [v.decision for v in self.evaluate(cluster_stats, now_ms, open_commands, finished_ids) if v.decision]

    def _one(self, s: ClusterStats, now_ms: int, period: int, period_ms: int, cmds: list[KnownCommand]) -> Verdict:
        c = s.cluster_id
        for k in cmds:
            if period_index(k.ts, self.t.period_seconds) == period:
                return Verdict(c, None, f"command {k.command_id} already emitted in period {period}")
            if not k.finished and now_ms - k.ts < period_ms:
                return Verdict(c, None, f"command {k.command_id} is still open (emitted {(now_ms - k.ts) // 1000} s ago)")
        base = select_base_model(self.candidates, c, self.t.min_safety_grade)
        price = base.cost_per_1k if base else None
        regret_pct = s.regret_pct(price)
        evidence = {
            "curated_examples": float(s.curated_examples),
            "calls_per_day": round(s.calls_per_day, 6),
            "spend_per_day_usd": round(s.spend_per_day_usd, 9),
            "regret_pct": round(regret_pct, 6),
            "regret_cost_per_day_usd": round(s.regret_cost_per_day_usd, 9),
            "min_examples": float(self.t.min_examples),
            "min_calls_per_day": float(self.t.min_calls_per_day),
            "min_regret_pct": float(self.t.min_regret_pct),
        }
        if price is not None:
            evidence["specialist_cost_per_1k"] = price
        if s.success_rate is not None:
            evidence["success_rate"] = round(s.success_rate, 6)

        if s.active_specialist is not None:
            last_cmd = max((k.ts for k in cmds), default=-1)
            since = max(s.active_since_ms or -1, last_cmd)
            fresh = [d for d in s.drift if d.ts > since and d.severity in self.t.drift_severities]
            if not fresh:
                return Verdict(c, None, f"specialist {s.active_specialist} active and no new drift")
            need = self.t.drift_min_examples if self.t.drift_min_examples is not None else self.t.min_examples
            if s.curated_examples < need:
                return Verdict(c, None, f"drift on cluster but {s.curated_examples} curated examples < {need}")
            if base is None:
                return Verdict(c, None, "drift on cluster but no available base model supports it")
            d = fresh[-1]
            evidence.update({"drift_before": d.before, "drift_after": d.after, "drift_signals": float(len(fresh))})
            reason = (f"drift on cluster {c} ({d.metric} {d.before:g} -> {d.after:g}, {d.severity}, {d.drift_id}) "
                      f"while {s.active_specialist} is active; retraining on {s.curated_examples} examples")
            return Verdict(c, Decision(c, "drift", period, base.model_name, evidence, reason), reason)

        if s.shadow_specialists:
            return Verdict(c, None, f"specialist {s.shadow_specialists[0]} is in shadow evaluation")
        misses = []
        if s.curated_examples < self.t.min_examples:
            misses.append(f"{s.curated_examples} curated examples < {self.t.min_examples}")
        if s.calls_per_day < self.t.min_calls_per_day:
            misses.append(f"{s.calls_per_day:.1f} calls/day < {self.t.min_calls_per_day}")
        if regret_pct < self.t.min_regret_pct:
            misses.append(f"regret {regret_pct:.1f}% < {self.t.min_regret_pct}%")
        if base is None:
            misses.append("no available base model supports the cluster (set 'path' of a candidate)")
        if misses:
            return Verdict(c, None, "; ".join(misses))
        assert base is not None
        reason = (f"cluster {c}: {s.curated_examples} curated examples, {s.calls_per_day:.0f} calls/day, "
                  f"${s.spend_per_day_usd:.4f}/day of which {regret_pct:.1f}% avoidable with a "
                  f"{base.model_name} specialist")
        return Verdict(c, Decision(c, "thresholds", period, base.model_name, evidence, reason), reason)


def build_command(decision: Decision, snapshot: SnapshotInfo, now_ms: int, **training: Any) -> dict[str, Any]:
    """The RetrainCommand record (schemas/retrain_command.v1.avsc). `training` may set method,
    lora_r, lora_alpha, lora_dropout, target_modules, epochs, learning_rate."""
    allowed = {"method", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "epochs", "learning_rate"}
    unknown = set(training) - allowed
    if unknown:
        raise ValueError(f"unknown training option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return {
        "command_id": command_id(decision.cluster_id, decision.period_index, decision.trigger, snapshot.sha256),
        "ts": now_ms,
        "cluster_id": decision.cluster_id,
        "base_model": decision.base_model,
        "dataset_uri": snapshot.uri,
        "dataset_sha256": snapshot.sha256,
        "train_examples": snapshot.n_train,
        "eval_examples": snapshot.n_eval,
        "method": training.get("method", decision.method),
        "lora_r": training.get("lora_r", 0),
        "lora_alpha": training.get("lora_alpha", 0),
        "lora_dropout": training.get("lora_dropout", 0.0),   # peft's default; dropout costs ~1/3 of a step on small bases
        "target_modules": list(training.get("target_modules", [])),
        "epochs": float(training.get("epochs", 0.0)),
        "learning_rate": float(training.get("learning_rate", 0.0)),
        "trigger": decision.trigger,
        "evidence": dict(decision.evidence),
        "reason": decision.reason,
    }
