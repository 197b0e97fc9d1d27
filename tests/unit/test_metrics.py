"""Metric windows, the latency sketch, format errors and regret (pure logic)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import fastavro
import numpy as np
import pytest

from streams.metrics import (RELATIVE_ACCURACY, ClusterBaseline, LatencySketch, WindowAggregator, bucket_index,
                             bucket_value, is_format_error, window_id)

SCHEMA = fastavro.parse_schema(json.loads((Path(__file__).resolve().parents[2] / "schemas" / "metrics_window.v1.avsc").read_text()))
T0 = 1_700_000_040_000  # a minute boundary
MIN = 60_000


def obs(i, ts, *, model="gpt-4o", cluster=7, tenant="acme", cost=0.01, latency=100.0, outcome="success",
        response="ok", tool_calls=None, metadata=None, event_id=None):
    return {"event_id": event_id or f"e{i}", "ts": ts, "tenant": tenant, "model": model, "cluster_id": cluster,
            "input_tokens": 10, "output_tokens": 5, "cost_usd": cost, "latency_ms": latency, "outcome": outcome,
            "response": response, "tool_calls": tool_calls, "metadata": metadata or {}}


def by_key(rows):
    return {(r["tenant"], r["cluster_id"], r["model"], r["window_start"]): r for r in rows}


# -- windows ---------------------------------------------------------------------------------
def test_window_totals_and_schema():
    agg = WindowAggregator(60, 120)
    agg.add(obs(1, T0 + 1_000, outcome="success", latency=100))
    agg.add(obs(2, T0 + 2_000, outcome="failure", latency=200, response='{"a": 1'))
    agg.add(obs(3, T0 + 3_000, outcome="escalated", latency=300, tool_calls='[{"name": "f"}]', response=""))
    agg.add(obs(4, T0 + 4_000, outcome="unknown", latency=400))
    agg.add(obs(5, T0 + MIN + 1, latency=50))                           # next window
    assert agg.flush(T0 + MIN - 1) == []                                # window not ended yet
    rows = agg.flush(T0 + MIN)
    assert len(rows) == 1
    r = rows[0]
    assert (r["calls"], r["successes"], r["failures"], r["escalations"], r["format_errors"]) == (4, 1, 1, 1, 1)
    assert (r["input_tokens"], r["output_tokens"]) == (40, 20)
    assert r["cost_usd"] == pytest.approx(0.04)
    assert r["window_start"] == T0 and r["window_seconds"] == 60 and r["revision"] == 1
    assert r["window_id"] == window_id("acme", 7, "gpt-4o", T0, 60)
    assert sum(r["latency_sketch"].values()) == 4
    assert abs(r["latency_p50"] - 200) <= 200 * RELATIVE_ACCURACY
    fastavro.validation.validate(r, SCHEMA, raise_errors=True)
    assert agg.flush(T0 + MIN) == []                                    # nothing changed: no re-emission


def test_windows_are_split_by_tenant_cluster_model_and_unclustered():
    agg = WindowAggregator(60, 0)
    agg.add(obs(1, T0, tenant="a"))
    agg.add(obs(2, T0, tenant="b"))
    agg.add(obs(3, T0, model="gpt-4o-mini"))
    agg.add(obs(4, T0, cluster=None))
    keys = set(by_key(agg.flush(T0 + MIN)))
    assert keys == {("a", 7, "gpt-4o", T0), ("b", 7, "gpt-4o", T0), ("acme", 7, "gpt-4o-mini", T0), ("acme", -1, "gpt-4o", T0)}


def test_late_event_within_grace_reemits_with_higher_revision():
    agg = WindowAggregator(60, 120)
    agg.add(obs(1, T0 + 10))
    first = agg.flush(T0 + MIN)
    assert [r["revision"] for r in first] == [1]
    assert agg.add(obs(2, T0 + 20, cost=0.5))                           # late, but within grace
    second = agg.flush(T0 + 2 * MIN)
    assert len(second) == 1
    assert second[0]["revision"] == 2 and second[0]["calls"] == 2
    assert second[0]["cost_usd"] == pytest.approx(0.51)
    assert second[0]["window_id"] == first[0]["window_id"]
    assert agg.stats["late_updates"] == 1


def test_event_beyond_grace_is_counted_and_dropped():
    agg = WindowAggregator(60, 120)
    agg.add(obs(1, T0 + 10))
    agg.flush(T0 + MIN + 120_000)                                       # end + grace reached: evicted
    assert agg.open_windows == 0
    assert agg.add(obs(2, T0 + 20)) is False
    assert agg.stats["late_dropped"] == 1
    assert agg.flush(T0 + 10 * MIN) == []
    # an event exactly inside the grace boundary of a later window still counts
    assert agg.add(obs(3, T0 + 8 * MIN + 5)) is True


def test_replays_never_double_count():
    events = [obs(i, T0 + i * 1_000, cost=0.001 * i) for i in range(50)]
    once = WindowAggregator(60, 120)
    once.add_many(events)
    twice = WindowAggregator(60, 120)
    twice.add_many(events)
    twice.add_many(events)
    assert twice.stats["duplicates"] == 50
    a, b = once.flush(T0 + MIN), twice.flush(T0 + MIN)
    assert a == b
    # replay after emission (within grace): no new revision
    assert twice.add_many(events) == 0
    assert twice.flush(T0 + 2 * MIN) == []
    # replay after eviction: dropped as late, not counted
    twice.flush(T0 + 10 * MIN)
    assert twice.add_many(events) == 0


def test_replay_with_a_different_cluster_is_still_a_duplicate():
    agg = WindowAggregator(60, 0)
    agg.add(obs(1, T0, cluster=3))
    assert agg.add(obs(1, T0, cluster=4)) is False
    assert [r["cluster_id"] for r in agg.flush(T0 + MIN)] == [3]


def test_checkpoint_restore_gives_the_same_output_as_an_uninterrupted_run():
    rng = random.Random(1)
    events = [obs(i, T0 + rng.randrange(0, 6 * MIN), model=rng.choice(["gpt-4o", "gpt-4o-mini"]),
                  cost=rng.random() / 100, latency=rng.lognormvariate(5, 1),
                  outcome=rng.choice(["success", "success", "failure"])) for i in range(600)]
    marks = [T0 + k * MIN for k in range(1, 10)]

    def run(restart_at: int | None):
        agg = WindowAggregator(60, 90)
        out = []
        for k, mark in enumerate(marks):
            agg.add_many(events[k * 60:(k + 1) * 60])
            out += agg.flush(mark)
            if k == restart_at:
                blob = agg.to_bytes()
                agg = WindowAggregator.from_bytes(blob, window_s=60)
                agg.add_many(events[k * 60:(k + 1) * 60])   # the uncommitted batch is replayed
        return out, agg.stats

    plain, plain_stats = run(None)
    restored, stats = run(3)
    assert plain == restored
    assert stats["accepted"] == plain_stats["accepted"]
    # every replayed event was recognised: as a duplicate, or (its window gone) as late
    assert stats["duplicates"] + stats["late_dropped"] - plain_stats["late_dropped"] == 60
    assert stats["duplicates"] > 0


def test_restore_refuses_a_changed_window_size():
    blob = WindowAggregator(60, 0).to_bytes()
    with pytest.raises(ValueError, match="DISTILLERY_METRICS_WINDOW_SECONDS"):
        WindowAggregator.from_bytes(blob, window_s=300)


def test_window_id_is_deterministic_and_distinct():
    a = window_id("t", 1, "m", T0, 60)
    assert a == window_id("t", 1, "m", T0, 60)
    assert len({a, window_id("t", 2, "m", T0, 60), window_id("t", 1, "m", T0 + MIN, 60), window_id("u", 1, "m", T0, 60)}) == 4


# -- sketch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_sketch_quantiles_within_relative_accuracy(q):
    rng = np.random.default_rng(0)
    values = rng.lognormal(mean=6.0, sigma=1.2, size=20_000)
    sk = LatencySketch().learn_many(values.tolist())
    exact = float(np.quantile(values, q, method="lower"))
    assert abs(sk.quantile(q) - exact) <= RELATIVE_ACCURACY * exact + 1e-9


def test_sketch_merge_is_exact_and_accurate():
    rng = np.random.default_rng(1)
    parts = [rng.gamma(2.0, 150.0, size=n) for n in (1_000, 5_000, 300)]
    merged = LatencySketch()
    for p in parts:
        merged.merge(LatencySketch().learn_many(p.tolist()))
    union = np.concatenate(parts)
    assert merged == LatencySketch().learn_many(union.tolist())       # identical buckets
    assert merged.count == len(union)
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(union, q, method="lower"))
        assert abs(merged.quantile(q) - exact) <= RELATIVE_ACCURACY * exact + 1e-9


def test_window_sketches_roll_up_to_the_hour_by_summing_buckets():
    agg = WindowAggregator(60, 0)
    rng = random.Random(2)
    lat = [rng.lognormvariate(6, 1) for _ in range(3_000)]
    for i, v in enumerate(lat):
        agg.add(obs(i, T0 + (i % 60) * MIN + 7, latency=v))
    rows = agg.flush(T0 + 61 * MIN)
    assert len(rows) == 60
    summed: dict[str, int] = {}
    for r in rows:
        for k, n in r["latency_sketch"].items():
            summed[k] = summed.get(k, 0) + n
    hour = LatencySketch.from_map(summed)
    assert hour == LatencySketch().learn_many(lat)
    exact = float(np.quantile(lat, 0.95, method="lower"))
    assert abs(hour.quantile(0.95) - exact) <= RELATIVE_ACCURACY * exact


def test_sketch_edges():
    assert LatencySketch().quantile(0.5) == 0.0
    sk = LatencySketch().learn_many([0.0, -5.0, 1e-9])                 # clamped, never a crash
    assert sk.count == 3 and len(sk.bins) == 1
    assert bucket_value(bucket_index(250.0)) == pytest.approx(250.0, rel=RELATIVE_ACCURACY)
    with pytest.raises(ValueError):
        sk.quantile(1.5)
    assert LatencySketch.from_map(sk.to_map()) == sk


# -- format errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("response,tool_calls,metadata,expected", [
    ("Sure, here you go.", None, {}, False),                            # prose: never a format error
    ('{"a": 1}', None, {}, False),
    ('{"a": 1', None, {}, True),                                        # looks like JSON, does not parse
    ('```json\n{"a": 1}\n```', None, {}, False),                        # one fence is tolerated
    ('```json\n{"a": 1,}\n```', None, {}, True),
    ("[1, 2", None, {}, True),
    ("", '[{"name": "lookup", "arguments": "{}"}]', {}, False),        # the answer is the tool call
    ("", '[{"name": "lookup", ', {}, True),                             # broken tool call
    ("here is JSON: {}", None, {"response_format": "json_object"}, True),
    ("", None, {"response_format": "json"}, True),                      # asked for JSON, got nothing
    ("", '{"name": "f"}', {"response_format": "json"}, False),
])
def test_format_error_rules(response, tool_calls, metadata, expected):
    assert is_format_error(response, tool_calls, metadata) is expected


# -- regret ----------------------------------------------------------------------------------
def _cluster_traffic(agg, start_i, ts, model, n, cost, success_every):
    for k in range(n):
        agg.add(obs(start_i + k, ts + k, model=model, cost=cost,
                    outcome="failure" if success_every and k % success_every == 0 else "success"))


def test_regret_against_the_cheapest_adequate_model():
    agg = WindowAggregator(60, 0, ClusterBaseline(min_calls=20, quality_tolerance=0.02))
    _cluster_traffic(agg, 0, T0, "gpt-4o", 100, 0.010, 0)               # 100 % success, $0.010
    _cluster_traffic(agg, 1000, T0, "gpt-4o-mini", 100, 0.001, 0)       # 100 % success, $0.001
    _cluster_traffic(agg, 2000, T0, "distillery/a1", 100, 0.0002, 5)    # 80 % success, cheapest
    rows = by_key(agg.flush(T0 + MIN))
    big, mini, spec = (rows[("acme", 7, m, T0)] for m in ("gpt-4o", "gpt-4o-mini", "distillery/a1"))
    assert big["regret_cost_usd"] == pytest.approx(100 * (0.010 - 0.001))
    assert big["quality_gap"] == 0.0
    assert mini["regret_cost_usd"] == pytest.approx(0.0)
    assert spec["regret_cost_usd"] == 0.0
    assert spec["quality_gap"] == pytest.approx(0.2)


def test_no_regret_without_enough_evidence():
    agg = WindowAggregator(60, 0, ClusterBaseline(min_calls=50))
    _cluster_traffic(agg, 0, T0, "gpt-4o", 10, 0.01, 0)
    _cluster_traffic(agg, 100, T0, "gpt-4o-mini", 10, 0.001, 0)
    assert all(r["regret_cost_usd"] == 0 and r["quality_gap"] == 0 for r in agg.flush(T0 + MIN))


def test_baseline_learns_only_the_delta_of_a_reemitted_window():
    base = ClusterBaseline(min_calls=1)
    agg = WindowAggregator(60, 120, base)
    _cluster_traffic(agg, 0, T0, "gpt-4o", 10, 0.01, 0)
    agg.flush(T0 + MIN)
    _cluster_traffic(agg, 100, T0 + 100, "gpt-4o", 5, 0.01, 0)
    agg.flush(T0 + 2 * MIN)
    calls, known, successes, cost, _ = base.clusters[7]["gpt-4o"]
    assert (calls, known, successes) == (15, 15, 15) and cost == pytest.approx(0.15)


def test_a_slightly_worse_cheap_model_needs_evidence_to_become_the_reference():
    def ref(n):
        b = ClusterBaseline(min_calls=20, quality_tolerance=0.02)
        b.learn_one(7, "gpt-4o", n, n, 0.960 * n, 0.010 * n, T0)
        b.learn_one(7, "gpt-4o-mini", n, n, 0.945 * n, 0.001 * n, T0)
        return b.reference(7)
    few, many = ref(1_000), ref(100_000)
    assert few.best_model == "gpt-4o" and few.reference_model == "gpt-4o"       # 94.5 % of 1000 could be noise
    assert many.reference_model == "gpt-4o-mini"                                 # 94.5 % of 100k is not
    assert many.reference_cost_per_call == pytest.approx(0.001)


def test_unclustered_calls_carry_no_regret():
    agg = WindowAggregator(60, 0, ClusterBaseline(min_calls=1))
    _cluster_traffic(agg, 0, T0, "gpt-4o", 30, 0.01, 0)
    for k in range(30):
        agg.add(obs(100 + k, T0 + k, model="gpt-4o-mini", cluster=None, cost=0.001))
        agg.add(obs(200 + k, T0 + k, model="gpt-4o", cluster=None, cost=0.01))
    rows = agg.flush(T0 + MIN)
    assert all(r["regret_cost_usd"] == 0 and r["quality_gap"] == 0 for r in rows)
    assert -1 not in agg.baseline.clusters
