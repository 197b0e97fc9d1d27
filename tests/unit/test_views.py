"""clickhouse/001 + 002 applied on a temporary chDB store, every analyst view run on generated
data, and the numbers checked against the Python ledger logic that produced the data.

chDB allows one data path per process, and other tests may open their own store, so the
ClickHouse work runs in a child process (this file with --worker) that prints JSON.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
N = 20_000


def _worker(path: str, n: int) -> dict:
    import clickhouse_connect

    from bench.ledger_data import DAY_MS, POLICY_PARAMS, SPECIALIST_CLUSTERS, VIEW_QUERIES, run_views, small_ledger
    from streams.metrics import LatencySketch
    from streams.policy import ClusterStatsTracker, PolicyThresholds

    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    facts = small_ledger(client, n)
    obs, windows = facts["observations"], facts["window_rows"]
    q = lambda sql: client.query(sql).result_rows  # noqa: E731
    out: dict = {"views": run_views(client), "n": n, "replayed": facts["replayed"], "windows": facts["windows"]}
    out["views_defined"] = sorted(r[0] for r in q("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'View'"))
    out["expected_views"] = [k for k in VIEW_QUERIES] + ["metrics_windows", "cluster_labels"]
    out["raw_rows"] = q("SELECT count() FROM slm_observation_raw")[0][0]
    out["obs_rows"] = q("SELECT count() FROM observations")[0][0]
    out["window_rows"], out["window_calls"] = q("SELECT count(), sum(calls) FROM metrics_windows")[0]
    out["python_spend"] = sum(o["cost_usd"] for o in obs)
    out["sql_spend"] = q("SELECT sum(spend_usd) FROM spend_per_cluster_day")[0][0]
    out["sql_daily_spend"] = q("SELECT sum(spend_usd) FROM cluster_model_daily")[0][0]

    # latency quantiles of summed sketches: SQL (views) vs Python (LatencySketch.merge)
    merged: dict[tuple, LatencySketch] = {}
    for w in windows:
        key = (w["window_start"] // DAY_MS, w["tenant"], w["cluster_id"], w["model"])
        merged.setdefault(key, LatencySketch()).merge(LatencySketch.from_map(w["latency_sketch"]))
    worst = 0.0
    rows = q("SELECT toUnixTimestamp(day) * 1000, tenant, cluster_id, model, latency_p50, latency_p95, latency_p99 FROM cluster_model_daily")
    for day_ms, tenant, cluster, model, p50, p95, p99 in rows:
        sk = merged[(day_ms // DAY_MS, tenant, cluster, model)]
        for qq, v in ((0.5, p50), (0.95, p95), (0.99, p99)):
            worst = max(worst, abs(v - sk.quantile(qq)) / sk.quantile(qq))
    out["quantile_groups"], out["quantile_max_rel_diff"] = len(rows), worst

    # the view's eligibility vs the Python policy's statistics on the same data
    now = max(o["ts"] for o in obs)
    tracker = ClusterStatsTracker(horizon_s=30 * 86_400)
    for w in windows:
        tracker.learn_window(w)
    for o in obs:
        tracker.learn_curated(o)
    t = PolicyThresholds()
    py = {}
    for c, s in tracker.stats(now).items():
        eligible = (s.curated_examples >= t.min_examples and s.calls_per_day >= t.min_calls_per_day
                    and s.regret_pct(0.0002) >= t.min_regret_pct)
        py[c] = {"calls_per_day": s.calls_per_day, "regret_pct": s.regret_pct(0.0002), "curated": s.curated_examples,
                 "status": "active" if c in SPECIALIST_CLUSTERS else ("eligible" if eligible else "not_yet")}
    sql = {r[0]: {"calls_per_day": r[1], "regret_pct": r[2], "curated": r[3], "status": r[4]} for r in
           q(f"SELECT cluster_id, calls_per_day, regret_pct, curated_examples, status FROM replaceable_clusters({POLICY_PARAMS})")}
    out["unclustered"] = sql.pop(-1)["status"]
    out["policy_python"], out["policy_sql"] = py, sql
    out["fraction_check"] = q(f"""
        SELECT (SELECT replaceable_call_share FROM replaceable_fraction({POLICY_PARAMS})),
               (SELECT sumIf(calls, status IN ('active', 'eligible')) FROM replaceable_clusters({POLICY_PARAMS})) / (SELECT count() FROM observations)""")[0]
    # every Grafana panel and variable query of ops/grafana, macros expanded as the plugin does
    from ops.grafana.build_dashboards import expand_macros, panel_queries
    values = {"tenant": "acme,globex,initech", "cluster": "0", "min_examples": "200", "min_calls_per_day": "100",
              "min_regret_pct": "20", "specialist_cost_per_1k": "0.0002"}
    out["panels"] = [[f, title, len(q(expand_macros(sql, "2026-01-01 00:00:00", "2026-01-08 00:00:00", values)))]
                     for f, title, sql in panel_queries()]
    out["savings_by_day"] = q("SELECT toString(day), sum(savings_usd), sum(frontier_spend_usd) FROM savings_vs_frontier GROUP BY day ORDER BY day")
    return out


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    path = tmp_path_factory.mktemp("chdb") / "store"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, __file__, "--worker", str(path), str(N)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_view_exists_and_answers(result):
    assert set(result["expected_views"]) <= set(result["views_defined"])
    for name, view in result["views"].items():
        assert view["rows"], f"view {name} returned no rows"


def test_observations_are_deduplicated(result):
    assert result["raw_rows"] == result["n"] + result["replayed"]
    assert result["obs_rows"] == result["n"]
    assert result["views"]["observations"]["rows"] == [[result["n"], result["n"]]]


def test_metric_windows_keep_the_newest_revision(result):
    assert result["window_rows"] == result["windows"]
    assert result["window_calls"] == result["n"]      # stale revision-0 copies (10**6 calls) are hidden


def test_spend_adds_up(result):
    assert result["sql_spend"] == pytest.approx(result["python_spend"], rel=1e-9)
    assert result["sql_daily_spend"] == pytest.approx(result["python_spend"], rel=1e-9)


def test_sql_quantiles_of_summed_sketches_match_python(result):
    assert result["quantile_groups"] > 100
    assert result["quantile_max_rel_diff"] < 1e-9


def test_replaceable_clusters_agree_with_the_python_policy(result):
    py, sql = result["policy_python"], {int(k): v for k, v in result["policy_sql"].items()}
    py = {int(k): v for k, v in py.items()}
    assert set(py) == set(sql)
    for c in py:
        assert sql[c]["status"] == py[c]["status"], c
        assert sql[c]["curated"] == py[c]["curated"], c
        assert sql[c]["regret_pct"] == pytest.approx(py[c]["regret_pct"], rel=1e-6, abs=1e-9), c
        # the view spans observations, the tracker spans minute windows: < 1 minute apart in a week
        assert sql[c]["calls_per_day"] == pytest.approx(py[c]["calls_per_day"], rel=1e-3), c
    statuses = {v["status"] for v in sql.values()}
    assert statuses == {"active", "eligible", "not_yet"} and result["unclustered"] == "unclustered"
    share, recomputed = result["fraction_check"]
    assert 0 < share < 1 and share == pytest.approx(recomputed)


def test_savings_appear_once_specialists_serve(result):
    by_day = result["savings_by_day"]
    assert len(by_day) == 7
    before, after = by_day[:3], by_day[3:]
    assert all(abs(s) / f < 0.05 for _, s, f in before)     # no specialist yet: only noise
    assert all(s / f > 0.1 for _, s, f in after)


def test_top_lists_are_ordered(result):
    spend = [r[3] for r in result["views"]["top_clusters_by_spend"]["rows"]]
    regret = [r[3] for r in result["views"]["top_clusters_by_regret"]["rows"]]
    assert spend == sorted(spend, reverse=True) and regret == sorted(regret, reverse=True)
    dead = {r[0]: r[1] for r in result["views"]["dead_letters_by_reason"]["rows"]}
    assert dead == {"not_avro_or_json": 120, "missing_field": 60, "prompt_too_large": 20}


def test_every_grafana_panel_runs(result):
    assert len(result["panels"]) >= 15
    empty = [(f, title) for f, title, n in result["panels"] if n == 0]
    assert not empty, empty


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--worker":
    print(json.dumps(_worker(sys.argv[2], int(sys.argv[3])), default=str))
