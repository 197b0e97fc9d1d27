"""Promotion policy: the S6 gate, demotion triggers, deterministic decision ids."""
from __future__ import annotations

import math

import pytest

from distillery.settings import SettingsError
from serving.promotion import (AdapterState, PromotionPolicy, PromotionThresholds, ServedFormatMonitor,
                               ShadowScoreboard, decision_id, evaluate_shadow, is_fatal_drift, quantile)


def shadow_result(i: int, adapter: str = "a1", cluster: int = 7, *, fmt: bool = True, em: bool = True,
                  f1: float = 1.0, tools: bool = True, esc: bool = False, safety: bool = False,
                  p_lat: float = 100.0, s_lat: float = 90.0, p_cost: float = 0.01, s_cost: float = 0.001) -> dict:
    return {"result_id": f"r{i}", "event_id": f"e{i}", "adapter_id": adapter, "cluster_id": cluster,
            "primary_model": "gpt-4o", "exact_match": em, "field_f1": f1, "format_valid": fmt,
            "tool_calls_valid": tools, "escalated": esc, "safety_incident": safety,
            "primary_latency_ms": p_lat, "shadow_latency_ms": s_lat,
            "primary_cost_usd": p_cost, "shadow_cost_usd": s_cost}


def shadow_policy(**overrides) -> PromotionPolicy:
    policy = PromotionPolicy(PromotionThresholds(**overrides))
    policy.track(AdapterState("a1", 7, "shadow", epoch="cmd-shadow-1", rollback_to=None))
    return policy


def feed(policy: PromotionPolicy, n: int, start: int = 0, **kw) -> list:
    out = []
    for i in range(start, start + n):
        out += policy.learn_shadow(shadow_result(i, **kw))
    return out


def test_promotes_only_after_300_good_shadow_calls():
    policy = shadow_policy()
    assert feed(policy, 299) == []
    decisions = feed(policy, 1, start=299)
    assert len(decisions) == 1
    d = decisions[0]
    assert (d.action, d.adapter_id, d.cluster_id, d.trigger) == ("promote", "a1", 7, "shadow_gate")
    assert d.evidence["calls"] == 300
    assert d.evidence["cost_reduction"] == pytest.approx(0.9)
    # further good calls do not repeat the decision
    assert feed(policy, 10, start=300) == []


@pytest.mark.parametrize("bad, why", [
    (dict(fmt=False), "format_compliance"),          # 3 % malformed > 2 % allowed
    (dict(em=False, f1=0.5), "success_parity"),      # 6 % disagreement
    (dict(esc=True), "escalation_rate"),             # 5 % is not < 5 %
])
def test_each_quality_criterion_blocks_promotion(bad, why):
    policy = shadow_policy()
    bad_every = {"format_compliance": 33, "success_parity": 16, "escalation_rate": 20}[why]
    for i in range(400):
        kw = bad if i % bad_every == 0 else {}
        assert policy.learn_shadow(shadow_result(i, **kw)) == []
    passes, failed = evaluate_shadow(policy.scoreboard("a1").evidence(), policy.t)
    assert not passes and any(why in f for f in failed)


def test_latency_and_cost_criteria():
    slow = shadow_policy()
    assert feed(slow, 400, s_lat=111.0) == []          # +11 % > +10 %
    ok = shadow_policy()
    assert len(feed(ok, 300, s_lat=109.0)) == 1       # +9 % is within budget
    pricey = shadow_policy()
    assert feed(pricey, 400, s_cost=0.0075) == []      # only 25 % cheaper


def test_thresholds_are_configurable():
    policy = shadow_policy(min_shadow_calls=20, evaluation_window=20)
    assert len(feed(policy, 20)) == 1


def test_safety_incident_in_shadow_withdraws_candidate():
    policy = shadow_policy()
    feed(policy, 10)
    decisions = policy.learn_shadow(shadow_result(10, safety=True))
    assert [(d.action, d.trigger) for d in decisions] == [("demote", "safety_incident")]
    assert decisions[0].is_demotion


def test_results_of_untracked_or_other_cluster_are_ignored():
    policy = shadow_policy(min_shadow_calls=1, evaluation_window=1)
    assert policy.learn_shadow(shadow_result(0, adapter="zz")) == []
    assert policy.learn_shadow(shadow_result(0, cluster=8)) == []


def active_policy(rollback_to=None) -> PromotionPolicy:
    policy = PromotionPolicy()
    policy.track(AdapterState("a1", 7, "active", epoch="cmd-promote-1", rollback_to=rollback_to))
    return policy


def test_format_error_rate_over_rolling_50_demotes_with_rollback_target():
    policy = active_policy(rollback_to="a0")
    out = []
    # 2 errors in 50 = 4 %: stays
    for i in range(100):
        out += policy.learn_served("a1", format_valid=(i % 50 not in (10, 11)))
    assert out == []
    # a third error in the window: 6 % > 5 %
    decisions = policy.learn_served("a1", format_valid=False) + policy.learn_served("a1", format_valid=False)
    assert len(decisions) == 1
    d = decisions[0]
    assert (d.action, d.rollback_to, d.trigger) == ("rollback", "a0", "format_errors")
    assert d.evidence["format_errors"] == 3 and d.evidence["format_error_rate"] == pytest.approx(0.06)
    assert "a0" in d.what_to_do


def test_old_errors_leave_the_window():
    policy = active_policy()
    for i in range(500):
        # 2 errors every 50 calls, never 3 in any 50-call window
        assert policy.learn_served("a1", format_valid=i % 25 != 0) == []


def test_served_safety_incident_rolls_back_to_llm():
    policy = active_policy()
    d, = policy.learn_served("a1", format_valid=True, safety_incident=True, detail="leaked an email address")
    assert d.action == "rollback" and d.rollback_to is None and "email" in d.reason
    assert "upstream LLM" in d.what_to_do


def test_fatal_drift_rolls_back_active_and_resets_shadow_evidence():
    policy = PromotionPolicy()
    policy.track(AdapterState("act", 3, "active", "p1", rollback_to="older"))
    policy.track(AdapterState("cand", 3, "shadow", "s1", rollback_to=None))
    policy.track(AdapterState("other", 4, "active", "p2", rollback_to=None))
    for i in range(5):
        policy.learn_shadow(shadow_result(i, adapter="cand", cluster=3))
    assert policy.scoreboard("cand").calls == 5
    warning = {"drift_id": "d0", "cluster_id": 3, "metric": "latency_ms", "before": 100, "after": 130, "severity": "warning"}
    assert policy.learn_drift(warning) == []
    fatal = dict(warning, drift_id="d1", severity="fatal")
    decisions = policy.learn_drift(fatal)
    assert [(d.adapter_id, d.action, d.rollback_to) for d in decisions] == [("act", "rollback", None)]
    assert policy.scoreboard("cand").calls == 0
    assert policy.learn_drift(fatal) == []     # same drift event twice: one decision


def test_success_rate_cliff_is_fatal_even_as_warning():
    t = PromotionThresholds()
    assert is_fatal_drift({"metric": "success_rate", "before": 0.9, "after": 0.6, "severity": "warning"}, t)
    assert not is_fatal_drift({"metric": "success_rate", "before": 0.9, "after": 0.8, "severity": "warning"}, t)


def test_decision_ids_are_deterministic_and_scoped_to_epoch():
    a = decision_id("promote", "a1", 7, "cmd-shadow-1", "shadow_gate")
    assert a == decision_id("promote", "a1", 7, "cmd-shadow-1", "shadow_gate")
    assert a != decision_id("promote", "a1", 7, "cmd-shadow-2", "shadow_gate")
    # two replicas seeing the same evidence reach the same command id
    p1, p2 = shadow_policy(), shadow_policy()
    assert feed(p1, 300)[0].command_id == feed(p2, 300)[0].command_id


def test_new_epoch_resets_evidence():
    policy = shadow_policy()
    feed(policy, 200)
    policy.track(AdapterState("a1", 7, "shadow", epoch="cmd-shadow-2", rollback_to=None))
    assert policy.scoreboard("a1").calls == 0


def test_parse_thresholds():
    t = PromotionThresholds.parse("min_shadow_calls=10, evaluation_window=10,max_escalation_rate=0.02")
    assert (t.min_shadow_calls, t.max_escalation_rate) == (10, 0.02)
    assert PromotionThresholds.parse('{"demote_window": 20}').demote_window == 20
    assert PromotionThresholds.parse("fatal_drift_severities=fatal|warning").fatal_drift_severities == ("fatal", "warning")
    assert PromotionThresholds.parse(None) == PromotionThresholds()
    with pytest.raises(SettingsError, match="unknown threshold"):
        PromotionThresholds.parse("nope=1")
    with pytest.raises(SettingsError, match="between 0 and 1"):
        PromotionThresholds.parse("min_format_compliance=98")
    with pytest.raises(SettingsError, match="not a int"):
        PromotionThresholds.parse("min_shadow_calls=lots")


def test_estimators():
    assert quantile([3, 1, 2], 0.5) == 2
    assert math.isnan(quantile([], 0.5))
    board = ShadowScoreboard(window=3)
    for i in range(5):
        board.learn_one(shadow_result(i, fmt=i >= 2))
    assert board.calls == 3 and board.evidence().format_compliance == 1.0
    mon = ServedFormatMonitor(window=10)
    mon.learn_one(False)
    assert mon.error_rate == pytest.approx(0.1)
