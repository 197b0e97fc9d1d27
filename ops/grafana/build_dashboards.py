"""Builds the Grafana dashboards in ops/grafana/dashboards/ from the compact panel list below
(every panel is one SQL over a view of clickhouse/002_analyst_views.sql, through the
grafana-clickhouse-datasource plugin). Edit here, then run
`python -m ops.grafana.build_dashboards` and commit the JSON it writes.

tests/unit/test_views.py runs every panel's SQL (macros expanded by expand_macros) on a
generated ledger, so a dashboard cannot drift from the views silently.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "grafana-clickhouse-datasource", "uid": "distillery-clickhouse"}

TENANT = "tenant IN (${tenant:singlequote})"
POLICY = ("min_examples = ${min_examples}, min_calls_per_day = ${min_calls_per_day}, "
          "min_regret_pct = ${min_regret_pct}, specialist_cost_per_1k = ${specialist_cost_per_1k}")
# latency quantile q of a summed sketch column `s` (the same rule as the views and sketch.py)
Q = ("if(empty(_b), 0., 2 * pow(1.01 / 0.99, _b[arrayFirstIndex(c -> c > {q} * (_c[-1] - 1), _c)].1) "
     "/ (1.01 / 0.99 + 1))")
SKETCH_WITH = ("WITH arraySort(x -> x.1, arrayMap((k, v) -> (toInt32(k), v), mapKeys(s), mapValues(s))) AS _b, "
               "arrayCumSum(arrayMap(x -> x.2, _b)) AS _c ")

LEDGER = [
    # (type, title, sql, unit, width, height)
    ("stat", "Replaceable share of calls (active + eligible clusters)",
     f"SELECT replaceable_call_share FROM replaceable_fraction({POLICY})", "percentunit", 6, 4),
    ("stat", "Replaceable share of spend",
     f"SELECT replaceable_spend_share FROM replaceable_fraction({POLICY})", "percentunit", 6, 4),
    ("stat", "Share of calls served by active specialists",
     f"SELECT active_call_share FROM replaceable_fraction({POLICY})", "percentunit", 6, 4),
    ("stat", "Savings against the frontier baseline (time range)",
     "SELECT sum(savings_usd) FROM savings_vs_frontier WHERE $__timeFilter(day)", "currencyUSD", 6, 4),
    ("timeseries", "Spend per day: API vs self-hosted (GPU-seconds)",
     f"SELECT toDateTime(day) AS time, sum(api_spend_usd) AS api, sum(self_hosted_spend_usd) AS self_hosted "
     f"FROM spend_per_cluster_day WHERE $__timeFilter(day) AND {TENANT} GROUP BY time ORDER BY time", "currencyUSD", 12, 8),
    ("timeseries", "Actual spend vs all-frontier counterfactual",
     "SELECT toDateTime(day) AS time, sum(actual_spend_usd) AS actual, sum(frontier_spend_usd) AS all_frontier "
     "FROM savings_vs_frontier WHERE $__timeFilter(day) GROUP BY time ORDER BY time", "currencyUSD", 12, 8),
    ("table", "Top clusters by spend",
     "SELECT cluster_id, label, calls, spend_usd, spend_share, cost_per_call_usd, top_model FROM top_clusters_by_spend LIMIT 20",
     "none", 12, 9),
    ("table", "Top clusters by regret (extra cost against the cheapest adequate model)",
     "SELECT cluster_id, label, calls, regret_usd, regret_share, quality_gap, worst_model FROM top_clusters_by_regret LIMIT 20",
     "none", 12, 9),
    ("table", "Clusters: served by a specialist, eligible for one, or not yet",
     f"SELECT cluster_id, status, active_specialist, calls, calls_per_day, curated_examples, regret_pct, spend_usd "
     f"FROM replaceable_clusters({POLICY}) ORDER BY spend_usd DESC LIMIT 50", "none", 24, 9),
    ("timeseries", "p95 latency per model (cluster $cluster, all selected tenants)",
     f"{SKETCH_WITH}SELECT hour AS time, model, {Q.format(q=0.95)} AS p95 FROM "
     f"(SELECT hour, model, sumMap(latency_sketch) AS s FROM cluster_model_hourly "
     f"WHERE $__timeFilter(hour) AND cluster_id = ${{cluster}} AND {TENANT} GROUP BY hour, model) ORDER BY time", "ms", 12, 8),
    ("timeseries", "Success, escalation and format-error rates (cluster $cluster)",
     f"SELECT toDateTime(day) AS time, sum(success_rate * calls) / sum(calls) AS success, "
     f"sum(escalation_rate * calls) / sum(calls) AS escalation, sum(format_error_rate * calls) / sum(calls) AS format_error "
     f"FROM cluster_model_daily WHERE $__timeFilter(day) AND cluster_id = ${{cluster}} AND {TENANT} "
     f"GROUP BY time ORDER BY time", "percentunit", 12, 8),
]

SPECIALISTS = [
    ("timeseries", "Specialist win rate in shadow (equivalent, well-formed, safe answers)",
     "SELECT hour AS time, adapter_id, sum(win_rate * comparisons) / sum(comparisons) AS wins "
     "FROM specialist_win_rate WHERE $__timeFilter(hour) GROUP BY time, adapter_id ORDER BY time", "percentunit", 12, 8),
    ("timeseries", "Shadow comparisons per hour",
     "SELECT hour AS time, adapter_id, sum(comparisons) AS n FROM specialist_win_rate "
     "WHERE $__timeFilter(hour) GROUP BY time, adapter_id ORDER BY time", "short", 12, 8),
    ("table", "Specialists in shadow: totals over the time range",
     "SELECT adapter_id, cluster_id, sum(comparisons) AS n, "
     "sum(win_rate * comparisons) / sum(comparisons) AS wins, "
     "sum(format_valid_rate * comparisons) / sum(comparisons) AS well_formed, "
     "sum(escalation_rate * comparisons) / sum(comparisons) AS escalated, sum(safety_incidents) AS incidents, "
     "avg(cost_ratio) AS cost_vs_primary, avg(p50_latency_ratio) AS p50_latency_vs_primary "
     "FROM specialist_win_rate WHERE $__timeFilter(hour) GROUP BY adapter_id, cluster_id ORDER BY n DESC",
     "none", 24, 8),
    ("timeseries", "Dead letters per day by reason",
     "SELECT toDateTime(day) AS time, reason, sum(messages) AS n FROM dead_letters_by_reason "
     "WHERE $__timeFilter(day) GROUP BY time, reason ORDER BY time", "short", 12, 8),
    ("table", "Dead letters by reason",
     "SELECT reason, source_topic, sum(messages) AS n, sum(bytes) AS total_bytes, max(last_seen) AS latest, "
     "any(example_detail) AS example FROM dead_letters_by_reason WHERE $__timeFilter(day) "
     "GROUP BY reason, source_topic ORDER BY n DESC", "none", 12, 8),
]


def _variables(with_cluster: bool) -> list[dict]:
    def textbox(name: str, value: str, label: str) -> dict:
        return {"name": name, "label": label, "type": "textbox", "query": value,
                "current": {"text": value, "value": value}, "hide": 0}

    out = [{
        "name": "tenant", "label": "Tenant", "type": "query", "datasource": DS,
        "query": "SELECT DISTINCT tenant FROM slm_observation_raw ORDER BY tenant",
        "definition": "SELECT DISTINCT tenant FROM slm_observation_raw ORDER BY tenant",
        "multi": True, "includeAll": True, "refresh": 2, "current": {"text": "All", "value": "$__all"},
    }]
    if with_cluster:
        out.append({
            "name": "cluster", "label": "Cluster", "type": "query", "datasource": DS,
            "query": "SELECT cluster_id FROM top_clusters_by_spend", "definition": "SELECT cluster_id FROM top_clusters_by_spend",
            "multi": False, "includeAll": False, "refresh": 2,
        })
        out += [textbox("min_examples", "200", "Policy: min curated examples"),
                textbox("min_calls_per_day", "100", "Policy: min calls/day"),
                textbox("min_regret_pct", "20", "Policy: min regret %"),
                textbox("specialist_cost_per_1k", "0.0002", "Specialist USD per 1k tokens")]
    return out


def _panel(i: int, spec: tuple, x: int, y: int) -> dict:
    kind, title, sql, unit, w, h = spec
    fmt, qtype = (0, "timeseries") if kind == "timeseries" else (1, "table")
    return {
        "id": i + 1, "type": kind, "title": title, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}} if kind == "stat" else {},
        "targets": [{"refId": "A", "datasource": DS, "editorType": "sql", "format": fmt, "queryType": qtype,
                     "rawSql": sql}],
    }


def dashboard(uid: str, title: str, specs: list[tuple], with_cluster: bool) -> dict:
    panels, x, y, row_h = [], 0, 0, 0
    for i, spec in enumerate(specs):
        w, h = spec[4], spec[5]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(_panel(i, spec, x, y))
        x, row_h = x + w, max(row_h, h)
    return {
        "uid": uid, "title": title, "tags": ["distillery"], "editable": True, "schemaVersion": 39, "version": 1,
        "time": {"from": "now-7d", "to": "now"}, "timezone": "utc", "refresh": "1m",
        "templating": {"list": _variables(with_cluster)}, "panels": panels,
        "description": "Built by ops/grafana/build_dashboards.py over the views of clickhouse/002_analyst_views.sql; see docs/analysts.md.",
    }


DASHBOARDS = {
    "ledger.json": ("distillery-ledger", "Distillery: ledger (spend, savings, replaceable fraction)", LEDGER, True),
    "specialists.json": ("distillery-specialists", "Distillery: specialists in shadow and dead letters", SPECIALISTS, False),
}


def expand_macros(sql: str, start: str, end: str, values: dict[str, str]) -> str:
    """What the plugin and Grafana do to a panel's SQL, for tests: time filter, variables."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 lambda m: f"{m.group(1)} >= toDateTime('{start}') AND {m.group(1)} <= toDateTime('{end}')", sql)
    sql = re.sub(r"\$\{(\w+):singlequote\}", lambda m: ", ".join(f"'{v}'" for v in values[m.group(1)].split(",")), sql)
    sql = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], sql)
    return re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), sql)


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, SQL) of every panel and variable."""
    out = []
    for name, (uid, title, specs, with_cluster) in DASHBOARDS.items():
        d = dashboard(uid, title, specs, with_cluster)
        out += [(name, p["title"], p["targets"][0]["rawSql"]) for p in d["panels"]]
        out += [(name, f"variable {v['name']}", v["query"]) for v in d["templating"]["list"] if v["type"] == "query"]
    return out


def main() -> None:
    for name, (uid, title, specs, with_cluster) in DASHBOARDS.items():
        path = HERE / "dashboards" / name
        path.write_text(json.dumps(dashboard(uid, title, specs, with_cluster), indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
