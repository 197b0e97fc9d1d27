-- Distillery ledger, the analysts' surface: views over the core tables of 001.
-- Every question in docs/analysts.md is one SELECT from one of these views.
-- Deduplication: the core tables are ReplacingMergeTree keyed by the record id; a replay of the
-- same record lands in the same partition with the same sorting key, so FINAL with
-- do_not_merge_across_partitions_select_final=1 removes replayed copies at query time without
-- merging across partitions (measured against argMax / LIMIT BY in bench/bench_views.py).
-- Latency quantiles come from summed log-bucket sketches (streams/metrics/sketch.py):
-- gamma = (1 + 0.01) / (1 - 0.01), bucket value = 2 * gamma^i / (gamma + 1), the quantile q is
-- the first bucket whose cumulative count exceeds q * (n - 1). Keep the two in step.
-- Statements are separated by lines holding only ';'.

CREATE OR REPLACE VIEW observations AS
SELECT *
FROM slm_observation_raw FINAL
SETTINGS do_not_merge_across_partitions_select_final = 1
;
CREATE OR REPLACE VIEW metrics_windows AS
SELECT *
FROM model_metrics_timeseries FINAL
SETTINGS do_not_merge_across_partitions_select_final = 1
;
CREATE OR REPLACE VIEW cluster_labels AS
SELECT
    cluster_id,
    argMaxIf(label, ts, label != '')         AS label,
    argMaxIf(top_terms, ts, notEmpty(top_terms)) AS top_terms,
    max(ts)                                  AS last_change
FROM task_cluster_lineage FINAL
GROUP BY cluster_id
;
CREATE OR REPLACE VIEW spend_per_cluster_day AS
SELECT
    toDate(ts)                                             AS day,
    tenant,
    coalesce(cluster_id, -1)                               AS cluster_id,
    count()                                                AS calls,
    sum(cost_usd)                                          AS spend_usd,
    sumIf(cost_usd, cost_source != 'gpu_seconds')          AS api_spend_usd,
    sumIf(cost_usd, cost_source = 'gpu_seconds')           AS self_hosted_spend_usd,
    countIf(cost_source = 'unpriced')                      AS unpriced_calls,
    sum(input_tokens)                                      AS input_tokens,
    sum(output_tokens)                                     AS output_tokens,
    spend_usd / calls                                      AS cost_per_call_usd,
    countIf(outcome = 'success') / greatest(countIf(outcome != 'unknown'), 1) AS success_rate,
    countIf(outcome = 'escalated') / calls                 AS escalation_rate,
    uniqExact(model)                                       AS models
FROM observations
GROUP BY day, tenant, cluster_id
;
CREATE OR REPLACE VIEW cluster_model_hourly AS
WITH
    arraySort(x -> x.1, arrayMap((k, v) -> (toInt32(k), v), mapKeys(sketch_), mapValues(sketch_))) AS _b,
    arrayCumSum(arrayMap(x -> x.2, _b)) AS _c,
    (1.01 / 0.99) AS _g
SELECT
    hour, tenant, cluster_id, model,
    calls_                                   AS calls,
    input_tokens_                            AS input_tokens,
    output_tokens_                           AS output_tokens,
    spend_usd_                               AS spend_usd,
    successes_ / greatest(known_, 1)         AS success_rate,
    escalations_ / calls_                    AS escalation_rate,
    format_errors_ / calls_                  AS format_error_rate,
    regret_usd_                              AS regret_usd,
    quality_gap_                             AS quality_gap,
    if(empty(_b), 0., 2 * pow(_g, _b[arrayFirstIndex(c -> c > 0.50 * (_c[-1] - 1), _c)].1) / (_g + 1)) AS latency_p50,
    if(empty(_b), 0., 2 * pow(_g, _b[arrayFirstIndex(c -> c > 0.95 * (_c[-1] - 1), _c)].1) / (_g + 1)) AS latency_p95,
    if(empty(_b), 0., 2 * pow(_g, _b[arrayFirstIndex(c -> c > 0.99 * (_c[-1] - 1), _c)].1) / (_g + 1)) AS latency_p99,
    sketch_                                  AS latency_sketch
FROM
(
    SELECT
        toStartOfHour(window_start)          AS hour,
        tenant, cluster_id, model,
        -- aliases end in _ so that no alias shadows a column another aggregate reads
        sum(calls)                           AS calls_,
        sum(input_tokens)                    AS input_tokens_,
        sum(output_tokens)                   AS output_tokens_,
        sum(cost_usd)                        AS spend_usd_,
        sum(successes)                       AS successes_,
        sum(successes + failures + escalations) AS known_,
        sum(escalations)                     AS escalations_,
        sum(format_errors)                   AS format_errors_,
        sum(regret_cost_usd)                 AS regret_usd_,
        sum(quality_gap * calls) / sum(calls) AS quality_gap_,
        sumMap(latency_sketch)               AS sketch_
    FROM metrics_windows
    GROUP BY hour, tenant, cluster_id, model
)
;
CREATE OR REPLACE VIEW cluster_model_daily AS
WITH
    arraySort(x -> x.1, arrayMap((k, v) -> (toInt32(k), v), mapKeys(sketch_), mapValues(sketch_))) AS _b,
    arrayCumSum(arrayMap(x -> x.2, _b)) AS _c,
    (1.01 / 0.99) AS _g
SELECT
    day, tenant, cluster_id, model,
    calls_                                   AS calls,
    input_tokens_                            AS input_tokens,
    output_tokens_                           AS output_tokens,
    spend_usd_                               AS spend_usd,
    successes_ / greatest(known_, 1)         AS success_rate,
    escalations_ / calls_                    AS escalation_rate,
    format_errors_ / calls_                  AS format_error_rate,
    regret_usd_                              AS regret_usd,
    quality_gap_                             AS quality_gap,
    if(empty(_b), 0., 2 * pow(_g, _b[arrayFirstIndex(c -> c > 0.50 * (_c[-1] - 1), _c)].1) / (_g + 1)) AS latency_p50,
    if(empty(_b), 0., 2 * pow(_g, _b[arrayFirstIndex(c -> c > 0.95 * (_c[-1] - 1), _c)].1) / (_g + 1)) AS latency_p95,
    if(empty(_b), 0., 2 * pow(_g, _b[arrayFirstIndex(c -> c > 0.99 * (_c[-1] - 1), _c)].1) / (_g + 1)) AS latency_p99,
    sketch_                                  AS latency_sketch
FROM
(
    SELECT
        toDate(window_start)                 AS day,
        tenant, cluster_id, model,
        -- aliases end in _ so that no alias shadows a column another aggregate reads
        sum(calls)                           AS calls_,
        sum(input_tokens)                    AS input_tokens_,
        sum(output_tokens)                   AS output_tokens_,
        sum(cost_usd)                        AS spend_usd_,
        sum(successes)                       AS successes_,
        sum(successes + failures + escalations) AS known_,
        sum(escalations)                     AS escalations_,
        sum(format_errors)                   AS format_errors_,
        sum(regret_cost_usd)                 AS regret_usd_,
        sum(quality_gap * calls) / sum(calls) AS quality_gap_,
        sumMap(latency_sketch)               AS sketch_
    FROM metrics_windows
    GROUP BY day, tenant, cluster_id, model
)
;
-- Savings against the frontier baseline. The baseline of a cluster is what its API-priced
-- (token-priced) first calls cost on average over all history (the global average for a
-- cluster that never used an API model); the counterfactual is every first call (no
-- parent_event_id) at that price; the actual spend includes everything the cluster cost that
-- day: specialists' GPU time, escalations and shadow calls. One scan: the all-history baselines
-- are window sums over the per-day groups.
CREATE OR REPLACE VIEW savings_vs_frontier AS
SELECT
    day,
    cluster_id,
    calls,
    first_calls,
    self_hosted_calls,
    spend_usd                                              AS actual_spend_usd,
    coalesce(sum(api_first_cost) OVER (PARTITION BY cluster_id) / nullIf(sum(api_first_calls) OVER (PARTITION BY cluster_id), 0),
             sum(api_first_cost) OVER () / nullIf(sum(api_first_calls) OVER (), 0)) AS baseline_cost_per_call_usd,
    first_calls * baseline_cost_per_call_usd               AS frontier_spend_usd,
    frontier_spend_usd - spend_usd                         AS savings_usd,
    if(frontier_spend_usd > 0, savings_usd / frontier_spend_usd, 0) AS savings_pct
FROM
(
    SELECT
        toDate(ts)                                         AS day,
        coalesce(cluster_id, -1)                           AS cluster_id,
        count()                                            AS calls,
        countIf(parent_event_id IS NULL)                   AS first_calls,
        countIf(cost_source = 'gpu_seconds')               AS self_hosted_calls,
        sum(cost_usd)                                      AS spend_usd,
        sumIf(cost_usd, cost_source IN ('reported', 'tokens') AND parent_event_id IS NULL) AS api_first_cost,
        countIf(cost_source IN ('reported', 'tokens') AND parent_event_id IS NULL)         AS api_first_calls
    FROM observations
    GROUP BY day, cluster_id
)
;
-- Per cluster: is it served by an active specialist, eligible for one under the policy
-- thresholds (the same rule as streams/policy: examples, calls/day, regret %), or not yet.
-- Unclustered calls (cluster_id -1) are listed with status 'unclustered'.
-- Parameters: min_examples, min_calls_per_day, min_regret_pct, specialist_cost_per_1k
-- (USD per 1k tokens of the base a specialist would use; see model_candidates.json).
-- Rates are per day over each cluster's own history: from the minute of its first call to the
-- newest call in the ledger, never less than an hour (the tracker's rule, over all history).
CREATE OR REPLACE VIEW replaceable_clusters AS
SELECT
    t.cluster_id                                           AS cluster_id,
    t.calls                                                AS calls,
    t.spend_usd                                            AS spend_usd,
    t.calls * 86400 / greatest(3600, dateDiff('second', t.first_minute, max(t.last_ts) OVER ())) AS calls_per_day,
    coalesce(e.examples, 0)                                AS curated_examples,
    coalesce(r.ledger_regret_usd, 0)                       AS ledger_regret_usd,
    greatest(ledger_regret_usd, t.spend_usd - t.tokens * {specialist_cost_per_1k:Float64} / 1000) AS avoidable_usd,
    if(t.spend_usd > 0, 100 * greatest(avoidable_usd, 0) / t.spend_usd, 0) AS regret_pct,
    a.serving_model                                        AS active_specialist,
    multiIf(t.cluster_id = -1, 'unclustered',
            a.serving_model IS NOT NULL, 'active',
            curated_examples >= {min_examples:UInt64}
              AND calls_per_day >= {min_calls_per_day:Float64}
              AND regret_pct >= {min_regret_pct:Float64}, 'eligible',
            'not_yet')                                     AS status
FROM
(
    SELECT coalesce(cluster_id, -1) AS cluster_id, count() AS calls, sum(cost_usd) AS spend_usd,
           sum(input_tokens + output_tokens) AS tokens, toStartOfMinute(min(ts)) AS first_minute, max(ts) AS last_ts
    FROM observations
    GROUP BY cluster_id
) AS t
LEFT JOIN
(
    -- trainable curated examples (streams/policy/stats.py is_trainable; the JSON check here
    -- does not strip ``` fences, so it may count a fenced answer as a format error)
    SELECT cluster_id, count() AS examples
    FROM slm_observation_curated FINAL
    WHERE cluster_id IS NOT NULL AND outcome IN ('success', 'unknown')
      AND notEmpty(trimBoth(prompt)) AND notEmpty(trimBoth(response))
      AND NOT (match(response, '^\\s*[\\[{]') AND NOT isValidJSON(response))
      AND NOT (notEmpty(coalesce(tool_calls, '')) AND NOT isValidJSON(coalesce(tool_calls, '')))
    GROUP BY cluster_id
) AS e ON e.cluster_id = t.cluster_id
LEFT JOIN
(
    SELECT cluster_id, sum(regret_cost_usd) AS ledger_regret_usd FROM metrics_windows GROUP BY cluster_id
) AS r ON r.cluster_id = t.cluster_id
LEFT JOIN
(
    SELECT cluster_id, serving_model FROM cluster_model_assignment FINAL WHERE state = 'active'
) AS a ON a.cluster_id = t.cluster_id
SETTINGS join_use_nulls = 1
;
-- The paper's 40-70 % estimate, measured on your own traffic: the share of calls and of spend
-- in clusters an active specialist serves, or that are eligible for one. Unclustered calls
-- count in the denominator (they are traffic no specialist can take yet).
CREATE OR REPLACE VIEW replaceable_fraction AS
SELECT
    sum(calls)                                             AS total_calls,
    sum(spend_usd)                                         AS total_spend_usd,
    countIf(status = 'active')                             AS active_clusters,
    countIf(status = 'eligible')                           AS eligible_clusters,
    sumIf(calls, status = 'active') / total_calls          AS active_call_share,
    sumIf(calls, status = 'eligible') / total_calls        AS eligible_call_share,
    sumIf(calls, status IN ('active', 'eligible')) / total_calls AS replaceable_call_share,
    sumIf(spend_usd, status IN ('active', 'eligible')) / total_spend_usd AS replaceable_spend_share
FROM replaceable_clusters(min_examples = {min_examples:UInt64}, min_calls_per_day = {min_calls_per_day:Float64},
                          min_regret_pct = {min_regret_pct:Float64}, specialist_cost_per_1k = {specialist_cost_per_1k:Float64})
;
CREATE OR REPLACE VIEW top_clusters_by_spend AS
SELECT
    s.cluster_id                                           AS cluster_id,
    l.label                                                AS label,
    s.calls                                                AS calls,
    s.spend_usd                                            AS spend_usd,
    s.spend_share                                          AS spend_share,
    s.spend_usd / s.calls                                  AS cost_per_call_usd,
    s.top_model                                            AS top_model,
    s.models                                               AS models
FROM
(
    SELECT cluster_id, calls, spend_usd, spend_usd / sum(spend_usd) OVER () AS spend_share, top_model, models
    FROM
    (
        SELECT coalesce(cluster_id, -1) AS cluster_id, sum(n) AS calls, sum(model_spend) AS spend_usd,
               argMax(model, model_spend) AS top_model, count() AS models
        FROM
        (
            SELECT cluster_id, model, count() AS n, sum(cost_usd) AS model_spend
            FROM observations
            GROUP BY cluster_id, model
        )
        GROUP BY cluster_id
    )
) AS s
LEFT JOIN cluster_labels AS l ON l.cluster_id = s.cluster_id
ORDER BY spend_usd DESC
LIMIT 100
;
CREATE OR REPLACE VIEW top_clusters_by_regret AS
SELECT
    r.cluster_id                                           AS cluster_id,
    l.label                                                AS label,
    r.calls_                                               AS calls,
    r.spend_usd_                                           AS spend_usd,
    r.regret_usd_                                          AS regret_usd,
    if(r.spend_usd_ > 0, r.regret_usd_ / r.spend_usd_, 0)  AS regret_share,
    r.quality_gap_                                         AS quality_gap,
    r.worst_model                                          AS worst_model
FROM
(
    SELECT cluster_id, sum(calls) AS calls_, sum(cost_usd) AS spend_usd_, sum(regret_cost_usd) AS regret_usd_,
           sum(quality_gap * calls) / sum(calls) AS quality_gap_,
           argMax(model, regret_cost_usd) AS worst_model
    FROM metrics_windows
    GROUP BY cluster_id
) AS r
LEFT JOIN cluster_labels AS l ON l.cluster_id = r.cluster_id
ORDER BY regret_usd DESC
LIMIT 100
;
-- A shadow comparison is a win when the specialist's answer is equivalent to the primary's
-- (exact match, or field F1 >= 0.9), well-formed, and caused no safety incident.
CREATE OR REPLACE VIEW specialist_win_rate AS
SELECT
    toStartOfHour(ts)                                      AS hour,
    adapter_id,
    cluster_id,
    count()                                                AS comparisons,
    countIf((exact_match OR field_f1 >= 0.9) AND format_valid AND NOT safety_incident) / comparisons AS win_rate,
    countIf(exact_match) / comparisons                     AS exact_match_rate,
    avg(field_f1)                                          AS mean_field_f1,
    countIf(format_valid) / comparisons                    AS format_valid_rate,
    countIf(escalated) / comparisons                       AS escalation_rate,
    countIf(safety_incident)                               AS safety_incidents,
    sum(shadow_cost_usd) / greatest(sum(primary_cost_usd), 1e-12) AS cost_ratio,
    quantile(0.5)(shadow_latency_ms) / greatest(quantile(0.5)(primary_latency_ms), 1e-9) AS p50_latency_ratio
FROM shadow_results FINAL
GROUP BY hour, adapter_id, cluster_id
SETTINGS do_not_merge_across_partitions_select_final = 1
;
CREATE OR REPLACE VIEW dead_letters_by_reason AS
SELECT
    toDate(ts)                                             AS day,
    source_topic,
    reason,
    count()                                                AS messages,
    sum(payload_size)                                      AS bytes,
    min(ts)                                                AS first_seen,
    max(ts)                                                AS last_seen,
    any(detail)                                            AS example_detail
FROM dead_letters FINAL
GROUP BY day, source_topic, reason
SETTINGS do_not_merge_across_partitions_select_final = 1
