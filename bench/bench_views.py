"""Query time of every analyst view (clickhouse/002_analyst_views.sql) over 10 million
observations in chDB (--quick: 1 million), beside a plain scan of the raw table measured in the
same run (the baseline: the cheapest query that reads the same rows, without deduplication).

Also measures the deduplication strategies for `observations` on the same data: FINAL,
FINAL with do_not_merge_across_partitions_select_final (what 002 uses), argMax per event_id,
and LIMIT 1 BY event_id.

Rows are generated inside ClickHouse (numbers() + deterministic hashes, bench/ledger_data.py),
1 % of them replayed, with minute metric windows aggregated in SQL. chDB allows one process
per data path (and one path per process), so the work runs in a child process with its own
temporary store. `python -m bench.bench_views [--quick] [--rows N]`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The baseline: the aggregation spend_per_cluster_day does, straight on the raw table (no
# deduplication, no view): what a query over these rows costs at the least.
BASELINE = ("SELECT count(), sum(s) FROM (SELECT toDate(ts) AS d, tenant, cluster_id, count() AS n, sum(cost_usd) AS s "
            "FROM slm_observation_raw GROUP BY d, tenant, cluster_id)")
SCAN = "SELECT count(), sum(cost_usd) FROM slm_observation_raw"
DEDUPE = {
    "no dedupe (plain scan)": SCAN,
    "FINAL": "SELECT count(), sum(cost_usd) FROM slm_observation_raw FINAL",
    "FINAL + do_not_merge_across_partitions": "SELECT count(), sum(cost_usd) FROM slm_observation_raw FINAL "
                                              "SETTINGS do_not_merge_across_partitions_select_final = 1",
    "argMax by event_id": "SELECT count(), sum(c) FROM (SELECT event_id, argMax(cost_usd, ingest_ts) AS c "
                          "FROM slm_observation_raw GROUP BY event_id)",
    "LIMIT 1 BY event_id": "SELECT count(), sum(cost_usd) FROM (SELECT event_id, cost_usd FROM slm_observation_raw "
                           "ORDER BY event_id, ingest_ts DESC LIMIT 1 BY event_id)",
}


def _views() -> dict[str, str]:
    """One query per view that reads all of it (aggregated to one row, so transfer is not timed)."""
    from bench.ledger_data import POLICY_PARAMS

    full = {
        "observations": "SELECT count(), sum(cost_usd) FROM observations",
        "spend_per_cluster_day": "SELECT count(), sum(spend_usd) FROM spend_per_cluster_day",
        "cluster_model_hourly": "SELECT count(), max(latency_p95) FROM cluster_model_hourly",
        "cluster_model_daily": "SELECT count(), max(latency_p99) FROM cluster_model_daily",
        "savings_vs_frontier": "SELECT count(), sum(savings_usd) FROM savings_vs_frontier",
        "replaceable_clusters": f"SELECT count(), countIf(status = 'eligible') FROM replaceable_clusters({POLICY_PARAMS})",
        "replaceable_fraction": f"SELECT replaceable_call_share FROM replaceable_fraction({POLICY_PARAMS})",
        "top_clusters_by_spend": "SELECT count(), max(spend_usd) FROM top_clusters_by_spend",
        "top_clusters_by_regret": "SELECT count(), max(regret_usd) FROM top_clusters_by_regret",
        "specialist_win_rate": "SELECT count(), avg(win_rate) FROM specialist_win_rate",
        "dead_letters_by_reason": "SELECT count(), sum(messages) FROM dead_letters_by_reason",
        "spend_per_cluster_day (one day, one tenant)": "SELECT * FROM spend_per_cluster_day WHERE day = '2026-01-15' AND tenant = 'acme'",
    }
    return full


def _time(client: Any, sql: str, repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = client.query(sql).result_rows
        best = min(best, time.perf_counter() - t0)
    return best, result


def worker(path: str, rows: int, repeats: int) -> dict[str, Any]:
    import clickhouse_connect

    from bench.ledger_data import bulk_ledger

    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    t0 = time.perf_counter()
    bulk_ledger(client, rows)
    gen_s = time.perf_counter() - t0
    counts = {t: client.query(f"SELECT count() FROM {t}").result_rows[0][0]
              for t in ("slm_observation_raw", "model_metrics_timeseries", "slm_observation_curated", "shadow_results", "dead_letters")}
    parts = client.query("SELECT count() FROM system.parts WHERE active AND table = 'slm_observation_raw'").result_rows[0][0]
    base_s, _ = _time(client, BASELINE, repeats)
    scan_s, _ = _time(client, SCAN, repeats)
    out: dict[str, Any] = {"rows": rows, "generate_s": round(gen_s, 1), "table_rows": counts, "raw_parts": parts,
                           "baseline_s": base_s, "scan_s": scan_s, "views": {}, "dedupe": {}}
    for name, sql in _views().items():
        s, res = _time(client, sql, repeats)
        out["views"][name] = {"seconds": s, "ratio_vs_raw_aggregate": s / base_s, "result": [list(map(str, r)) for r in res[:1]]}
    for name, sql in DEDUPE.items():
        s, res = _time(client, sql, repeats)
        out["dedupe"][name] = {"seconds": s, "ratio_vs_plain_scan": s / scan_s, "rows": res[0][0]}
    return out


def main(quick: bool = False, rows: int | None = None) -> dict[str, Any]:
    rows = rows or (1_000_000 if quick else 10_000_000)
    repeats = 2 if quick else 1     # the full run stays near 3 minutes on 2 cores
    tmp = tempfile.mkdtemp(prefix="distillery-bench-views-")
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.run([sys.executable, "-m", "bench.bench_views", "--worker", f"{tmp}/store",
                               "--rows", str(rows), "--repeats", str(repeats)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"bench_views worker failed:\n{proc.stderr[-4000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{rows:,} observations (+1 % replayed, {res['raw_parts']} active parts), "
          f"{res['table_rows']['model_metrics_timeseries']:,} metric windows; generated in {res['generate_s']} s")
    print(f"baseline: spend per (day, tenant, cluster) straight on the raw table, no dedupe: "
          f"{res['baseline_s'] * 1000:.0f} ms (best of {repeats})")
    print(f"{'view (full read, best of ' + str(repeats) + ')':48s} {'ms':>9s} {'x baseline':>10s}")
    for name, v in res["views"].items():
        print(f"{name:48s} {v['seconds'] * 1000:9.0f} {v['ratio_vs_raw_aggregate']:10.2f}")
    print(f"\ndeduplication of observations ({rows:,} events + replays), count() + sum(cost_usd):")
    print(f"{'strategy':48s} {'ms':>9s} {'x scan':>10s}")
    for name, v in res["dedupe"].items():
        print(f"{name:48s} {v['seconds'] * 1000:9.0f} {v['ratio_vs_plain_scan']:10.2f}   rows={v['rows']:,}")
    return res


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 million rows instead of 10 million")
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--worker", metavar="PATH", help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.rows or 1_000_000, a.repeats)))
    else:
        main(quick=a.quick, rows=a.rows)
