"""The one settings module: every service reads its configuration here, from environment
variables with documented defaults, validated at start.

A bad value stops the command with a message that names the variable, what was wrong and
how to fix it (SettingsError). Nothing else in the code base reads os.environ for
configuration.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse


class SettingsError(ValueError):
    """A configuration value is missing or wrong; the message says how to fix it."""


# Topic names are part of the public contract (DESIGN.md); internal ones are ours to evolve.
class Topics:
    ASK = "ask"
    ASK_DLQ = "ask.dlq"
    REDACTED = "redacted"            # internal: accepted, priced, redacted events
    DEDUPED = "deduped"              # internal: + duplicate_of
    CLUSTERED = "clustered"          # internal: + cluster_id (every event, duplicates too)
    CLUSTER_SNAPSHOT = "clusters.snapshot"   # compacted: the model serving uses at request time
    CLUSTER_LINEAGE = "clusters.lineage"     # births, merges, splits, labels
    METRICS = "metrics"              # closed metric windows per (tenant, cluster, model)
    RETRAIN = "retrain"
    TRAINED = "trained"
    TRAINING_PROGRESS = "training.progress"
    PROMOTE = "promote"
    SHADOW_RESULTS = "shadow.results"
    REGISTRY = "registry"            # model_registry state changes
    DRIFT = "drift"
    DEMOTION = "demotion"

    @classmethod
    def all(cls) -> list[str]:
        return [v for k, v in vars(cls).items() if k.isupper() and isinstance(v, str)]

    # Topics that must keep only the newest record per key.
    COMPACTED = (CLUSTER_SNAPSHOT,)
    # Topics with a single partition because their consumer keeps one global model.
    SINGLE_PARTITION = (DEDUPED, CLUSTER_SNAPSHOT, CLUSTER_LINEAGE, RETRAIN, PROMOTE, TRAINED, REGISTRY)


def _env(name: str, default: str | None, env: Mapping[str, str]) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _int(name: str, default: int, env: Mapping[str, str], minimum: int = 0, maximum: int | None = None) -> int:
    raw = _env(name, None, env)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number; set it to an integer such as {default}, or unset it for the default") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise SettingsError(f"{name}={value} is out of range; it must be {bound} (default {default})")
    return value


def _float(name: str, default: float, env: Mapping[str, str], minimum: float = 0.0, maximum: float | None = None) -> float:
    raw = _env(name, None, env)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; set it to a number such as {default}, or unset it for the default") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise SettingsError(f"{name}={value} is out of range; it must be {bound} (default {default})")
    return value


def _bool(name: str, default: bool, env: Mapping[str, str]) -> bool:
    raw = _env(name, None, env)
    if raw is None:
        return default
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def _choice(name: str, default: str, choices: tuple[str, ...], env: Mapping[str, str]) -> str:
    raw = _env(name, default, env)
    assert raw is not None
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(choices)} (default {default})")
    return raw


PACKAGE_DEFAULTS = Path(__file__).resolve().parent / "defaults"


@dataclass(frozen=True)
class Settings:
    """Validated configuration. Build it with Settings.from_env(); see docs/operations.md."""

    home: Path
    kafka_bootstrap: str | None           # None: the local profile (a Tansu broker we start)
    clickhouse_url: str
    clickhouse_http_port: int             # read-only HTTP query interface of the embedded store
    schema_registry_url: str | None
    profile: str                          # "local" (Tansu workarounds) or "production"
    topic_partitions: int
    topic_replication: int
    max_prompt_bytes: int
    price_table: Path
    model_candidates: Path
    ttl_days: int                         # 0 keeps rows forever
    sink_batch_size: int
    sink_flush_seconds: float
    artifacts_uri: str
    signing_key: str | None               # HMAC key for adapter manifests; None: a local key file
    ed25519_private_key: Path | None
    # curation
    redaction_ner: bool
    redaction_mode: str                   # "placeholder" or "fake"
    dedupe_threshold: float
    dedupe_num_perm: int
    dedupe_max_signatures: int
    dedupe_max_age_days: float
    # clustering
    cluster_threshold: float
    cluster_featurizer: str               # "hashed" (structure + hashed terms) or "minilm"
    # metrics and decisions
    metrics_window_seconds: int
    metrics_grace_seconds: int
    policy_min_examples: int
    policy_min_calls_per_day: int
    policy_min_regret_pct: float
    policy_period_seconds: int
    decide_every_seconds: float
    # serving
    serve_port: int
    upstream_url: str | None
    upstream_api_key: str | None
    shadow_sample_rate: float
    max_loaded_adapters: int
    base_model_path: Path | None
    log_level: str
    extra: dict[str, Any] = field(default_factory=dict)
    # serving (defaults here so code that builds Settings by hand keeps working)
    upstream_model: str = "gpt-4o"        # model name used for upstream answers the client did not name
    serve_max_new_tokens: int = 128       # cap on a specialist's answer length
    shadow_max_in_flight: int = 2         # shadow calls running at once per replica (the rest are dropped)
    promotion_thresholds: str | None = None  # overrides of serving.promotion.PromotionThresholds
    router_quality_sla: dict[str, float] = field(default_factory=dict)  # tier -> success-rate floor (router defaults otherwise)
    serve_faults: str | None = None       # DEMO/TEST ONLY: fault injection (serving.quality.FaultInjector)
    # trainer (defaults here so code that builds Settings by hand keeps working)
    trainer_max_attempts: int = 3         # a crashing retrain job is tried this often, then failed
    gate_min_gain: float = 0.10           # adapter exact match must beat the base's by this much...
    gate_min_format: float = 0.90         # ...with at least this share of well-formed answers, to be shadowed
    # worker throughput (defaults here so code that builds Settings by hand keeps working)
    ingest_processes: int = 1             # child processes that decode+redact `ask` (0 = the worker's CPU thread)

    # ---- derived -------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.profile == "local"

    @property
    def chdb_path(self) -> Path | None:
        """Directory of the embedded store when CLICKHOUSE_URL is chdb://, else None."""
        if self.clickhouse_url.startswith("chdb://"):
            return Path(urlparse(self.clickhouse_url).path)
        return None

    @property
    def stack_file(self) -> Path:
        """Where `distillery up` records the broker and query ports it started."""
        return self.home / "stack.json"

    def broker(self) -> str:
        """The Kafka bootstrap servers: KAFKA_BOOTSTRAP, else the broker `distillery up` started."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        stack = self.read_stack()
        if stack and stack.get("kafka_bootstrap"):
            return stack["kafka_bootstrap"]
        raise SettingsError(
            "no Kafka broker: KAFKA_BOOTSTRAP is unset and no local stack is running under "
            f"{self.home}. Start one with `distillery up` (in another terminal), or set "
            "KAFKA_BOOTSTRAP=host:port to use an existing cluster."
        )

    def read_stack(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.stack_file.read_text())
        except (OSError, ValueError):
            return None
        pid = data.get("pid")
        if pid and not _pid_alive(int(pid)):
            return None
        return data

    def with_overrides(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def faust_broker_options(self) -> dict[str, Any]:
        """Consumer-group timings. Tansu answers JoinGroup after ~session_timeout/2, so the
        local profile uses short timeouts; a real cluster keeps Kafka's defaults."""
        if self.is_local:
            return {"broker_session_timeout": 6.0, "broker_heartbeat_interval": 1.0,
                    "broker_rebalance_timeout": 6.0}
        return {}

    def kafka_consumer_options(self) -> dict[str, Any]:
        """The same workaround for plain aiokafka consumers (trainer, serving)."""
        if self.is_local:
            return {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "rebalance_timeout_ms": 6000}
        return {}

    # ---- construction --------------------------------------------------------------------
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        home = Path(_env("DISTILLERY_HOME", "./.distillery", env) or ".distillery").expanduser().resolve()
        kafka = _env("KAFKA_BOOTSTRAP", None, env)
        if kafka is not None:
            _check_bootstrap(kafka)
        profile = _choice("DISTILLERY_PROFILE", "local" if kafka is None else "production", ("local", "production"), env)

        ch_url = _env("CLICKHOUSE_URL", None, env) or f"chdb://{home / 'clickhouse'}"
        _check_clickhouse_url(ch_url)

        sr = _env("SCHEMA_REGISTRY_URL", None, env)
        if sr is not None and urlparse(sr).scheme not in ("http", "https"):
            raise SettingsError(f"SCHEMA_REGISTRY_URL={sr!r} must be an http(s):// URL of a Confluent-compatible schema registry, or unset to use the catalog in schemas/")

        price_table = Path(_env("DISTILLERY_PRICE_TABLE", str(PACKAGE_DEFAULTS / "prices.json"), env) or "").expanduser()
        if not price_table.is_file():
            raise SettingsError(f"DISTILLERY_PRICE_TABLE={price_table} does not exist; point it at a JSON price table (see docs/operations.md) or unset it for the shipped one")
        candidates = Path(_env("DISTILLERY_MODEL_CANDIDATES", str(PACKAGE_DEFAULTS / "model_candidates.json"), env) or "").expanduser()
        if not candidates.is_file():
            raise SettingsError(f"DISTILLERY_MODEL_CANDIDATES={candidates} does not exist; point it at a JSON candidate registry (see docs/operations.md) or unset it for the shipped one")

        ed_key = _env("DISTILLERY_ED25519_KEY", None, env)
        base_model = _env("DISTILLERY_BASE_MODEL", None, env)
        upstream = _env("DISTILLERY_UPSTREAM_URL", None, env)
        if upstream is not None and urlparse(upstream).scheme not in ("http", "https"):
            raise SettingsError(f"DISTILLERY_UPSTREAM_URL={upstream!r} must be the http(s):// base URL of an OpenAI-compatible API (e.g. https://api.openai.com/v1)")

        return cls(
            home=home,
            kafka_bootstrap=kafka,
            clickhouse_url=ch_url,
            clickhouse_http_port=_int("CLICKHOUSE_HTTP_PORT", 8123, env, 0, 65535),
            schema_registry_url=sr,
            profile=profile,
            topic_partitions=_int("DISTILLERY_PARTITIONS", 4, env, 1, 1024),
            topic_replication=_int("DISTILLERY_REPLICATION", 1, env, 1, 16),
            max_prompt_bytes=_int("DISTILLERY_MAX_PROMPT_BYTES", 262_144, env, 1),
            price_table=price_table,
            model_candidates=candidates,
            ttl_days=_int("DISTILLERY_TTL_DAYS", 0, env, 0),
            sink_batch_size=_int("DISTILLERY_SINK_BATCH", 5_000, env, 1),
            sink_flush_seconds=_float("DISTILLERY_SINK_FLUSH_SECONDS", 1.0, env, 0.01),
            artifacts_uri=_env("DISTILLERY_ARTIFACTS", str(home / "artifacts"), env) or "",
            signing_key=_env("DISTILLERY_SIGNING_KEY", None, env),
            ed25519_private_key=Path(ed_key).expanduser() if ed_key else None,
            redaction_ner=_bool("DISTILLERY_REDACTION_NER", True, env),
            redaction_mode=_choice("DISTILLERY_REDACTION_MODE", "placeholder", ("placeholder", "fake"), env),
            dedupe_threshold=_float("DISTILLERY_DEDUPE_THRESHOLD", 0.85, env, 0.05, 1.0),
            dedupe_num_perm=_int("DISTILLERY_DEDUPE_NUM_PERM", 256, env, 16, 1024),
            dedupe_max_signatures=_int("DISTILLERY_DEDUPE_MAX_SIGNATURES", 1_000_000, env, 1),
            dedupe_max_age_days=_float("DISTILLERY_DEDUPE_MAX_AGE_DAYS", 30.0, env, 0.0),
            cluster_featurizer=_choice("DISTILLERY_CLUSTER_FEATURIZER", "hashed", ("hashed", "minilm"), env),
            cluster_threshold=_float("DISTILLERY_CLUSTER_THRESHOLD", 0.0, env, 0.0, 2.0),
            metrics_window_seconds=_int("DISTILLERY_METRICS_WINDOW_SECONDS", 60, env, 1),
            metrics_grace_seconds=_int("DISTILLERY_METRICS_GRACE_SECONDS", 120, env, 0),
            policy_min_examples=_int("DISTILLERY_POLICY_MIN_EXAMPLES", 200, env, 1),
            policy_min_calls_per_day=_int("DISTILLERY_POLICY_MIN_CALLS_PER_DAY", 100, env, 0),
            policy_min_regret_pct=_float("DISTILLERY_POLICY_MIN_REGRET_PCT", 20.0, env, 0.0),
            policy_period_seconds=_int("DISTILLERY_POLICY_PERIOD_SECONDS", 86_400, env, 1),
            decide_every_seconds=_float("DISTILLERY_DECIDE_EVERY_SECONDS", 30.0, env, 0.5),
            serve_port=_int("DISTILLERY_SERVE_PORT", 8080, env, 0, 65535),
            upstream_url=upstream,
            upstream_api_key=_env("DISTILLERY_UPSTREAM_API_KEY", None, env),
            shadow_sample_rate=_float("DISTILLERY_SHADOW_SAMPLE_RATE", 1.0, env, 0.0, 1.0),
            max_loaded_adapters=_int("DISTILLERY_MAX_LOADED_ADAPTERS", 8, env, 1),
            base_model_path=Path(base_model).expanduser() if base_model else None,
            upstream_model=_env("DISTILLERY_UPSTREAM_MODEL", "gpt-4o", env) or "gpt-4o",
            serve_max_new_tokens=_int("DISTILLERY_SERVE_MAX_NEW_TOKENS", 128, env, 1, 8192),
            shadow_max_in_flight=_int("DISTILLERY_SHADOW_MAX_IN_FLIGHT", 2, env, 1, 1024),
            promotion_thresholds=_promotion_thresholds(env),
            router_quality_sla=_quality_sla(env),
            serve_faults=_env("DISTILLERY_SERVE_FAULTS", None, env),
            log_level=_choice("DISTILLERY_LOG_LEVEL", "info", ("debug", "info", "warning", "error"), env),
            trainer_max_attempts=_int("DISTILLERY_TRAINER_MAX_ATTEMPTS", 3, env, 1, 100),
            gate_min_gain=_float("DISTILLERY_GATE_MIN_GAIN", 0.10, env, -1.0, 1.0),
            gate_min_format=_float("DISTILLERY_GATE_MIN_FORMAT", 0.90, env, 0.0, 1.0),
            ingest_processes=_int("DISTILLERY_INGEST_PROCESSES", 1, env, 0, 64),
        )


def _promotion_thresholds(env: Mapping[str, str]) -> str | None:
    spec = _env("DISTILLERY_PROMOTION_THRESHOLDS", None, env)
    if spec is not None:
        from serving.promotion import PromotionThresholds  # validates names, types and ranges

        PromotionThresholds.parse(spec)
    return spec


def fraction_map(setting: str, spec: str | None, problem: str, skip: tuple[str, ...] = ()) -> dict[str, float]:
    """'name=value,name=value' with every value in [0, 1] -> {name: value}. Empty parts and
    parts in `skip` (lower-cased) are ignored; a bad part raises SettingsError
    '<setting>: <part> <problem>'."""
    out: dict[str, float] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part or part.lower() in skip:
            continue
        name, sep, value = part.rpartition("=")
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not sep or not name.strip() or not 0.0 <= fraction <= 1.0:
            raise SettingsError(f"{setting}: {part!r} {problem}")
        out[name.strip()] = fraction
    return out


def _quality_sla(env: Mapping[str, str]) -> dict[str, float]:
    """DISTILLERY_ROUTER_QUALITY_SLA='free=0.85,standard=0.92,enterprise=0.97' (any subset)."""
    return fraction_map("DISTILLERY_ROUTER_QUALITY_SLA", _env("DISTILLERY_ROUTER_QUALITY_SLA", None, env),
                        "must be tier=value with a value between 0 and 1, e.g. free=0.85,standard=0.92,enterprise=0.97")


def _check_bootstrap(value: str) -> None:
    for part in value.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"KAFKA_BOOTSTRAP={value!r}: each server must be host:port (e.g. kafka1:9092,kafka2:9092); unset it to start a local broker")


def _check_clickhouse_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme == "chdb":
        if not parsed.path.startswith("/"):
            raise SettingsError(f"CLICKHOUSE_URL={url!r}: an embedded store needs an absolute path, e.g. chdb:///var/lib/distillery/clickhouse")
        return
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise SettingsError(f"CLICKHOUSE_URL={url!r} has no host; use http(s)://user:pass@host:port/database")
        return
    raise SettingsError(f"CLICKHOUSE_URL={url!r}: use http(s)://user:pass@host:port/database for a server, or chdb:///abs/path for the embedded engine (default under DISTILLERY_HOME)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on loopback (for local services and tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# Documented for `distillery config` and docs/operations.md: (env var, default, meaning).
ENV_DOC: list[tuple[str, str, str]] = [
    ("DISTILLERY_HOME", "./.distillery", "state directory: embedded ClickHouse, checkpoints, artifacts, stack.json"),
    ("KAFKA_BOOTSTRAP", "(unset)", "Kafka bootstrap servers; unset = `distillery up` starts a local Tansu broker"),
    ("DISTILLERY_PROFILE", "local if KAFKA_BOOTSTRAP unset, else production", "local enables the Tansu workarounds (short session timeouts)"),
    ("CLICKHOUSE_URL", "chdb://$DISTILLERY_HOME/clickhouse", "http(s)://user:pass@host:port/db for a server, chdb:///abs/path for embedded chDB"),
    ("CLICKHOUSE_HTTP_PORT", "8123", "read-only ClickHouse HTTP query interface served by the process that owns an embedded store (0 = off)"),
    ("SCHEMA_REGISTRY_URL", "(unset)", "Confluent-compatible registry for Avro schema ids on `ask`; unset = fixed catalog in schemas/"),
    ("DISTILLERY_PARTITIONS", "4", "partitions for topics the worker creates"),
    ("DISTILLERY_REPLICATION", "1", "replication factor for topics the worker creates"),
    ("DISTILLERY_MAX_PROMPT_BYTES", "262144", "prompts larger than this (UTF-8 bytes) go to ask.dlq"),
    ("DISTILLERY_PRICE_TABLE", "distillery/defaults/prices.json", "model price table: token prices for API models, GPU-second prices for self-hosted ones"),
    ("DISTILLERY_MODEL_CANDIDATES", "distillery/defaults/model_candidates.json", "candidate small base models for specialists"),
    ("DISTILLERY_TTL_DAYS", "0", "ClickHouse row TTL in days on event tables (0 = keep forever)"),
    ("DISTILLERY_SINK_BATCH", "5000", "max rows per ClickHouse insert"),
    ("DISTILLERY_SINK_FLUSH_SECONDS", "1.0", "max wait before a partial batch is inserted"),
    ("DISTILLERY_INGEST_PROCESSES", "1", "child processes of the worker that decode and redact `ask` (redaction is the costliest stage; 0 = in the worker process)"),
    ("DISTILLERY_ARTIFACTS", "$DISTILLERY_HOME/artifacts", "artifact store (datasets, adapters): a directory or any fsspec URI"),
    ("DISTILLERY_SIGNING_KEY", "(generated under DISTILLERY_HOME)", "HMAC key that signs adapter manifests"),
    ("DISTILLERY_ED25519_KEY", "(unset)", "path to an Ed25519 private key (PEM); when set manifests are signed with it"),
    ("DISTILLERY_REDACTION_NER", "true", "person-name and address recognition (off for maximum throughput)"),
    ("DISTILLERY_REDACTION_MODE", "placeholder", "placeholder (<EMAIL_1>) or fake (consistent realistic substitutes)"),
    ("DISTILLERY_DEDUPE_THRESHOLD", "0.85", "Jaccard similarity at which an event is a near-duplicate"),
    ("DISTILLERY_DEDUPE_NUM_PERM", "256", "MinHash values per signature (256 meets precision and recall >= 0.95 at the 0.85 threshold; 128 is ~1.7x cheaper at precision ~0.94)"),
    ("DISTILLERY_DEDUPE_MAX_SIGNATURES", "1000000", "dedupe state bound (oldest evicted first)"),
    ("DISTILLERY_DEDUPE_MAX_AGE_DAYS", "30", "signatures older than this are evicted (0 = no age limit)"),
    ("DISTILLERY_CLUSTER_FEATURIZER", "hashed", "hashed: structure + hashed terms (agent/tool traffic: same quality, ~40x faster); minilm: the MiniLM sentence encoder (free text)"),
    ("DISTILLERY_CLUSTER_THRESHOLD", "0 (model default: 0.65 with MiniLM, 0.6 hashed)", "cosine similarity an event needs to a task cluster's centre to join it (lower: fewer, broader clusters; docs/clustering.md)"),
    ("DISTILLERY_METRICS_WINDOW_SECONDS", "60", "tumbling metrics window"),
    ("DISTILLERY_METRICS_GRACE_SECONDS", "120", "late events within this grace period still update their window"),
    ("DISTILLERY_POLICY_MIN_EXAMPLES", "200", "curated examples a cluster needs before a retrain"),
    ("DISTILLERY_POLICY_MIN_CALLS_PER_DAY", "100", "traffic a cluster needs before a retrain"),
    ("DISTILLERY_POLICY_MIN_REGRET_PCT", "20", "baseline regret (%) a cluster needs before a retrain"),
    ("DISTILLERY_POLICY_PERIOD_SECONDS", "86400", "at most one open retrain command per cluster per period"),
    ("DISTILLERY_DECIDE_EVERY_SECONDS", "30", "how often the decision agent reads the ledger and applies the retrain policy"),
    ("DISTILLERY_SERVE_PORT", "8080", "HTTP port of `distillery serve`"),
    ("DISTILLERY_UPSTREAM_URL", "(unset)", "OpenAI-compatible upstream LLM base URL for `distillery serve`"),
    ("DISTILLERY_UPSTREAM_API_KEY", "(unset)", "bearer token for the upstream"),
    ("DISTILLERY_SHADOW_SAMPLE_RATE", "1.0", "share of a cluster's requests a shadow adapter also answers"),
    ("DISTILLERY_MAX_LOADED_ADAPTERS", "8", "LRU cap on adapters loaded in one serving process"),
    ("DISTILLERY_BASE_MODEL", "(the shipped tiny fixture)", "local Hugging Face causal-LM directory used as base by trainer and serving"),
    ("DISTILLERY_UPSTREAM_MODEL", "gpt-4o", "upstream model used when a client names none (or 'auto')"),
    ("DISTILLERY_SERVE_MAX_NEW_TOKENS", "128", "cap on the length of a specialist's answer"),
    ("DISTILLERY_SHADOW_MAX_IN_FLIGHT", "2", "shadow calls running at once per serving replica; more are dropped, never queued"),
    ("DISTILLERY_ROUTER_QUALITY_SLA", "free=0.85,standard=0.92,enterprise=0.97", "per tenant tier, the success rate (lower confidence bound) a specialist needs before the router sends it traffic"),
    ("DISTILLERY_PROMOTION_THRESHOLDS", "(seed defaults)", "e.g. min_shadow_calls=300,min_format_compliance=0.98,max_escalation_rate=0.05 (see docs/serving.md)"),
    ("DISTILLERY_SERVE_FAULTS", "(unset)", "DEMO/TEST ONLY: 'on' enables POST /admin/faults; 'adapter_id=rate' corrupts that adapter's answers"),
    ("DISTILLERY_LOG_LEVEL", "info", "debug, info, warning or error"),
    ("DISTILLERY_TRAINER_MAX_ATTEMPTS", "3", "attempts a crashing retrain job gets before it is marked failed"),
    ("DISTILLERY_GATE_MIN_GAIN", "0.10", "exact-match gain over the base an adapter needs to be shadowed"),
    ("DISTILLERY_GATE_MIN_FORMAT", "0.90", "share of well-formed answers an adapter needs to be shadowed"),
]
