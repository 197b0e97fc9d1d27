"""Retrain policy: thresholds, one command per period, deterministic ids, drift, snapshots,
and the candidate registry's validator (pure logic + a temp artifact directory)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fastavro
import pytest

from streams.policy import (CandidateError, ClusterStats, ClusterStatsTracker, DriftSignal, KnownCommand,
                            PolicyThresholds, RetrainPolicy, SnapshotError, build_command, command_id,
                            load_candidates, select_base_model, snapshot_bytes, split_of, validate_candidates,
                            write_snapshot)
from trainers.dataset import load_snapshot

REPO = Path(__file__).resolve().parents[2]
RETRAIN = fastavro.parse_schema(json.loads((REPO / "schemas" / "retrain_command.v1.avsc").read_text()))
DAY = 86_400_000
NOW = 20_000 * DAY + 3_600_000
T = PolicyThresholds(min_examples=200, min_calls_per_day=100, min_regret_pct=20.0, period_seconds=86_400)


def candidates():
    return load_candidates(REPO / "distillery" / "defaults" / "model_candidates.json")


def hot(cluster=1, **kw):
    """A cluster that meets every threshold: 500 examples, 1000 calls/day, $10/day on 1M tokens."""
    base = dict(cluster_id=cluster, curated_examples=500, calls_per_day=1000, spend_per_day_usd=10.0,
                tokens_per_day=1_000_000, regret_cost_per_day_usd=0.0, success_rate=0.95)
    base.update(kw)
    return ClusterStats(**base)


# -- thresholds ------------------------------------------------------------------------------
def test_cluster_meeting_all_thresholds_gets_a_decision():
    [d] = RetrainPolicy(T, candidates()).decide([hot()], NOW)
    assert d.trigger == "thresholds" and d.cluster_id == 1
    assert d.base_model == "distillery-tiny-base"          # the only base available without a download
    assert d.evidence["regret_pct"] == pytest.approx(100 * (10 - 1_000_000 * 0.0002 / 1000) / 10)
    assert d.evidence["curated_examples"] == 500 and d.evidence["min_examples"] == 200


@pytest.mark.parametrize("change,why", [
    (dict(curated_examples=199), "curated examples"),
    (dict(calls_per_day=99.0), "calls/day"),
    # spend equals what the specialist would cost on the same tokens: nothing to save
    (dict(spend_per_day_usd=0.2), "regret"),
])
def test_each_threshold_blocks(change, why):
    [v] = RetrainPolicy(T, candidates()).evaluate([hot(**change)], NOW)
    assert v.decision is None and why in v.reason


def test_thresholds_are_inclusive_and_configurable():
    edge = hot(curated_examples=200, calls_per_day=100)
    assert RetrainPolicy(T, candidates()).decide([edge], NOW)
    strict = PolicyThresholds(min_examples=201, min_calls_per_day=100, min_regret_pct=20, period_seconds=86_400)
    assert not RetrainPolicy(strict, candidates()).decide([edge], NOW)


def test_thresholds_from_settings_names():
    class S:
        policy_min_examples, policy_min_calls_per_day, policy_min_regret_pct, policy_period_seconds = 5, 6, 7.5, 60
    t = PolicyThresholds.from_settings(S())
    assert (t.min_examples, t.min_calls_per_day, t.min_regret_pct, t.period_seconds) == (5, 6, 7.5, 60)


def test_ledger_regret_counts_without_a_cheaper_specialist():
    # a cluster already on a cheap model: the ledger's regret alone decides
    s = hot(spend_per_day_usd=1.0, tokens_per_day=10_000_000, regret_cost_per_day_usd=0.3)
    assert s.regret_pct(0.0002) == pytest.approx(30.0)
    assert s.regret_pct(None) == pytest.approx(30.0)
    assert ClusterStats(cluster_id=1).regret_pct(0.0002) == 0.0


def test_no_available_base_no_decision():
    unavailable = [c for c in candidates() if c.requires_local_dir]
    [v] = RetrainPolicy(T, unavailable).evaluate([hot()], NOW)
    assert v.decision is None and "no available base" in v.reason


def test_active_or_shadow_specialist_suppresses_the_threshold_trigger():
    p = RetrainPolicy(T, candidates())
    assert not p.decide([hot(active_specialist="a1", active_since_ms=NOW - DAY)], NOW)
    [v] = p.evaluate([hot(shadow_specialists=("a2",))], NOW)
    assert v.decision is None and "shadow" in v.reason


# -- one command per period, deterministic ids -----------------------------------------------
def test_at_most_one_command_per_cluster_per_period():
    p = RetrainPolicy(T, candidates())
    [d] = p.decide([hot()], NOW)
    cmd = build_command(d, write_snapshot_stub(), NOW)
    # the same period: blocked, even once finished
    assert not p.decide([hot()], NOW + 60_000, [cmd])
    assert not p.decide([hot()], NOW + 60_000, [cmd], finished_ids=[cmd["command_id"]])
    # next period, previous one unfinished but younger than a period: still blocked
    next_period = (NOW // DAY + 1) * DAY
    assert not p.decide([hot()], next_period + 1_000, [cmd])
    # next period and finished: allowed again
    assert p.decide([hot()], next_period + 1_000, [cmd], finished_ids=[cmd["command_id"]])
    # unfinished but older than a period (trainer lost it): allowed again
    assert p.decide([hot()], NOW + DAY + 1, [KnownCommand(cmd["command_id"], 1, NOW)])
    # another cluster is not blocked
    assert [d.cluster_id for d in p.decide([hot(), hot(2)], NOW + 60_000, [cmd])] == [2]


def write_snapshot_stub():
    from streams.policy import SnapshotInfo
    return SnapshotInfo("file:///x/datasets/sha256-ab.jsonl", "ab" * 32, 90, 10)


def test_command_ids_are_deterministic_and_distinct():
    a = command_id(1, 5, "thresholds", "f" * 64)
    assert a == command_id(1, 5, "thresholds", "f" * 64)
    others = {command_id(2, 5, "thresholds", "f" * 64), command_id(1, 6, "thresholds", "f" * 64),
              command_id(1, 5, "drift", "f" * 64), command_id(1, 5, "thresholds", "e" * 64)}
    assert a not in others and len(others) == 4


def test_replayed_decision_builds_the_same_command(tmp_path):
    rows = curated(60)
    out = []
    for _ in range(2):   # a restart that reaches the same decision on the same data
        [d] = RetrainPolicy(T, candidates()).decide([hot()], NOW + 5)
        info = write_snapshot(rows, str(tmp_path))
        out.append(build_command(d, info, NOW + 5))
    assert out[0] == out[1]
    fastavro.validation.validate(out[0], RETRAIN, raise_errors=True)
    assert out[0]["dataset_uri"].endswith(f"sha256-{out[0]['dataset_sha256']}.jsonl")
    assert out[0]["train_examples"] + out[0]["eval_examples"] == 60
    with pytest.raises(ValueError, match="unknown training option"):
        build_command(d, info, NOW, lr=1.0)


# -- drift -----------------------------------------------------------------------------------
def test_drift_on_an_active_specialist_triggers_a_retrain():
    p = RetrainPolicy(T, candidates())
    drift = DriftSignal("d1", NOW - 1_000, "success_rate", "warning", 0.95, 0.70)
    s = hot(active_specialist="a1", active_since_ms=NOW - DAY, drift=(drift,), spend_per_day_usd=0.01)
    [d] = p.decide([s], NOW)
    assert d.trigger == "drift" and d.evidence["drift_after"] == 0.70 and "d1" in d.reason


def test_old_or_info_drift_does_not_trigger():
    p = RetrainPolicy(T, candidates())
    before_activation = DriftSignal("d0", NOW - 2 * DAY, "traffic_share", "fatal")
    info = DriftSignal("d2", NOW - 1_000, "vocabulary", "info")
    s = hot(active_specialist="a1", active_since_ms=NOW - DAY, drift=(before_activation, info))
    assert not p.decide([s], NOW)
    # a drift already answered by a command (in an earlier period) does not trigger again
    d3 = DriftSignal("d3", NOW - 3 * DAY, "success_rate", "warning")
    s = hot(active_specialist="a1", active_since_ms=NOW - 5 * DAY, drift=(d3,))
    old_cmd = KnownCommand("rt-old", 1, NOW - 2 * DAY, finished=True)
    assert not p.decide([s], NOW, [old_cmd])
    assert p.decide([s], NOW)


def test_drift_needs_examples():
    p = RetrainPolicy(PolicyThresholds(min_examples=200, drift_min_examples=1000), candidates())
    s = hot(active_specialist="a1", active_since_ms=NOW - DAY, drift=(DriftSignal("d", NOW - 5, "x", "fatal"),))
    [v] = p.evaluate([s], NOW)
    assert v.decision is None and "1000" in v.reason


# -- tracker ---------------------------------------------------------------------------------
def window(wid, cluster, start, calls=100, cost=1.0, regret=0.0, revision=1, tokens=1000):
    return {"window_id": wid, "revision": revision, "window_start": start, "window_seconds": 60, "tenant": "t",
            "cluster_id": cluster, "model": "gpt-4o", "calls": calls, "input_tokens": tokens, "output_tokens": 0,
            "cost_usd": cost, "successes": calls, "failures": 0, "escalations": 0, "format_errors": 0,
            "latency_sketch": {}, "latency_p50": 0.0, "latency_p95": 0.0, "latency_p99": 0.0,
            "regret_cost_usd": regret, "quality_gap": 0.0}


def test_tracker_rates_revisions_and_horizon():
    tr = ClusterStatsTracker(horizon_s=86_400, min_span_s=3_600)
    start = NOW - 2 * 3_600_000
    tr.learn_window(window("w1", 1, start))
    tr.learn_window(window("w1", 1, start, calls=150, cost=1.5, revision=2))   # replaces revision 1
    tr.learn_window(window("w1", 1, start, calls=999, revision=1))             # stale replay: ignored
    tr.learn_window(window("w2", 1, start + 3_600_000, calls=50, cost=0.5, regret=0.25))
    tr.learn_window(window("old", 1, NOW - 3 * DAY, calls=10_000))            # beyond the horizon
    tr.learn_window(window("u", -1, start))                                    # unclustered: ignored
    s = tr.stats(NOW)[1]
    assert s.calls_per_day == pytest.approx(200 * 12)                          # 200 calls over 2 h
    assert s.spend_per_day_usd == pytest.approx(2.0 * 12)
    assert s.regret_cost_per_day_usd == pytest.approx(0.25 * 12)
    assert -1 not in tr.stats(NOW)
    assert ClusterStatsTracker.from_bytes(tr.to_bytes()).stats(NOW) == tr.stats(NOW)
    # a minute of traffic is not extrapolated beyond the minimum span (1 h)
    tr2 = ClusterStatsTracker().learn_window(window("w", 2, NOW - 60_000, calls=10))
    assert tr2.stats(NOW)[2].calls_per_day == pytest.approx(240)


def test_tracker_curated_registry_and_drift():
    tr = ClusterStatsTracker()
    for row in curated(30) + curated(30):           # replayed: counted once
        tr.learn_curated(row | {"cluster_id": 4})
    tr.learn_curated(curated(1)[0] | {"cluster_id": 4, "event_id": "dup", "duplicate_of": "c0"})
    tr.learn_curated(curated(1)[0] | {"cluster_id": 4, "event_id": "bad", "outcome": "failure"})
    tr.learn_registry({"model_id": "a1", "kind": "adapter", "state": "shadow", "cluster_id": 4, "ts": NOW - 10})
    assert tr.stats(NOW)[4].shadow_specialists == ("a1",)
    tr.learn_registry({"model_id": "a1", "kind": "adapter", "state": "active", "cluster_id": 4, "ts": NOW - 5})
    tr.learn_drift({"drift_id": "d", "ts": NOW - 1, "cluster_id": 4, "metric": "success_rate", "before": 0.9,
                    "after": 0.6, "severity": "fatal"})
    s = tr.stats(NOW)[4]
    assert s.curated_examples == 30
    assert (s.active_specialist, s.active_since_ms, s.shadow_specialists) == ("a1", NOW - 5, ())
    assert [d.drift_id for d in s.drift] == ["d"]
    tr.learn_registry({"model_id": "a1", "kind": "adapter", "state": "deprecated", "cluster_id": 4, "ts": NOW})
    assert tr.stats(NOW)[4].active_specialist is None
    restored = ClusterStatsTracker.from_bytes(tr.to_bytes())
    assert restored.stats(NOW) == tr.stats(NOW)
    tr.set_curated_count(4, 12_345)
    assert tr.stats(NOW)[4].curated_examples == 12_345


# -- snapshots -------------------------------------------------------------------------------
def curated(n, prefix="c"):
    return [{"event_id": f"{prefix}{i}", "prompt": f"add record {i}", "response": f'{{"id": {i}}}',
             "tool_calls": None, "outcome": "success", "duplicate_of": None, "redaction_version": "r1"}
            for i in range(n)]


def test_snapshot_is_content_addressed_and_readable_by_the_trainer(tmp_path):
    rows = curated(200)
    info = write_snapshot(rows, str(tmp_path))
    data = Path(info.uri).read_bytes()
    assert hashlib.sha256(data).hexdigest() == info.sha256 and info.sha256 in info.uri
    assert info.n_train + info.n_eval == 200 and 5 <= info.n_eval <= 40
    # same examples in another order, with replays: same bytes, same uri
    again = write_snapshot(list(reversed(rows)) + rows[:10], str(tmp_path))
    assert again == info
    # one more example: a new address
    extra = curated(1, "z")[0] | {"prompt": "delete record 9"}
    assert write_snapshot(rows + [extra], str(tmp_path)).uri != info.uri
    snap = load_snapshot(info.uri, info.sha256)
    assert len(snap.train) == info.n_train and len(snap.eval) == info.n_eval
    lines = [json.loads(x) for x in data.decode().splitlines()]
    assert list(lines[0]) == ["event_id", "prompt", "response", "tool_calls", "split"]


def test_split_is_stable_as_the_cluster_grows():
    small, _, _ = snapshot_bytes(curated(100))
    large, _, _ = snapshot_bytes(curated(1000))
    split_small = {json.loads(x)["event_id"]: json.loads(x)["split"] for x in small.decode().splitlines()}
    split_large = {json.loads(x)["event_id"]: json.loads(x)["split"] for x in large.decode().splitlines()}
    assert all(split_large[k] == v for k, v in split_small.items())
    assert all(split_of(k) == v for k, v in split_large.items())
    assert 0.05 < sum(v == "eval" for v in split_large.values()) / 1000 < 0.15


def test_snapshot_filters_and_deduplicates():
    rows = curated(20)
    rows.append(rows[0] | {"event_id": "copy"})                               # exact duplicate content
    rows.append(curated(1, "n")[0] | {"duplicate_of": "c1"})                  # near-duplicate
    rows.append(curated(1, "f")[0] | {"outcome": "failure"})
    rows.append(curated(1, "x")[0] | {"response": '{"id": '})                  # format error
    rows.append(curated(1, "e")[0] | {"response": "  "})
    data, n_train, n_eval = snapshot_bytes(rows)
    ids = [json.loads(x)["event_id"] for x in data.decode().splitlines()]
    assert n_train + n_eval == 20 and "copy" not in ids and ids == sorted(ids)


def test_snapshot_refuses_unredacted_rows_and_tiny_sets():
    with pytest.raises(SnapshotError, match="redaction"):
        snapshot_bytes(curated(5) + [curated(1, "u")[0] | {"redaction_version": ""}])
    with pytest.raises(SnapshotError, match="at least 2"):
        snapshot_bytes(curated(1))
    _, n_train, n_eval = snapshot_bytes(curated(2))                           # both splits, always
    assert (n_train, n_eval) == (1, 1)


# -- candidates ------------------------------------------------------------------------------
def test_shipped_candidates_are_valid():
    cands = candidates()
    names = {c.model_name for c in cands}
    assert {"distillery-tiny-base", "SmolLM2-360M-Instruct", "Qwen2.5-0.5B-Instruct", "Llama-3.2-1B-Instruct"} <= names
    tiny = next(c for c in cands if c.model_name == "distillery-tiny-base")
    assert tiny.path == "trainers/fixture/tiny-base" and tiny.available
    assert all(c.requires_local_dir and not c.available for c in cands if c.model_name != "distillery-tiny-base")


def test_validator_names_file_entry_field_and_expectation():
    data = {"candidates": [
        {"model_name": "ok", "path": "x", "params": 1, "context_len": 8, "license": "MIT", "tokens_per_s": 1,
         "cost_per_1k": 0, "supported_clusters": ["*"], "safety_grade": "A", "eval_scores": {}},
        {"model_name": "bad", "params": -3, "context_len": 8, "license": "MIT", "tokens_per_sec": 5,
         "cost_per_1k": 0, "supported_clusters": ["all"], "safety_grade": "Z", "eval_scores": {"x": 2}},
        {"model_name": "ok", "path": "y", "params": 1, "context_len": 8, "license": "MIT", "tokens_per_s": 1,
         "cost_per_1k": 0, "supported_clusters": [3], "safety_grade": "B", "eval_scores": {}},
    ]}
    with pytest.raises(CandidateError) as exc:
        validate_candidates(data, "cands.json")
    text = "\n".join(exc.value.errors)
    assert "cands.json: candidates[1] (bad): field 'params': expected a whole number > 0, got -3" in text
    assert "unknown field 'tokens_per_sec' (did you mean 'tokens_per_s'?)" in text
    assert "field 'tokens_per_s': expected a number > 0" in text and "missing" in text
    assert "field 'supported_clusters'" in text and "field 'safety_grade'" in text
    assert "field 'eval_scores.x': expected a number between 0 and 1, got 2" in text
    assert "candidates[2] (ok): field 'model_name': expected a unique name, already used by candidates[0]" in text


def test_load_candidates_reports_bad_json(tmp_path):
    p = tmp_path / "c.json"
    p.write_text("{nope")
    with pytest.raises(CandidateError, match="not valid JSON"):
        load_candidates(p)


def test_base_selection_prefers_scored_then_cheap_and_respects_safety():
    data = {"candidates": [
        {"model_name": n, "path": "p", "params": 1, "context_len": 8, "license": "MIT", "tokens_per_s": 1,
         "cost_per_1k": cost, "supported_clusters": sc, "safety_grade": g, "eval_scores": sc_scores}
        for n, cost, sc, g, sc_scores in [
            ("cheap", 0.1, ["*"], "C", {}),
            ("pricey", 0.5, ["*"], "A", {}),
            ("trained", 0.9, [3], "B", {"cluster:3": 0.9}),
        ]]}
    cands = validate_candidates(data)
    assert select_base_model(cands, 1).model_name == "cheap"
    assert select_base_model(cands, 3).model_name == "trained"
    assert select_base_model(cands, 1, min_safety_grade="B").model_name == "pricey"
    assert select_base_model(cands, 1, min_safety_grade="A", max_params=0) is None
