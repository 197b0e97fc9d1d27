"""The router decision function (pure): cost minimisation under the quality SLA, safety grades,
latency/cost budgets, escalation chains and seeded epsilon exploration."""
from __future__ import annotations

from pathlib import Path

import pytest

from serving.router import (LedgerStats, NoRoute, RouteCandidate, RouteRequest, Router, TaskFeatures,
                            build_candidates, wilson_lower)
from streams.pricing import PriceTable

REPO = Path(__file__).resolve().parents[2]
F = TaskFeatures(input_tokens=800, expected_output_tokens=200)

GPT4O = RouteCandidate("gpt-4o", "frontier", success_rate=0.99, evaluations=5000, safety_grade="A",
                       p95_latency_ms=2500, input_per_1k=0.0025, output_per_1k=0.010)
MINI = RouteCandidate("gpt-4o-mini", "frontier", success_rate=0.93, evaluations=5000, safety_grade="B",
                      p95_latency_ms=900, input_per_1k=0.00015, output_per_1k=0.0006)
SPEC = RouteCandidate("distillery/a1", "specialist", cluster_id=5, success_rate=0.95, evaluations=2000,
                      safety_grade="B", p95_latency_ms=300, gpu_second=0.0004, tokens_per_s=2000)
ALL = [GPT4O, MINI, SPEC]


def req(**kw):
    base = dict(features=F, cluster_id=5, safety_level="standard", tenant_tier="standard")
    base.update(kw)
    return RouteRequest(**base)


def no_explore():
    return Router(epsilon=0.0)


def test_costs_are_priced_per_token_or_per_gpu_second():
    assert GPT4O.cost(F) == pytest.approx((800 * 0.0025 + 200 * 0.010) / 1000)
    assert SPEC.cost(F) == pytest.approx((200 + 800 / 20) / 2000 * 0.0004)
    assert SPEC.cost(F) > 0                                              # a specialist is never free


def test_cheapest_qualified_model_wins_with_an_escalation_chain():
    d = no_explore().route(req(), ALL)
    assert d.primary == "distillery/a1"
    assert d.escalation_chain == ("gpt-4o",)                             # better than the primary; mini is not
    assert d.expected_cost_usd == pytest.approx(SPEC.cost(F) + 0.05 * GPT4O.cost(F))
    assert d.cost_range_usd == pytest.approx((SPEC.cost(F), SPEC.cost(F) + GPT4O.cost(F)))
    assert d.expected_p95_ms == 300                                      # escalates only 5 % of the time
    assert "distillery/a1" in d.justification and not d.explored


def test_higher_sla_tier_moves_to_the_frontier():
    d = no_explore().route(req(tenant_tier="enterprise"), ALL)           # SLA 0.97: only gpt-4o qualifies
    assert d.primary == "gpt-4o" and d.escalation_chain == ()


def test_safety_grade_is_a_hard_filter():
    d = no_explore().route(req(safety_level="high"), ALL)
    assert d.primary == "gpt-4o"
    with pytest.raises(NoRoute, match="safety grade >= A"):
        no_explore().route(req(safety_level="high"), [MINI, SPEC])


def test_specialists_serve_only_their_own_cluster():
    assert no_explore().route(req(cluster_id=6), ALL).primary == "gpt-4o-mini"


def test_unevaluated_specialist_never_qualifies_without_exploration():
    fresh = RouteCandidate("distillery/new", "specialist", cluster_id=5, state="active", safety_grade="B",
                           p95_latency_ms=200, gpu_second=0.0004, tokens_per_s=4000)
    assert no_explore().route(req(), [GPT4O, MINI, fresh]).primary == "gpt-4o-mini"


def test_latency_budget_and_cost_cap():
    slow_spec = RouteCandidate("distillery/slow", "specialist", cluster_id=5, success_rate=0.95, evaluations=2000,
                               safety_grade="B", p95_latency_ms=1500, gpu_second=0.0004, tokens_per_s=2000)
    good_mini = RouteCandidate("gpt-4o-mini", "frontier", success_rate=0.97, evaluations=5000, safety_grade="B",
                               p95_latency_ms=900, input_per_1k=0.00015, output_per_1k=0.0006)
    pool = [GPT4O, good_mini, slow_spec]
    assert no_explore().route(req(), pool).primary == "distillery/slow"
    d = no_explore().route(req(latency_budget_ms=1000), pool)
    assert d.primary == "gpt-4o-mini" and not d.relaxed and d.expected_p95_ms == 900
    # a cap below every qualified plan: cost is relaxed first, latency kept
    d = no_explore().route(req(latency_budget_ms=1000, max_cost_usd=1e-9), pool)
    assert d.primary == "gpt-4o-mini" and d.relaxed == ("max_cost",) and "relaxed" in d.justification
    # nothing within the latency budget either: the fastest qualified plan
    d = no_explore().route(req(latency_budget_ms=10, max_cost_usd=1e-9), pool)
    assert d.primary == "gpt-4o-mini" and d.relaxed == ("max_cost", "latency_budget")
    # a frequently escalating primary carries its escalation's latency into its p95
    d = no_explore().route(req(latency_budget_ms=1000), [GPT4O, MINI, slow_spec])
    assert d.relaxed == ("max_cost", "latency_budget")


def test_no_candidate_meets_the_sla():
    weak = RouteCandidate("m", "frontier", success_rate=0.5, evaluations=1000, safety_grade="A", input_per_1k=0.001)
    weaker = RouteCandidate("n", "frontier", success_rate=0.4, evaluations=1000, safety_grade="A", input_per_1k=0.0001)
    d = no_explore().route(req(), [weak, weaker])
    assert d.primary == "m" and d.relaxed == ("quality_sla",)


def test_p95_includes_the_escalation_when_it_is_frequent():
    shaky = RouteCandidate("distillery/a1", "specialist", cluster_id=5, success_rate=0.90, evaluations=5000,
                           safety_grade="B", p95_latency_ms=300, gpu_second=0.0004, tokens_per_s=2000)
    d = no_explore().route(req(tenant_tier="free"), [GPT4O, MINI, shaky])
    assert d.primary == "distillery/a1" and d.escalation_chain[0] == "gpt-4o-mini"
    assert d.expected_p95_ms == pytest.approx(300 + 900)


def test_context_window_and_tools():
    small = RouteCandidate("distillery/a1", "specialist", cluster_id=5, success_rate=0.99, evaluations=5000,
                           safety_grade="B", p95_latency_ms=300, gpu_second=0.0004, tokens_per_s=2000,
                           context_len=512, supports_tools=False)
    assert no_explore().route(req(), [GPT4O, MINI, small]).primary == "gpt-4o-mini"     # 1000 tokens > 512
    short = TaskFeatures(input_tokens=100, expected_output_tokens=50)
    assert no_explore().route(req(features=short), [GPT4O, MINI, small]).primary == "distillery/a1"
    tools = TaskFeatures(input_tokens=100, expected_output_tokens=50, needs_tools=True)
    assert no_explore().route(req(features=tools), [GPT4O, MINI, small]).primary == "gpt-4o-mini"


def test_unknown_tier_or_safety_level_is_an_error():
    with pytest.raises(ValueError, match="tenant tier"):
        no_explore().route(req(tenant_tier="gold"), ALL)
    with pytest.raises(ValueError, match="safety level"):
        no_explore().route(req(safety_level="max"), ALL)


# -- exploration -----------------------------------------------------------------------------
SHADOW = RouteCandidate("distillery/b2", "specialist", state="shadow", cluster_id=5, success_rate=0.9, evaluations=12,
                        safety_grade="B", p95_latency_ms=250, gpu_second=0.0004, tokens_per_s=3000)


def test_exploration_rate_follows_epsilon_and_is_seeded():
    r1, r2 = Router(epsilon=0.1, seed=42), Router(epsilon=0.1, seed=42)
    seq1 = [r1.route(req(), ALL + [SHADOW]) for _ in range(2000)]
    seq2 = [r2.route(req(), ALL + [SHADOW]) for _ in range(2000)]
    assert [d.primary for d in seq1] == [d.primary for d in seq2]
    explored = [d for d in seq1 if d.explored]
    assert 0.07 < len(explored) / 2000 < 0.13
    d = explored[0]
    assert d.primary == "distillery/b2"
    assert d.escalation_chain[0] == "distillery/a1"                      # the exploit choice backs it up
    assert "exploring" in d.justification
    assert all(x.primary == "distillery/a1" for x in seq1 if not x.explored)


def test_no_exploration_for_protected_tiers_or_when_evaluated_enough():
    r = Router(epsilon=1.0, seed=1)
    assert not r.route(req(tenant_tier="enterprise"), ALL + [SHADOW]).explored
    assert r.route(req(), ALL + [SHADOW]).explored
    evaluated = RouteCandidate("distillery/b2", "specialist", state="shadow", cluster_id=5, success_rate=0.9,
                               evaluations=10_000, safety_grade="B", p95_latency_ms=250)
    assert not r.route(req(), ALL + [evaluated]).explored
    unsafe = RouteCandidate("distillery/b3", "specialist", state="shadow", cluster_id=5, evaluations=0,
                            safety_grade="D", p95_latency_ms=250)
    assert not r.route(req(), ALL + [unsafe]).explored                   # exploration never bypasses safety


def test_wilson_lower_bound():
    assert wilson_lower(0, 0) == 0.0
    assert wilson_lower(95, 100) < 0.95 < wilson_lower(95_000, 100_000) + 0.01
    assert wilson_lower(950, 1000) > wilson_lower(95, 100)


# -- candidates from registry + ledger -------------------------------------------------------
def test_build_candidates_from_registry_ledger_and_prices():
    prices = PriceTable.load(REPO / "distillery" / "defaults" / "prices.json")
    registry = [
        {"model_id": "gpt-4o", "kind": "api", "state": "active", "cluster_id": None, "attributes": {"safety_grade": "A"}},
        {"model_id": "a1", "kind": "adapter", "state": "active", "cluster_id": 5, "eval_scores": {},
         "attributes": {"safety_grade": "B", "tokens_per_s": "2000", "context_len": "256"}},
        {"model_id": "b2", "kind": "adapter", "state": "shadow", "cluster_id": 5, "eval_scores": {"success_rate": 0.9},
         "attributes": {"shadow_calls": "40"}},
        {"model_id": "c3", "kind": "adapter", "state": "active", "cluster_id": 6, "attributes": {}},
        {"model_id": "d4", "kind": "adapter", "state": "deprecated", "cluster_id": 5, "attributes": {}},
    ]
    ledger = {
        "gpt-4o-mini": LedgerStats(calls=1000, known=900, successes=850, cost_usd=0.4, p95_latency_ms=800),
        "distillery/a1": LedgerStats(calls=500, known=500, successes=480, cost_usd=0.05, p95_latency_ms=200),
    }
    cands = {c.model: c for c in build_candidates(5, registry, ledger, prices)}
    assert set(cands) == {"gpt-4o", "gpt-4o-mini", "distillery/a1", "distillery/b2"}
    a1, b2, mini = cands["distillery/a1"], cands["distillery/b2"], cands["gpt-4o-mini"]
    assert (a1.success_rate, a1.evaluations, a1.gpu_second, a1.context_len) == (0.96, 500, 0.0004, 256)
    assert (b2.state, b2.success_rate, b2.evaluations) == ("shadow", 0.9, 40)
    assert mini.kind == "frontier" and mini.success_rate == pytest.approx(850 / 900) and mini.output_per_1k == 0.0006
    assert cands["gpt-4o"].safety_grade == "A" and cands["gpt-4o"].success_rate is None
    d = Router(epsilon=0.0).route(req(features=TaskFeatures(100, 50)), cands.values())
    assert d.primary == "distillery/a1"
