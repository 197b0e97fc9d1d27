"""The router's decision function: which model answers a call, and where it escalates.

Pure logic, no I/O: serving calls `Router.route(request, candidates)` per request and builds the
candidates from what the registry and the ledger know (`build_candidates`).

Rule (documented in docs/analysts.md, "How the router decides"):
  1. Hard filters: safety grade >= what the request's safety level needs, context window fits,
     tool support when tools are needed; specialists only for their own cluster.
  2. Quality: a candidate is *qualified* when the lower bound of its success rate (Wilson, 90 %
     one-sided) reaches the tenant tier's SLA. Frontier models with no ledger history count as
     qualified (they are the status quo); specialists without evidence never do.
  3. Among qualified candidates within the latency budget (p95) and the cost cap (expected
     cost, escalations included), the cheapest expected cost wins; ties go to the lower p95,
     then the name.
  4. Escalation chain: the cheapest qualified candidate that is better than the primary, then
     the best frontier model (at most `max_chain` hops).
  5. Exploration: with probability epsilon (seeded RNG), and never for tiers in
     `no_explore_tiers`, an under-evaluated specialist of the cluster (fewer than
     `min_evaluations` scored calls, active or shadow) that passes the hard filters and the
     latency budget answers instead, with the exploit choice as its first escalation.
  6. If nothing qualifies within budget, constraints are relaxed in this order: cost cap,
     then latency budget, then the SLA (best available quality); the justification says which.
Expected cost = c0 + (1 - q0) * (c1 + (1 - q1) * c2 ...). Expected p95: when the primary
escalates more than 5 % of the time, the 95th percentile call is an escalated one, so its
latency is the primary's p95 plus the first escalation's.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from streams.metrics.baseline import wilson_lower

SAFETY_GRADES = ("A", "B", "C", "D")                       # A is best
SAFETY_LEVELS = {"low": "C", "standard": "B", "high": "A"}  # request level -> minimum grade
DEFAULT_SLA = {"free": 0.85, "standard": 0.92, "enterprise": 0.97}


class NoRoute(RuntimeError):
    """No candidate passes the hard filters (safety, context, tools)."""


@dataclass(frozen=True)
class TaskFeatures:
    input_tokens: int
    expected_output_tokens: int = 256
    needs_tools: bool = False
    json_mode: bool = False


@dataclass(frozen=True)
class RouteRequest:
    features: TaskFeatures
    cluster_id: int | None = None
    latency_budget_ms: float | None = None
    max_cost_usd: float | None = None
    safety_level: str = "standard"
    tenant_tier: str = "standard"


@dataclass(frozen=True)
class RouteCandidate:
    model: str
    kind: str                              # frontier | specialist
    state: str = "active"                  # active | shadow
    cluster_id: int | None = None          # the cluster a specialist serves
    success_rate: float | None = None      # on this cluster, from the ledger or shadow results
    evaluations: int = 0                   # scored calls behind success_rate
    safety_grade: str = "B"
    p95_latency_ms: float = 1_000.0
    input_per_1k: float = 0.0              # token-priced (API) models
    output_per_1k: float = 0.0
    gpu_second: float | None = None        # GPU-priced (self-hosted) models
    tokens_per_s: float | None = None
    mean_cost_usd: float | None = None     # observed cost per call, used when no price applies
    context_len: int | None = None
    supports_tools: bool = True

    def cost(self, f: TaskFeatures) -> float:
        if self.gpu_second is not None:
            if self.tokens_per_s:
                # Decoding dominates; prefill runs ~20x faster per token on the same GPU.
                seconds = (f.expected_output_tokens + f.input_tokens / 20.0) / self.tokens_per_s
                return seconds * self.gpu_second
            return self.mean_cost_usd or 0.0
        if self.input_per_1k or self.output_per_1k:
            return (f.input_tokens * self.input_per_1k + f.expected_output_tokens * self.output_per_1k) / 1000.0
        return self.mean_cost_usd or 0.0


@dataclass(frozen=True)
class RouteDecision:
    primary: str
    escalation_chain: tuple[str, ...]
    justification: str
    expected_cost_usd: float
    cost_range_usd: tuple[float, float]     # (primary succeeds, every hop is used)
    expected_p95_ms: float
    explored: bool = False
    relaxed: tuple[str, ...] = ()           # constraints that could not be met


def grade_ok(grade: str, minimum: str) -> bool:
    return grade in SAFETY_GRADES and SAFETY_GRADES.index(grade) <= SAFETY_GRADES.index(minimum)


@dataclass
class Router:
    quality_sla: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SLA))
    epsilon: float = 0.05
    min_evaluations: int = 200
    no_explore_tiers: tuple[str, ...] = ("enterprise",)
    max_chain: int = 2
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon={self.epsilon} must be between 0 and 1")
        self.rng = random.Random(self.seed)

    # -- estimates -------------------------------------------------------------------------
    def sla(self, tier: str) -> float:
        if tier not in self.quality_sla:
            raise ValueError(f"unknown tenant tier {tier!r}; known: {', '.join(sorted(self.quality_sla))}")
        return self.quality_sla[tier]

    def quality_bound(self, c: RouteCandidate) -> float | None:
        """Lower bound of the success rate; None = unknown (frontier status quo)."""
        if c.success_rate is None or c.evaluations <= 0:
            return None if c.kind == "frontier" else 0.0
        return wilson_lower(c.success_rate * c.evaluations, c.evaluations)

    def _q(self, c: RouteCandidate, sla: float) -> float:
        """Point estimate used for escalation probabilities."""
        return c.success_rate if c.success_rate is not None and c.evaluations > 0 else (sla if c.kind == "frontier" else 0.0)

    def _qualified(self, c: RouteCandidate, sla: float) -> bool:
        if c.kind == "specialist" and c.state != "active":
            return False
        lb = self.quality_bound(c)
        return lb is None or lb >= sla

    def _chain(self, primary: RouteCandidate, pool: Sequence[RouteCandidate], sla: float, f: TaskFeatures) -> list[RouteCandidate]:
        q0 = self._q(primary, sla)
        better = [c for c in pool if c.model != primary.model and self._qualified(c, sla) and self._q(c, sla) > q0]
        chain: list[RouteCandidate] = []
        if better:
            chain.append(min(better, key=lambda c: (c.cost(f), c.p95_latency_ms, c.model)))
        frontier = [c for c in pool if c.kind == "frontier" and c.model != primary.model]
        if frontier:
            best = max(frontier, key=lambda c: (self._q(c, sla), -c.cost(f), c.model))
            top = self._q(chain[-1], sla) if chain else q0
            if best not in chain and self._q(best, sla) > top:
                chain.append(best)
        return chain[: self.max_chain]

    def _expected(self, path: Sequence[RouteCandidate], sla: float, f: TaskFeatures) -> tuple[float, float, float]:
        """(expected cost, cost if all hops run, expected p95) of a primary + chain."""
        exp, reach = 0.0, 1.0
        for c in path:
            exp += reach * c.cost(f)
            reach *= 1.0 - self._q(c, sla)
        worst = sum(c.cost(f) for c in path)
        p95 = path[0].p95_latency_ms
        if len(path) > 1 and 1.0 - self._q(path[0], sla) > 0.05 + 1e-9:
            p95 += path[1].p95_latency_ms
        return exp, worst, p95

    # -- decision --------------------------------------------------------------------------
    def route(self, req: RouteRequest, candidates: Iterable[RouteCandidate]) -> RouteDecision:
        sla = self.sla(req.tenant_tier)
        if req.safety_level not in SAFETY_LEVELS:
            raise ValueError(f"unknown safety level {req.safety_level!r}; known: {', '.join(SAFETY_LEVELS)}")
        need_grade = SAFETY_LEVELS[req.safety_level]
        f = req.features
        tokens = f.input_tokens + f.expected_output_tokens
        pool = [c for c in candidates
                if grade_ok(c.safety_grade, need_grade)
                and (c.context_len is None or c.context_len >= tokens)
                and (c.supports_tools or not f.needs_tools)
                and (c.kind == "frontier" or (c.cluster_id is not None and c.cluster_id == req.cluster_id))]
        if not pool:
            raise NoRoute(f"no model passes safety grade >= {need_grade} ({req.safety_level}), "
                          f"a {tokens}-token context{' and tool calling' if f.needs_tools else ''} for cluster {req.cluster_id}")
        pool.sort(key=lambda c: c.model)

        plans = {c.model: self._plan(c, pool, sla, f) for c in pool}
        lat_ok = lambda c: req.latency_budget_ms is None or plans[c.model][3] <= req.latency_budget_ms  # noqa: E731
        cost_ok = lambda c: req.max_cost_usd is None or plans[c.model][1] <= req.max_cost_usd  # noqa: E731
        qualified = [c for c in pool if self._qualified(c, sla)]
        by_cost = lambda c: (plans[c.model][1], plans[c.model][3], c.model)  # noqa: E731

        relaxed: tuple[str, ...] = ()
        fits = [c for c in qualified if lat_ok(c) and cost_ok(c)]
        if fits:
            choice = min(fits, key=by_cost)
        elif [c for c in qualified if lat_ok(c)]:
            choice, relaxed = min([c for c in qualified if lat_ok(c)], key=by_cost), ("max_cost",)
        elif qualified:
            choice, relaxed = min(qualified, key=lambda c: (plans[c.model][3], plans[c.model][1], c.model)), ("max_cost", "latency_budget")
        else:
            active = [c for c in pool if not (c.kind == "specialist" and c.state != "active")] or pool
            choice = max(active, key=lambda c: (self.quality_bound(c) or 0.0, -plans[c.model][1], c.model))
            relaxed = ("quality_sla",)

        explore = None
        if self.epsilon > 0 and req.tenant_tier not in self.no_explore_tiers:
            under = [c for c in pool if c.kind == "specialist" and c.evaluations < self.min_evaluations
                     and c.model != choice.model and (req.latency_budget_ms is None or c.p95_latency_ms <= req.latency_budget_ms)]
            # Draw only when there is something to explore, so the RNG stream (and tests) stay stable.
            if under and self.rng.random() < self.epsilon:
                explore = min(under, key=lambda c: (c.evaluations, c.model))

        if explore is not None:
            path = [explore, choice] + [c for c in plans[choice.model][0] if c.model != explore.model]
            path = path[: self.max_chain + 1]
            exp, worst, p95 = self._expected(path, sla, f)
            why = (f"exploring {explore.model}: {explore.evaluations} scored calls < {self.min_evaluations} "
                   f"(epsilon {self.epsilon}); escalates to {choice.model}, the cheapest model meeting the "
                   f"{req.tenant_tier} SLA {sla:.2f}")
            return RouteDecision(explore.model, tuple(c.model for c in path[1:]), why, exp, (path[0].cost(f), worst), p95, True, relaxed)

        chain, exp, worst, p95 = plans[choice.model]
        lb = self.quality_bound(choice)
        qual = "no ledger history (frontier status quo)" if lb is None else f"success lower bound {lb:.3f}"
        why = (f"{choice.model} ({choice.kind}): cheapest expected cost ${exp:.6f} with {qual} vs "
               f"{req.tenant_tier} SLA {sla:.2f}, safety {choice.safety_grade} >= {need_grade}, p95 {p95:.0f} ms")
        if relaxed:
            why += "; relaxed: " + ", ".join(relaxed)
        return RouteDecision(choice.model, tuple(c.model for c in chain), why, exp, (choice.cost(f), worst), p95, False, relaxed)

    def _plan(self, c: RouteCandidate, pool: Sequence[RouteCandidate], sla: float, f: TaskFeatures):
        chain = self._chain(c, pool, sla, f)
        exp, worst, p95 = self._expected([c] + chain, sla, f)
        return chain, exp, worst, p95


# ---------------------------------------------------------------------------------------
# Candidates from the registry and the ledger
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerStats:
    """One model's record on one cluster (e.g. summed from metric windows)."""
    calls: int
    known: int              # calls with a known outcome
    successes: int
    cost_usd: float
    p95_latency_ms: float


def adapter_model_name(adapter_id: str) -> str:
    return f"distillery/{adapter_id}"


def build_candidates(cluster_id: int | None, registry: Iterable[Mapping[str, Any]],
                     ledger: Mapping[str, LedgerStats], prices: Any,
                     default_frontier_grade: str = "A", default_p95_ms: float = 2_000.0) -> list[RouteCandidate]:
    """Route candidates for one cluster.

    registry: the newest RegistryEvent per model_id (kind api | base | adapter).
    ledger:   model name -> LedgerStats on this cluster; adapters appear as distillery/<id>.
    prices:   streams.pricing.PriceTable (anything with lookup(model) -> price or None).
    Frontier models are the API models of the registry plus any token-priced model the ledger
    saw on the cluster; specialists are the cluster's adapters in state active or shadow.
    """
    out: dict[str, RouteCandidate] = {}
    api_attrs: dict[str, Mapping[str, str]] = {}
    for ev in registry:
        attrs = ev.get("attributes") or {}
        if ev.get("kind") == "api" and ev.get("state") == "active":
            api_attrs[ev["model_id"]] = attrs
        elif (ev.get("kind") == "adapter" and ev.get("cluster_id") == cluster_id
              and ev.get("state") in ("active", "shadow")):
            name = adapter_model_name(ev["model_id"])
            led = ledger.get(name)
            scores = ev.get("eval_scores") or {}
            shadow_calls = int(float(attrs.get("shadow_calls", 0)))
            if led and led.known:
                rate, n = led.successes / led.known, led.known
            elif "success_rate" in scores:
                rate, n = scores["success_rate"], shadow_calls
            else:
                rate, n = None, 0
            price = prices.lookup(name) if prices is not None else None
            out[name] = RouteCandidate(
                model=name, kind="specialist", state=ev["state"], cluster_id=cluster_id,
                success_rate=rate, evaluations=n, safety_grade=attrs.get("safety_grade", "B"),
                p95_latency_ms=led.p95_latency_ms if led else float(attrs.get("p95_latency_ms", default_p95_ms)),
                gpu_second=getattr(price, "gpu_second", None),
                tokens_per_s=float(attrs["tokens_per_s"]) if "tokens_per_s" in attrs else None,
                mean_cost_usd=(led.cost_usd / led.calls) if led and led.calls else None,
                context_len=int(attrs["context_len"]) if "context_len" in attrs else None)
    frontier = set(api_attrs)
    for model in ledger:
        price = prices.lookup(model) if prices is not None else None
        if price is not None and getattr(price, "gpu_second", None) is None and model not in out:
            frontier.add(model)
    for model in sorted(frontier):
        attrs = api_attrs.get(model, {})
        led = ledger.get(model)
        price = prices.lookup(model) if prices is not None else None
        out[model] = RouteCandidate(
            model=model, kind="frontier", state="active",
            success_rate=(led.successes / led.known) if led and led.known else None,
            evaluations=led.known if led else 0,
            safety_grade=attrs.get("safety_grade", default_frontier_grade),
            p95_latency_ms=led.p95_latency_ms if led else float(attrs.get("p95_latency_ms", default_p95_ms)),
            input_per_1k=getattr(price, "input_per_1k", 0.0) or 0.0,
            output_per_1k=getattr(price, "output_per_1k", 0.0) or 0.0,
            mean_cost_usd=(led.cost_usd / led.calls) if led and led.calls else None,
            context_len=int(attrs["context_len"]) if "context_len" in attrs else None,
            supports_tools=attrs.get("supports_tools", "true") != "false")
    return [out[k] for k in sorted(out)]
