"""The per-cluster reference that regret is measured against.

For each task cluster we keep, per model, exponentially decayed totals of calls, calls with a
known outcome, successes and cost. The *best* success rate of the cluster is the highest rate
among models with enough evidence (>= min_calls decayed calls with a known outcome); the
*reference* model is the cheapest (cost per call) of the best model and of the models that are
confidently adequate: the lower bound of their success rate (Wilson, 90 % one-sided) is within
`quality_tolerance` of the best rate. Without the bound, sampling noise on a few hundred calls
would make a slightly worse cheap model look adequate and inflate regret. Regret of a window
of model m:

    regret_cost_usd = max(0, cost_m - calls_m * reference_cost_per_call)   (USD, sums over windows)
    quality_gap     = max(0, best_success_rate - success_rate_m)            (a rate; weight by calls)

so a frontier model that does no better than a cheaper one shows its extra spend as regret,
and a cheap model that does worse shows a quality gap instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def wilson_lower(successes: float, n: float, z: float = 1.2816) -> float:
    """Lower bound of a success rate (90 % one-sided by default); 0 without evidence."""
    if n <= 0:
        return 0.0
    p = min(1.0, max(0.0, successes / n))
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


@dataclass(frozen=True)
class Reference:
    best_success_rate: float
    best_model: str
    reference_model: str
    reference_cost_per_call: float


class ClusterBaseline:
    """learn_one(cluster_id, model, ...) folds a window's totals in; reference(cluster_id)."""

    def __init__(self, half_life_s: float = 7 * 86_400, min_calls: int = 20, quality_tolerance: float = 0.02):
        if half_life_s <= 0:
            raise ValueError("half_life_s must be > 0")
        self.half_life_ms = half_life_s * 1000.0
        self.min_calls = min_calls
        self.quality_tolerance = quality_tolerance
        # cluster -> model -> [calls, known, successes, cost, t_ms]
        self.clusters: dict[int, dict[str, list[float]]] = {}

    def _decay(self, rec: list[float], t_ms: float) -> None:
        dt = t_ms - rec[4]
        if dt > 0:
            f = 0.5 ** (dt / self.half_life_ms)
            rec[0] *= f
            rec[1] *= f
            rec[2] *= f
            rec[3] *= f
            rec[4] = t_ms

    def learn_one(self, cluster_id: int, model: str, calls: float, known: float, successes: float,
                  cost_usd: float, t_ms: float) -> "ClusterBaseline":
        models = self.clusters.setdefault(cluster_id, {})
        rec = models.get(model)
        if rec is None:
            rec = models[model] = [0.0, 0.0, 0.0, 0.0, float(t_ms)]
        else:
            self._decay(rec, t_ms)  # a late window (t < rec's time) is added undecayed
        rec[0] += calls
        rec[1] += known
        rec[2] += successes
        rec[3] += cost_usd
        return self

    def reference(self, cluster_id: int) -> Reference | None:
        models = self.clusters.get(cluster_id)
        if not models:
            return None
        now = max(rec[4] for rec in models.values())
        rated: list[tuple[str, float, float, float]] = []  # (model, success rate, cost per call, lower bound)
        for model, rec in models.items():
            f = 0.5 ** (max(0.0, now - rec[4]) / self.half_life_ms)
            if rec[1] * f >= self.min_calls and rec[0] > 0:
                # the bound uses the decayed evidence, so old traffic weighs less in it too
                rated.append((model, rec[2] / rec[1], rec[3] / rec[0], wilson_lower(rec[2] * f, rec[1] * f)))
        if not rated:
            return None
        # Ties broken by name so the reference never depends on dict order.
        best_model, best_rate, _, _ = max(rated, key=lambda r: (r[1], -r[2], r[0]))
        adequate = [r for r in rated if r[0] == best_model or r[3] >= best_rate - self.quality_tolerance]
        ref_model, _, ref_cpc, _ = min(adequate, key=lambda r: (r[2], r[0]))
        return Reference(best_rate, best_model, ref_model, ref_cpc)

    # -- checkpoint ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"half_life_ms": self.half_life_ms, "min_calls": self.min_calls,
                "quality_tolerance": self.quality_tolerance,
                "clusters": {str(c): m for c, m in self.clusters.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "ClusterBaseline":
        b = cls(state["half_life_ms"] / 1000.0, state["min_calls"], state["quality_tolerance"])
        b.clusters = {int(c): {m: list(rec) for m, rec in ms.items()} for c, ms in state["clusters"].items()}
        return b


def regret(ref: Reference | None, calls: int, known: int, successes: int, cost_usd: float) -> tuple[float, float]:
    """(regret_cost_usd, quality_gap) of one window against the cluster's reference."""
    if ref is None or calls == 0:
        return 0.0, 0.0
    extra = max(0.0, cost_usd - calls * ref.reference_cost_per_call)
    gap = max(0.0, ref.best_success_rate - successes / known) if known else 0.0
    return extra, gap
