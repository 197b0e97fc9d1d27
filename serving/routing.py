"""The routing contract between the serving app and the router decision function
(serving/router.py, written separately), plus the live per-model statistics the router reads.

Inputs: task features, cluster id, latency budget, max cost, safety level, tenant tier and the
candidates serving can answer with right now. Output: primary model, escalation chain,
justification, expected cost range and expected p95 latency.

`route()` calls serving.router when it is importable, else `baseline_route`, the rule serving
applied before a router existed: the cluster's active specialist, escalating to the upstream
LLM; the upstream LLM alone when the cluster has no specialist or the request asks for the
highest safety level.
"""
from __future__ import annotations

import importlib
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from serving.promotion import quantile

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Candidate:
    model: str                        # "distillery/<adapter_id>" or the upstream model name
    kind: str                         # specialist | upstream
    adapter_id: str | None = None
    p95_latency_ms: float | None = None
    cost_per_call_usd: tuple[float, float] | None = None   # (p5, p95) of recent calls
    calls: int = 0
    cluster_id: int | None = None
    success_rate: float | None = None  # evidence: served record, shadow gate, or held-out eval
    evaluations: int = 0
    evidence_source: str = ""
    mean_cost_usd: float | None = None
    input_per_1k: float = 0.0
    output_per_1k: float = 0.0
    gpu_second: float | None = None


@dataclass(frozen=True)
class RouteRequest:
    task_features: dict[str, Any]
    cluster_id: int | None
    latency_budget_ms: float | None
    max_cost_usd: float | None
    safety_level: str
    tenant_tier: str
    candidates: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class RouteDecision:
    primary_model: str
    escalation_chain: tuple[str, ...]
    justification: str
    expected_cost_usd: tuple[float, float] | None = None
    expected_p95_latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self, **more: Any) -> dict[str, Any]:
        """The x-distillery-route header body."""
        out = {"primary_model": self.primary_model, "escalation_chain": list(self.escalation_chain),
               "justification": self.justification,
               "expected_cost_usd": list(self.expected_cost_usd) if self.expected_cost_usd else None,
               "expected_p95_latency_ms": self.expected_p95_latency_ms}
        out.update(self.extra)
        out.update(more)
        return out


def baseline_route(req: RouteRequest) -> RouteDecision:
    specialist = next((c for c in req.candidates if c.kind == "specialist"), None)
    upstream = next((c for c in req.candidates if c.kind == "upstream"), None)
    if specialist is not None and req.safety_level != "high":
        chain = (upstream.model,) if upstream else ()
        return RouteDecision(specialist.model, chain,
                             f"cluster {req.cluster_id} has an active specialist; escalate to the upstream LLM on a malformed answer",
                             specialist.cost_per_call_usd, specialist.p95_latency_ms)
    if upstream is None:
        raise LookupError("no model can answer: the cluster has no specialist and no upstream LLM is configured")
    why = ("the highest safety level asks for the frontier model" if specialist is not None
           else f"cluster {req.cluster_id} has no active specialist" if req.cluster_id is not None
           else "the request matches no known task cluster")
    return RouteDecision(upstream.model, (), why, upstream.cost_per_call_usd, upstream.p95_latency_ms)


def _router_module():
    try:
        return importlib.import_module("serving.router")
    except ModuleNotFoundError as exc:
        if exc.name != "serving.router":
            raise
        return None


class RouterAdapter:
    """Calls serving.router.Router (the router's own request and candidate types) with what
    serving knows, and maps its decision back to RouteDecision."""

    def __init__(self, router: Any = None, seed: int | None = None):
        mod = _router_module()
        if mod is None:
            raise ImportError("serving.router is not available")
        self.mod = mod
        self.router = router if router is not None else mod.Router(seed=seed)

    def __call__(self, req: RouteRequest) -> RouteDecision:
        m = self.mod
        f = req.task_features
        features = m.TaskFeatures(input_tokens=int(f.get("input_tokens") or 1),
                                  expected_output_tokens=int(f.get("max_tokens") or 256),
                                  needs_tools=bool(f.get("has_tools")), json_mode=bool(f.get("expects_json")))
        tier = req.tenant_tier if req.tenant_tier in self.router.quality_sla else "standard"
        safety = req.safety_level if req.safety_level in m.SAFETY_LEVELS else "standard"
        rr = m.RouteRequest(features=features, cluster_id=req.cluster_id, latency_budget_ms=req.latency_budget_ms,
                            max_cost_usd=req.max_cost_usd, safety_level=safety, tenant_tier=tier)
        cands = [m.RouteCandidate(
            model=c.model, kind="frontier" if c.kind == "upstream" else "specialist", state="active",
            cluster_id=c.cluster_id if c.kind == "specialist" else None,
            success_rate=c.success_rate, evaluations=c.evaluations,
            safety_grade="A" if c.kind == "upstream" else "B",
            p95_latency_ms=c.p95_latency_ms if c.p95_latency_ms is not None else 2_000.0,
            input_per_1k=c.input_per_1k, output_per_1k=c.output_per_1k, gpu_second=c.gpu_second,
            mean_cost_usd=c.mean_cost_usd) for c in req.candidates]
        d = m.Router.route(self.router, rr, cands)
        return RouteDecision(d.primary, tuple(d.escalation_chain), d.justification,
                             tuple(d.cost_range_usd), d.expected_p95_ms,
                             {"expected_cost_usd_mean": d.expected_cost_usd, "explored": d.explored,
                              "relaxed": list(d.relaxed), "router": "serving.router"})


def default_router(quality_sla: dict[str, float] | None = None) -> Callable[[RouteRequest], RouteDecision]:
    """serving.router when it is there (with these per-tier quality floors over its defaults),
    else the baseline rule."""
    try:
        mod = _router_module()
        if mod is not None and quality_sla:
            return RouterAdapter(mod.Router(quality_sla={**mod.DEFAULT_SLA, **quality_sla}))
        return RouterAdapter()
    except ImportError:
        return baseline_route


def route(req: RouteRequest, router: Callable[[RouteRequest], Any] | None = None) -> RouteDecision:
    """Ask the router; fall back to the baseline rule if it fails or names a model serving cannot use."""
    fn = router or baseline_route
    try:
        decision = fn(req)
    except LookupError:
        raise
    except Exception as exc:   # a router bug must not take the serving path down
        log.warning("router failed (%s); using the baseline rule", exc)
        return baseline_route(req)
    usable = {c.model for c in req.candidates}
    if decision.primary_model not in usable or any(m not in usable for m in decision.escalation_chain):
        log.warning("router chose %s -> %s, which this replica cannot serve; using the baseline rule",
                    decision.primary_model, decision.escalation_chain)
        return baseline_route(req)
    return decision


class ModelStats:
    """Rolling latency and cost of each model this replica served (learn_one per answer)."""

    def __init__(self, window: int = 500):
        self.window = window
        self._lat: dict[str, deque[float]] = {}
        self._cost: dict[str, deque[float]] = {}

    def learn_one(self, model: str, latency_ms: float, cost_usd: float) -> "ModelStats":
        self._lat.setdefault(model, deque(maxlen=self.window)).append(float(latency_ms))
        self._cost.setdefault(model, deque(maxlen=self.window)).append(float(cost_usd))
        return self

    def calls(self, model: str) -> int:
        return len(self._lat.get(model, ()))

    def p95_latency_ms(self, model: str) -> float | None:
        values = self._lat.get(model)
        return quantile(values, 0.95) if values else None

    def cost_range(self, model: str) -> tuple[float, float] | None:
        values = self._cost.get(model)
        if not values:
            return None
        lo, hi = quantile(values, 0.05), quantile(values, 0.95)
        return (round(lo, 10), round(hi, 10)) if not (math.isnan(lo) or math.isnan(hi)) else None

    def mean_cost(self, model: str) -> float | None:
        values = self._cost.get(model)
        return sum(values) / len(values) if values else None
