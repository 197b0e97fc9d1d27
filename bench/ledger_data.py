"""Synthetic ledger data for the analyst views: used by tests/unit/test_views.py, docs/analysts.md
(sample output) and bench/bench_views.py.

Two generators with the same shape of traffic (tenants, ~40 task clusters with a skewed
spread, API models priced per token, specialists priced per GPU-second from prices.json,
replayed copies that the views must deduplicate):
  - small_ledger(client, n): Python-made observations, aggregated by the real WindowAggregator
    into metric windows, inserted through clickhouse-connect; every table a view reads gets rows.
  - bulk_ledger(client, n): n rows generated inside ClickHouse with numbers() and
    deterministic hashes (fast: no Python per row), plus metric windows aggregated in SQL.

Run `python -m bench.ledger_data /abs/chdb/path [n]` to build a store and print every view.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import re
import sys
from pathlib import Path
from typing import Any, Callable

from streams.metrics import WindowAggregator
from streams.metrics.sketch import RELATIVE_ACCURACY

REPO = Path(__file__).resolve().parents[1]
START_MS = 1_767_225_600_000          # 2026-01-01 00:00 UTC: fixed, so output is reproducible
DAY_MS = 86_400_000
TENANTS = ("acme", "globex", "initech")
API_MODELS = {  # name -> (input_per_1k, output_per_1k, success rate, median latency ms)
    "gpt-4o": (0.0025, 0.010, 0.96, 1400.0),
    "gpt-4o-mini": (0.00015, 0.0006, 0.93, 700.0),
    "claude-3-5-sonnet": (0.003, 0.015, 0.95, 1600.0),
}
GPU_SECOND = 0.0004
SPECIALIST_SUCCESS = 0.94
N_CLUSTERS = 40
SPECIALIST_CLUSTERS = (0, 1, 2)          # an active specialist serves these from day 3 on
LABELS = ["dns record change", "user provisioning", "file share access", "ticket triage", "invoice lookup",
          "calendar booking", "password reset", "vpn troubleshooting"]

# The views a test and the docs exercise; parameterized ones with the policy defaults.
POLICY_PARAMS = "min_examples = 200, min_calls_per_day = 100, min_regret_pct = 20, specialist_cost_per_1k = 0.0002"
VIEW_QUERIES = {
    "observations": "SELECT count() AS rows, uniqExact(event_id) AS events FROM observations",
    "spend_per_cluster_day": "SELECT day, tenant, cluster_id, calls, round(spend_usd, 4) AS spend, round(api_spend_usd, 4) AS api, "
                             "round(self_hosted_spend_usd, 4) AS self_hosted, round(cost_per_call_usd, 5) AS per_call, "
                             "round(success_rate, 3) AS success FROM spend_per_cluster_day WHERE tenant = 'acme' AND cluster_id = 0 "
                             "ORDER BY day LIMIT 7",
    "cluster_model_daily": "SELECT day, model, calls, round(spend_usd, 4) AS spend, round(success_rate, 3) AS success, "
                           "round(regret_usd, 4) AS regret, round(quality_gap, 3) AS gap, round(latency_p50) AS p50, "
                           "round(latency_p95) AS p95, round(latency_p99) AS p99 FROM cluster_model_daily "
                           "WHERE tenant = 'acme' AND cluster_id = 0 AND day IN ('2026-01-01', '2026-01-07') ORDER BY day, model",
    "cluster_model_hourly": "SELECT hour, model, calls, round(spend_usd, 4) AS spend, round(latency_p50) AS p50, "
                            "round(latency_p95) AS p95 FROM cluster_model_hourly WHERE tenant = 'acme' AND cluster_id = 0 "
                            "ORDER BY hour, model LIMIT 6",
    "savings_vs_frontier": "SELECT day, sum(calls) AS n_calls, round(sum(actual_spend_usd), 2) AS actual, "
                           "round(sum(frontier_spend_usd), 2) AS all_frontier, round(sum(savings_usd), 2) AS saved, "
                           "round(sum(savings_usd) / sum(frontier_spend_usd), 3) AS saved_share "
                           "FROM savings_vs_frontier GROUP BY day ORDER BY day",
    "replaceable_clusters": f"SELECT cluster_id, calls, round(calls_per_day) AS calls_per_day, curated_examples, "
                            f"round(regret_pct, 1) AS regret_pct, active_specialist, status "
                            f"FROM replaceable_clusters({POLICY_PARAMS}) ORDER BY calls DESC LIMIT 8",
    "replaceable_fraction": f"SELECT total_calls, round(total_spend_usd, 2) AS total_spend_usd, active_clusters, eligible_clusters, "
                            f"round(active_call_share, 3) AS active_call_share, round(replaceable_call_share, 3) AS replaceable_call_share, "
                            f"round(replaceable_spend_share, 3) AS replaceable_spend_share FROM replaceable_fraction({POLICY_PARAMS})",
    "top_clusters_by_spend": "SELECT cluster_id, label, calls, round(spend_usd, 2) AS spend_usd, round(spend_share, 3) AS spend_share, "
                             "top_model FROM top_clusters_by_spend LIMIT 5",
    "top_clusters_by_regret": "SELECT cluster_id, label, calls, round(regret_usd, 2) AS regret_usd, round(regret_share, 3) AS regret_share, "
                              "round(quality_gap, 3) AS quality_gap, worst_model FROM top_clusters_by_regret LIMIT 5",
    "specialist_win_rate": "SELECT toDate(hour) AS day, adapter_id, sum(comparisons) AS n, "
                           "round(sum(win_rate * comparisons) / sum(comparisons), 3) AS daily_win_rate, "
                           "round(avg(cost_ratio), 3) AS mean_cost_ratio FROM specialist_win_rate GROUP BY day, adapter_id "
                           "ORDER BY day, adapter_id LIMIT 6",
    "dead_letters_by_reason": "SELECT reason, sum(messages) AS n_messages, sum(bytes) AS n_bytes, max(last_seen) AS latest "
                              "FROM dead_letters_by_reason GROUP BY reason ORDER BY n_messages DESC",
}


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def apply_views(client: Any) -> None:
    """001 + 002 through the project's migrator (the same path services take)."""
    from clickhouse.migrate import apply_migrations

    apply_migrations(client)


# ---------------------------------------------------------------------------------------
# Small, Python-made ledger
# ---------------------------------------------------------------------------------------
def _cluster(rng: random.Random) -> int | None:
    if rng.random() < 0.05:
        return None
    return int(rng.random() ** 2 * N_CLUSTERS)   # skewed: low ids are the busy clusters


def synthetic_observations(n: int, seed: int = 0, days: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = START_MS + int(i * days * DAY_MS / n) + rng.randrange(0, 1000)
        cluster = _cluster(rng)
        day = (ts - START_MS) // DAY_MS
        specialist = cluster in SPECIALIST_CLUSTERS and day >= 3 and rng.random() < 0.8
        in_tok, out_tok = rng.randint(200, 2000), rng.randint(20, 400)
        if specialist:
            model = f"distillery/spec-{cluster}"
            latency = 250.0 * (0.5 + rng.random()) * (1 + 3 * rng.random() ** 8)
            gpu = latency / 1000
            cost, source, ok = gpu * GPU_SECOND, "gpu_seconds", SPECIALIST_SUCCESS
        else:
            model = rng.choices(list(API_MODELS), weights=(0.45, 0.4, 0.15))[0]
            pin, pout, ok, med = API_MODELS[model]
            latency = med * (0.5 + rng.random()) * (1 + 3 * rng.random() ** 8)
            gpu, cost, source = None, (in_tok * pin + out_tok * pout) / 1000, "tokens"
        r = rng.random()
        outcome = "success" if r < ok else ("escalated" if r < ok + 0.02 else "failure")
        json_task = cluster is not None and cluster % 2 == 0
        response = json.dumps({"action": "ok", "id": i}) if json_task else f"Done: request {i}."
        if json_task and rng.random() < 0.01:
            response = response[:-3]                     # a truncated JSON answer: a format error
        out.append({
            "event_id": f"ev-{seed}-{i:08d}", "ts": ts, "ingest_ts": ts + 50, "tenant": rng.choice(TENANTS),
            "service": "agent", "model": model, "prompt": f"task {cluster} request {i}", "response": response,
            "latency_ms": latency, "input_tokens": in_tok, "output_tokens": out_tok, "cost_usd": cost,
            "cost_source": source, "gpu_seconds": gpu, "outcome": outcome, "tool_calls": None, "task_hint": None,
            "metadata": {}, "parent_event_id": None, "schema_id": 0, "pii_counts": {}, "redaction_version": "r1",
            "duplicate_of": None, "dedupe_similarity": None, "cluster_id": cluster, "cluster_model_version": 1,
        })
    return out


def _insert_dicts(client: Any, table: str, rows: list[dict[str, Any]], ts_cols: tuple[str, ...]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    data = [[_dt(r[c]) if c in ts_cols else r[c] for c in cols] for r in rows]
    client.insert(table, data, column_names=cols)


def small_ledger(client: Any, n: int = 20_000, seed: int = 0) -> dict[str, Any]:
    """Fill every table the views read; returns facts the caller can check views against."""
    apply_views(client)
    obs = synthetic_observations(n, seed)
    replayed = obs[: n // 50]                                   # 2 % replayed with a later ingest_ts
    _insert_dicts(client, "slm_observation_raw", obs, ("ts", "ingest_ts"))
    _insert_dicts(client, "slm_observation_raw", [r | {"ingest_ts": r["ingest_ts"] + 60_000} for r in replayed],
                  ("ts", "ingest_ts"))
    curated_cols = ("event_id", "ts", "ingest_ts", "tenant", "service", "model", "task_hint", "cluster_id",
                    "cluster_model_version", "prompt", "response", "tool_calls", "outcome", "cost_usd", "latency_ms",
                    "pii_counts", "redaction_version")
    _insert_dicts(client, "slm_observation_curated", [{c: r[c] for c in curated_cols} for r in obs], ("ts", "ingest_ts"))

    # as the metrics agent does: batches in, flush at the event-time watermark after each, so
    # regret is judged against what the ledger knew at the time
    agg = WindowAggregator(60, 120)
    windows = []
    for i in range(0, len(obs), 50):
        batch = obs[i:i + 50]
        agg.add_many(batch)
        windows += agg.flush(batch[-1]["ts"])
    windows += agg.flush(obs[-1]["ts"] + DAY_MS)
    newest = {w["window_id"]: w for w in windows}       # the sink keeps the highest revision
    windows = list(newest.values())
    now = obs[-1]["ts"]
    wrows = [w | {"ingest_ts": now} for w in windows]
    _insert_dicts(client, "model_metrics_timeseries", wrows, ("window_start", "ingest_ts"))
    # an older revision of a few windows arriving after the newer one: the view keeps the newer
    _insert_dicts(client, "model_metrics_timeseries",
                  [w | {"revision": 0, "calls": 10**6, "ingest_ts": now + 1} for w in wrows[:20]],
                  ("window_start", "ingest_ts"))

    spec_start = START_MS + 3 * DAY_MS
    _insert_dicts(client, "cluster_model_assignment", [
        {"cluster_id": c, "ts": spec_start, "ingest_ts": spec_start, "serving_model": f"distillery/spec-{c}",
         "adapter_id": f"spec-{c}", "state": "active", "command_id": f"pr-{c}", "reason": "shadow gate passed"}
        for c in SPECIALIST_CLUSTERS], ("ts", "ingest_ts"))
    _insert_dicts(client, "task_cluster_lineage", [
        {"lineage_id": f"l{c}", "ts": START_MS, "ingest_ts": START_MS, "cluster_id": c, "change": "birth",
         "related_cluster_ids": [], "label": LABELS[c % len(LABELS)] + (f" #{c}" if c >= len(LABELS) else ""),
         "top_terms": LABELS[c % len(LABELS)].split(), "example": "", "size": 0, "model_version": 1}
        for c in range(N_CLUSTERS)], ("ts", "ingest_ts"))

    rng = random.Random(seed + 1)
    shadows = []
    for k in range(3_000):
        ts = START_MS + DAY_MS + int(k * 2 * DAY_MS / 3_000)
        c = SPECIALIST_CLUSTERS[k % 3]
        good = rng.random() < (0.80 + 0.05 * ((ts - START_MS) // DAY_MS))   # improves over the days
        shadows.append({"result_id": f"sr{k}", "ts": ts, "ingest_ts": ts, "event_id": f"ev-x-{k}",
                        "adapter_id": f"spec-{c}", "cluster_id": c, "primary_model": "gpt-4o",
                        "exact_match": good, "field_f1": 1.0 if good else rng.random() * 0.8,
                        "format_valid": good or rng.random() < 0.5, "tool_calls_valid": True, "escalated": not good,
                        "safety_incident": False, "primary_latency_ms": 1400.0, "shadow_latency_ms": 260.0,
                        "primary_cost_usd": 0.006, "shadow_cost_usd": 0.0001})
    _insert_dicts(client, "shadow_results", shadows, ("ts", "ingest_ts"))
    reasons = ["not_avro_or_json"] * 6 + ["missing_field"] * 3 + ["prompt_too_large"]
    _insert_dicts(client, "dead_letters", [
        {"dlq_id": f"ask/0/{k}", "ts": START_MS + k * 600_000, "ingest_ts": START_MS + k * 600_000,
         "source_topic": "ask", "source_partition": 0, "source_offset": k, "reason": reasons[k % len(reasons)],
         "detail": "example", "payload_size": 100 + k, "payload_sha256": "0" * 64, "payload_preview": ""}
        for k in range(200)], ("ts", "ingest_ts"))
    return {"events": n, "replayed": len(replayed), "windows": len(windows), "aggregator": agg,
            "observations": obs, "window_rows": windows}


# ---------------------------------------------------------------------------------------
# Bulk ledger generated inside ClickHouse
# ---------------------------------------------------------------------------------------
def bulk_ledger(client: Any, n_rows: int, days: int = 7, batch: int = 2_000_000) -> None:
    """n_rows observations over `days` (+1 % replayed copies) and their minute windows, all
    made in SQL. Windows are aggregated from the raw rows before the replays are added."""
    apply_views(client)
    span_ms = days * DAY_MS
    for lo in range(0, n_rows, batch):
        hi = min(n_rows, lo + batch)
        client.command(f"""
        INSERT INTO slm_observation_raw
        SELECT
            concat('ev-', toString(k))                                          AS event_id,
            fromUnixTimestamp64Milli(toInt64({START_MS} + intDiv(k * {span_ms}, {n_rows})), 'UTC') AS ts,
            ts + toIntervalMillisecond(50)                                      AS ingest_ts,
            ['acme', 'globex', 'initech'][1 + cityHash64(k, 1) % 3]             AS tenant,
            'agent'                                                             AS service,
            if(spec, concat('distillery/spec-', toString(cl)),
               ['gpt-4o', 'gpt-4o-mini', 'claude-3-5-sonnet'][1 + (cityHash64(k, 3) % 100 >= 45) + (cityHash64(k, 3) % 100 >= 85)]) AS model,
            concat('task ', toString(cl), ' request ', toString(k))             AS prompt,
            if(cl % 2 = 0, concat('{{"action":"ok","id":', toString(k), '}}'), concat('Done: request ', toString(k))) AS response,
            (if(spec, 250., multiIf(model = 'gpt-4o', 1400., model = 'gpt-4o-mini', 700., 1600.))
                * (0.5 + u1) * (1 + 3 * pow(u2, 8)))                            AS latency_ms,
            200 + cityHash64(k, 4) % 1800                                       AS input_tokens,
            20 + cityHash64(k, 5) % 380                                         AS output_tokens,
            if(spec, latency_ms / 1000 * {GPU_SECOND},
               multiIf(model = 'gpt-4o', input_tokens * 0.0025 + output_tokens * 0.010,
                       model = 'gpt-4o-mini', input_tokens * 0.00015 + output_tokens * 0.0006,
                       input_tokens * 0.003 + output_tokens * 0.015) / 1000)     AS cost_usd,
            if(spec, 'gpu_seconds', 'tokens')                                   AS cost_source,
            if(spec, latency_ms / 1000, NULL)                                   AS gpu_seconds,
            multiIf(u3 < if(spec, {SPECIALIST_SUCCESS}, multiIf(model = 'gpt-4o', 0.96, model = 'gpt-4o-mini', 0.93, 0.95)), 'success',
                    u3 < 0.97, 'escalated', 'failure')                           AS outcome,
            NULL AS tool_calls, NULL AS task_hint, map() AS metadata, NULL AS parent_event_id, 0 AS schema_id,
            map() AS pii_counts, 'r1' AS redaction_version, NULL AS duplicate_of, NULL AS dedupe_similarity,
            if(cl < 0, NULL, cl)                                                AS cluster_id,
            1 AS cluster_model_version
        FROM
        (
            SELECT number AS k,
                   cityHash64(k, 8) % 10000 / 10000. AS u1, cityHash64(k, 9) % 10000 / 10000. AS u2,
                   cityHash64(k, 10) % 10000 / 10000. AS u3,
                   if(cityHash64(k, 6) % 100 < 5, -1, toInt32(floor(pow(cityHash64(k, 7) % 10000 / 10000., 2) * {N_CLUSTERS}))) AS cl,
                   cl IN {tuple(SPECIALIST_CLUSTERS)} AND k * {days} >= 3 * {n_rows} AND cityHash64(k, 11) % 10 < 8 AS spec
            FROM numbers({lo}, {hi - lo})
        )
        SETTINGS max_block_size = 65536
        """)
    client.command(f"""
        INSERT INTO model_metrics_timeseries
        SELECT
            hex(sipHash128(tenant, cluster_id, model, toUnixTimestamp64Milli(window_start), 60)) AS window_id,
            1 AS revision, window_start, 60 AS window_seconds, now64(3) AS ingest_ts,
            tenant, cluster_id, model, calls, input_tokens, output_tokens, cost_usd, successes, failures,
            escalations, 0 AS format_errors, latency_sketch, 0 AS latency_p50, 0 AS latency_p95, 0 AS latency_p99,
            greatest(0, cost_usd - calls * ifNull(ref, cost_usd / calls)) AS regret_cost_usd, 0 AS quality_gap
        FROM
        (
            SELECT toStartOfMinute(ts) AS ws, toDateTime64(ws, 3, 'UTC') AS window_start, tenant,
                   coalesce(cluster_id, -1) AS cluster_id, model,
                   count() AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                   sum(cost_usd) AS cost_usd, countIf(outcome = 'success') AS successes,
                   countIf(outcome = 'failure') AS failures, countIf(outcome = 'escalated') AS escalations,
                   mapFromArrays((sumMap([toString(toInt32(ceil(log(greatest(latency_ms, 0.01))
                       / log((1 + {RELATIVE_ACCURACY}) / (1 - {RELATIVE_ACCURACY})))))], [toInt64(1)]) AS t).1, t.2) AS latency_sketch
            FROM slm_observation_raw
            GROUP BY ws, tenant, cluster_id, model
        ) AS w
        LEFT JOIN
        (
            SELECT coalesce(cluster_id, -1) AS cluster_id, avg(cost_usd) AS ref FROM slm_observation_raw
            WHERE model = 'gpt-4o-mini' GROUP BY cluster_id
        ) AS r USING (cluster_id)
        SETTINGS join_use_nulls = 1
    """)
    # 1 % replayed copies: every 100th event again with a later ingest_ts
    client.command(f"""
        INSERT INTO slm_observation_raw
        SELECT * REPLACE (ingest_ts + toIntervalSecond(60) AS ingest_ts)
        FROM slm_observation_raw WHERE cityHash64(event_id) % 100 = 0
    """)
    client.command(f"""
        INSERT INTO cluster_model_assignment
        SELECT toInt32(arrayJoin({list(SPECIALIST_CLUSTERS)})) AS c, fromUnixTimestamp64Milli(toInt64({START_MS + 3 * DAY_MS}), 'UTC'),
               now64(3), concat('distillery/spec-', toString(c)), concat('spec-', toString(c)), 'active', 'pr', 'bench'
    """)
    client.command(f"""
        INSERT INTO slm_observation_curated
        SELECT event_id, ts, ingest_ts, tenant, service, model, task_hint, cluster_id, cluster_model_version,
               prompt, response, tool_calls, outcome, cost_usd, latency_ms, pii_counts, redaction_version
        FROM slm_observation_raw WHERE cityHash64(event_id) % 10 = 0
    """)
    client.command(f"""
        INSERT INTO shadow_results
        SELECT concat('sr', toString(number)), fromUnixTimestamp64Milli(toInt64({START_MS} + number * 1000), 'UTC'), now64(3),
               concat('ev-', toString(number)), concat('spec-', toString(number % 3)), toInt32(number % 3), 'gpt-4o',
               cityHash64(number) % 100 < 85, (cityHash64(number) % 100) / 100., cityHash64(number, 1) % 100 < 97, true,
               cityHash64(number, 2) % 100 < 3, false, 1400., 260., 0.006, 0.0001
        FROM numbers({max(10_000, n_rows // 100)})
    """)
    client.command(f"""
        INSERT INTO dead_letters
        SELECT concat('ask/0/', toString(number)), fromUnixTimestamp64Milli(toInt64({START_MS} + number * 60000), 'UTC'), now64(3),
               'ask', 0, number, ['not_avro_or_json', 'missing_field', 'prompt_too_large'][1 + number % 3], 'example',
               100 + number % 1000, '', ''
        FROM numbers({max(1_000, n_rows // 1000)})
    """)


def run_views(client: Any) -> dict[str, dict[str, Any]]:
    """Every view's sample query: column names and rows (as JSON-friendly values)."""
    out = {}
    for name, sql in VIEW_QUERIES.items():
        res = client.query(sql)
        out[name] = {"columns": list(res.column_names),
                     "rows": [[v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v for v in row]
                              for row in res.result_rows]}
    return out


def _markdown(result: dict[str, Any]) -> str:
    cols, rows = result["columns"], result["rows"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def view_definitions() -> dict[str, str]:
    """View name -> its CREATE statement, as written in clickhouse/002_analyst_views.sql."""
    from clickhouse.migrate import statements

    out = {}
    for sql in statements(REPO / "clickhouse" / "002_analyst_views.sql"):
        m = re.match(r"CREATE (?:OR REPLACE )?VIEW (?:IF NOT EXISTS )?(\w+)", sql)
        if m:
            out[m.group(1)] = sql
    return out


def update_docs(doc: Path, results: dict[str, dict[str, Any]]) -> None:
    """Refresh the SQL and sample-output blocks between the markers of docs/analysts.md."""
    text = doc.read_text()
    defs = view_definitions()

    def fill(kind: str, body: Callable[[str], str]) -> None:
        nonlocal text
        pattern = re.compile(rf"<!-- {kind}:(\w+) -->\n.*?<!-- /{kind} -->", re.S)
        text = pattern.sub(lambda m: f"<!-- {kind}:{m.group(1)} -->\n{body(m.group(1))}<!-- /{kind} -->", text)

    fill("view-sql", lambda name: f"<details><summary>View definition</summary>\n\n```sql\n{defs[name]}\n```\n</details>\n")
    fill("sample", lambda name: f"```sql\n{VIEW_QUERIES[name]}\n```\n\n{_markdown(results[name])}\n")
    doc.write_text(text)


def main(argv: list[str] | None = None) -> int:
    import clickhouse_connect

    args = sys.argv[1:] if argv is None else argv
    doc = None
    if "--update-docs" in args:
        i = args.index("--update-docs")
        doc = Path(args[i + 1])
        args = args[:i] + args[i + 2:]
    if not args or not args[0].startswith("/"):
        print("usage: python -m bench.ledger_data /abs/path/for/chdb [n_events] [--update-docs docs/analysts.md]",
              file=sys.stderr)
        return 2
    client = clickhouse_connect.get_client(dsn=f"chdb://{args[0]}")
    small_ledger(client, int(args[1]) if len(args) > 1 else 20_000)
    results = run_views(client)
    for name, result in results.items():
        print(f"\n### {name}\n\n{_markdown(result)}")
    if doc is not None:
        update_docs(doc, results)
        print(f"\nupdated {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
