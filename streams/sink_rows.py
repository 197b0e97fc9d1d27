"""Pure mapping from topic records to ClickHouse rows, and from rows to Arrow batches.

ClickHouse is a materialised view of the topics: each topic maps to one or more tables whose
columns carry the record's field names. Derived columns (ingest time, dead-letter previews,
the serving assignment implied by a promote command) are computed here, at ingest.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pyarrow as pa

from distillery.settings import Topics

Row = dict[str, Any]
Transform = Callable[[Row, int], Iterable[Row]]

CURATED_COLUMNS = ("event_id", "ts", "ingest_ts", "tenant", "service", "model", "task_hint", "cluster_id",
                   "cluster_model_version", "prompt", "response", "tool_calls", "outcome", "cost_usd",
                   "latency_ms", "pii_counts", "redaction_version")


def _stamped(record: Row, now: int) -> Row:
    row = dict(record)
    row.setdefault("ingest_ts", now)
    return row


def observation_raw(record: Row, now: int) -> Iterable[Row]:
    yield _stamped(record, now)


def observation_curated(record: Row, now: int) -> Iterable[Row]:
    """Only first occurrences enter the training corpus."""
    if record.get("duplicate_of"):
        return
    row = _stamped(record, now)
    yield {c: row.get(c) for c in CURATED_COLUMNS}


def dead_letter_row(redact_preview: Callable[[str], str]) -> Transform:
    """The original bytes stay on ask.dlq; the ledger keeps size, hash and a redacted preview."""
    def transform(record: Row, now: int) -> Iterable[Row]:
        payload: bytes = record["payload"]
        preview = payload[:512].decode("utf-8", errors="replace")
        yield {
            "dlq_id": record["dlq_id"], "ts": record["ts"], "ingest_ts": now,
            "source_topic": record["source_topic"], "source_partition": record["source_partition"],
            "source_offset": record["source_offset"], "reason": record["reason"], "detail": redact_preview(record["detail"]),
            "payload_size": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "payload_preview": redact_preview(preview),
        }
    return transform


def promotion_audit(record: Row, now: int) -> Iterable[Row]:
    yield _stamped(record, now)


def cluster_assignment(record: Row, now: int) -> Iterable[Row]:
    """What serves the cluster after this command; shadowing changes nothing."""
    action = record["action"]
    if action == "shadow":
        return
    if action == "promote":
        serving, adapter, state = f"distillery/{record['adapter_id']}", record["adapter_id"], "active"
    else:  # demote / rollback: back to the previous adapter, or to the upstream LLM
        target = record.get("rollback_to")
        serving = f"distillery/{target}" if target else "upstream"
        adapter, state = target, ("active" if target else "upstream")
    yield {"cluster_id": record["cluster_id"], "ts": record["ts"], "ingest_ts": now, "serving_model": serving,
           "adapter_id": adapter, "state": state, "command_id": record["command_id"], "reason": record["reason"]}


_ADAPTER_STATE = {"shadow": "shadow", "promote": "active", "demote": "deprecated", "rollback": "deprecated"}


def registry_from_promote(record: Row, now: int) -> Iterable[Row]:
    """The lifecycle change a promote command implies, for model_registry."""
    base = {"ts": record["ts"], "ingest_ts": now, "kind": "adapter", "cluster_id": record["cluster_id"],
            "base_model": None, "manifest_sha256": None, "eval_scores": {}, "attributes": {}, "reason": record["reason"]}
    yield {**base, "model_id": record["adapter_id"], "state": _ADAPTER_STATE[record["action"]],
           "manifest_uri": record.get("manifest_uri")}
    if record["action"] in ("demote", "rollback") and record.get("rollback_to"):
        yield {**base, "model_id": record["rollback_to"], "state": "active", "manifest_uri": None}


def plain(record: Row, now: int) -> Iterable[Row]:
    yield _stamped(record, now)


@dataclass(frozen=True)
class Route:
    table: str
    transform: Transform


def routes(redact_preview: Callable[[str], str]) -> dict[str, tuple[str, list[Route]]]:
    """topic -> (schema subject, tables it feeds)."""
    return {
        Topics.CLUSTERED: ("observation-value", [Route("slm_observation_raw", observation_raw),
                                                 Route("slm_observation_curated", observation_curated)]),
        Topics.ASK_DLQ: ("ask.dlq-value", [Route("dead_letters", dead_letter_row(redact_preview))]),
        Topics.PROMOTE: ("promote-value", [Route("promotion_audit_log", promotion_audit),
                                           Route("cluster_model_assignment", cluster_assignment),
                                           Route("model_registry", registry_from_promote)]),
        Topics.RETRAIN: ("retrain-value", [Route("retrain_commands", plain)]),
        Topics.TRAINED: ("trained-value", [Route("training_runs", plain)]),
        Topics.REGISTRY: ("registry-value", [Route("model_registry", plain)]),
        Topics.METRICS: ("metrics-value", [Route("model_metrics_timeseries", plain)]),
        Topics.SHADOW_RESULTS: ("shadow.results-value", [Route("shadow_results", plain)]),
        Topics.DRIFT: ("drift-value", [Route("drift_events", plain)]),
        Topics.DEMOTION: ("demotion-value", [Route("demotion_events", plain)]),
        Topics.CLUSTER_LINEAGE: ("clusters.lineage-value", [Route("task_cluster_lineage", plain)]),
    }


# ---- Arrow conversion --------------------------------------------------------------------
_SIMPLE = {
    "String": pa.string(), "Float64": pa.float64(), "Float32": pa.float32(), "Int32": pa.int32(),
    "Int64": pa.int64(), "UInt32": pa.uint32(), "UInt64": pa.uint64(), "UInt8": pa.uint8(), "Bool": pa.bool_(),
}


def arrow_type(ch_type: str) -> pa.DataType:
    t = ch_type.strip()
    for wrapper in ("Nullable(", "LowCardinality("):
        if t.startswith(wrapper):
            return arrow_type(t[len(wrapper):-1])
    if t in _SIMPLE:
        return _SIMPLE[t]
    if t.startswith("DateTime64("):
        return pa.timestamp("ms", tz="UTC")
    if t.startswith("Array("):
        return pa.list_(arrow_type(t[6:-1]))
    if t.startswith("Map("):
        key, value = _split_args(t[4:-1])
        return pa.map_(arrow_type(key), arrow_type(value))
    raise ValueError(f"no Arrow mapping for ClickHouse type {ch_type}")


def _split_args(s: str) -> tuple[str, str]:
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            return s[:i], s[i + 1:]
    raise ValueError(s)


def to_arrow(rows: list[Row], columns: list[tuple[str, str]]) -> pa.Table:
    """Rows -> an Arrow table shaped like the ClickHouse table (columns: (name, type))."""
    arrays = []
    for name, ch_type in columns:
        values = [r.get(name) for r in rows]
        if ch_type.startswith("Map("):
            values = [v if v is not None else {} for v in values]
        elif ch_type.startswith("Array("):
            values = [v if v is not None else [] for v in values]
        arrays.append(pa.array(values, type=arrow_type(ch_type)))
    return pa.Table.from_arrays(arrays, names=[n for n, _ in columns])


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name
