-- Distillery ledger, core tables. One DDL set for chDB and for a ClickHouse server.
-- Design (after Langfuse v3 / Helicone): immutable wide rows, ReplacingMergeTree keyed by the
-- record id (ORDER BY ends with it) and versioned by ingest time, month partitions, cost computed
-- at ingest. Row TTL is applied by the migrator from DISTILLERY_TTL_DAYS (ALTER ... MODIFY TTL).
-- Analysts read the views of 002 (deduplicated); these tables may briefly hold replayed copies.
-- Statements are separated by lines holding only ';'.

CREATE TABLE IF NOT EXISTS slm_observation_raw
(
    event_id          String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    tenant            LowCardinality(String),
    service           LowCardinality(String),
    model             LowCardinality(String),
    prompt            String CODEC(ZSTD(3)),
    response          String CODEC(ZSTD(3)),
    latency_ms        Float64,
    input_tokens      UInt64,
    output_tokens     UInt64,
    cost_usd          Float64,
    cost_source       LowCardinality(String),
    gpu_seconds       Nullable(Float64),
    outcome           LowCardinality(String),
    tool_calls        Nullable(String) CODEC(ZSTD(3)),
    task_hint         Nullable(String),
    metadata          Map(String, String),
    parent_event_id   Nullable(String),
    schema_id         Int32,
    pii_counts        Map(LowCardinality(String), Int32),
    redaction_version LowCardinality(String),
    duplicate_of      Nullable(String),
    dedupe_similarity Nullable(Float64),
    cluster_id        Nullable(Int32),
    cluster_model_version Nullable(Int64),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingest_ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), event_id)
;
CREATE TABLE IF NOT EXISTS slm_observation_curated
(
    event_id          String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    tenant            LowCardinality(String),
    service           LowCardinality(String),
    model             LowCardinality(String),
    task_hint         Nullable(String),
    cluster_id        Nullable(Int32),
    cluster_model_version Nullable(Int64),
    prompt            String CODEC(ZSTD(3)),
    response          String CODEC(ZSTD(3)),
    tool_calls        Nullable(String) CODEC(ZSTD(3)),
    outcome           LowCardinality(String),
    cost_usd          Float64,
    latency_ms        Float64,
    pii_counts        Map(LowCardinality(String), Int32),
    redaction_version LowCardinality(String)
)
ENGINE = ReplacingMergeTree(ingest_ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, toDate(ts), event_id)
;
CREATE TABLE IF NOT EXISTS dead_letters
(
    dlq_id            String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    source_topic      LowCardinality(String),
    source_partition  Int32,
    source_offset     Int64,
    reason            LowCardinality(String),
    detail            String,
    payload_size      UInt64,
    payload_sha256    String,
    -- The original bytes stay on ask.dlq (same access as ask); the ledger keeps a redacted preview only.
    payload_preview   String
)
ENGINE = ReplacingMergeTree(ingest_ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), dlq_id)
;
CREATE TABLE IF NOT EXISTS model_registry
(
    model_id          String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    kind              LowCardinality(String),
    state             LowCardinality(String),
    cluster_id        Nullable(Int32),
    base_model        Nullable(String),
    manifest_uri      Nullable(String),
    manifest_sha256   Nullable(String),
    eval_scores       Map(String, Float64),
    attributes        Map(String, String),
    reason            String
)
-- One row per lifecycle change (registrations from `registry`, state changes implied by
-- `promote`); model_registry_current (003) folds them into the current state per model.
ENGINE = ReplacingMergeTree(ingest_ts)
ORDER BY (model_id, ts, state)
;
CREATE TABLE IF NOT EXISTS model_metrics_timeseries
(
    window_id         String,
    revision          Int64,
    window_start      DateTime64(3, 'UTC'),
    window_seconds    Int32,
    ingest_ts         DateTime64(3, 'UTC'),
    tenant            LowCardinality(String),
    cluster_id        Int32,
    model             LowCardinality(String),
    calls             UInt64,
    input_tokens      UInt64,
    output_tokens     UInt64,
    cost_usd          Float64,
    successes         UInt64,
    failures          UInt64,
    escalations       UInt64,
    format_errors     UInt64,
    latency_sketch    Map(String, Int64),
    latency_p50       Float64,
    latency_p95       Float64,
    latency_p99       Float64,
    regret_cost_usd   Float64,
    quality_gap       Float64
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, cluster_id, model, window_start, window_id)
;
CREATE TABLE IF NOT EXISTS cluster_model_assignment
(
    cluster_id        Int32,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    serving_model     String,
    adapter_id        Nullable(String),
    state             LowCardinality(String),
    command_id        String,
    reason            String
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY cluster_id
;
CREATE TABLE IF NOT EXISTS promotion_audit_log
(
    command_id        String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    adapter_id        String,
    cluster_id        Int32,
    action            LowCardinality(String),
    reason            String,
    manifest_uri      Nullable(String),
    rollback_to       Nullable(String),
    evidence          Map(String, Float64),
    actor             LowCardinality(String)
)
ENGINE = ReplacingMergeTree(ingest_ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), command_id)
;
CREATE TABLE IF NOT EXISTS retrain_commands
(
    command_id        String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    cluster_id        Int32,
    base_model        String,
    dataset_uri       String,
    dataset_sha256    String,
    train_examples    Int32,
    eval_examples     Int32,
    method            LowCardinality(String),
    trigger           LowCardinality(String),
    evidence          Map(String, Float64),
    reason            String
)
ENGINE = ReplacingMergeTree(ingest_ts)
ORDER BY command_id
;
CREATE TABLE IF NOT EXISTS training_runs
(
    command_id        String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    cluster_id        Int32,
    status            LowCardinality(String),
    reason            String,
    adapter_id        Nullable(String),
    base_model        String,
    manifest_uri      Nullable(String),
    manifest_sha256   Nullable(String),
    method            LowCardinality(String),
    attempt           Int32,
    metrics           Map(String, Float64),
    gate_passed       Bool
)
ENGINE = ReplacingMergeTree(ingest_ts)
ORDER BY command_id
;
CREATE TABLE IF NOT EXISTS shadow_results
(
    result_id         String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    event_id          String,
    adapter_id        LowCardinality(String),
    cluster_id        Int32,
    primary_model     LowCardinality(String),
    exact_match       Bool,
    field_f1          Float64,
    format_valid      Bool,
    tool_calls_valid  Bool,
    escalated         Bool,
    safety_incident   Bool,
    primary_latency_ms Float64,
    shadow_latency_ms Float64,
    primary_cost_usd  Float64,
    shadow_cost_usd   Float64
)
ENGINE = ReplacingMergeTree(ingest_ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (adapter_id, toDate(ts), result_id)
;
CREATE TABLE IF NOT EXISTS drift_events
(
    drift_id          String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    cluster_id        Int32,
    metric            LowCardinality(String),
    before            Float64,
    after             Float64,
    evidence          String,
    suggested_action  String,
    severity          LowCardinality(String)
)
ENGINE = ReplacingMergeTree(ingest_ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), drift_id)
;
CREATE TABLE IF NOT EXISTS demotion_events
(
    demotion_id       String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    adapter_id        String,
    cluster_id        Int32,
    what_happened     String,
    evidence          Map(String, Float64),
    evidence_detail   String,
    action_taken      String,
    now_serving       String,
    what_to_do        String
)
ENGINE = ReplacingMergeTree(ingest_ts)
PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), demotion_id)
;
CREATE TABLE IF NOT EXISTS task_cluster_lineage
(
    lineage_id        String,
    ts                DateTime64(3, 'UTC'),
    ingest_ts         DateTime64(3, 'UTC'),
    cluster_id        Int32,
    change            LowCardinality(String),
    related_cluster_ids Array(Int32),
    label             String,
    top_terms         Array(String),
    example           String,
    size              Int64,
    model_version     Int64
)
ENGINE = ReplacingMergeTree(ingest_ts)
ORDER BY (cluster_id, lineage_id)
