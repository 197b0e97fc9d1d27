"""Pure record builders for the ingest stage: an accepted InferenceEvent becomes an Observation
(priced, stamped, ready for redaction); a rejected message becomes a DeadLetter."""
from __future__ import annotations

import time
from typing import Any

from streams.pricing import PriceTable


def now_ms() -> int:
    return int(time.time() * 1000)


def observation_from_event(event: dict[str, Any], schema_id: int, prices: PriceTable, ingest_ts: int) -> dict[str, Any]:
    cost, source = prices.cost(event["model"], event["input_tokens"], event["output_tokens"],
                               event["latency_ms"], event.get("gpu_seconds"), event.get("cost_usd"))
    return {
        "event_id": event["event_id"],
        "ts": event["ts"],
        "ingest_ts": ingest_ts,
        "tenant": event["tenant"],
        "service": event["service"],
        "model": event["model"],
        "prompt": event["prompt"],
        "response": event["response"],
        "latency_ms": event["latency_ms"],
        "input_tokens": event["input_tokens"],
        "output_tokens": event["output_tokens"],
        "cost_usd": cost,
        "cost_source": source,
        "gpu_seconds": event.get("gpu_seconds"),
        "outcome": event["outcome"],
        "tool_calls": event.get("tool_calls"),
        "task_hint": event.get("task_hint"),
        "metadata": event.get("metadata") or {},
        "parent_event_id": event.get("parent_event_id"),
        "schema_id": schema_id,
        "pii_counts": {},
        "redaction_version": "",
        "duplicate_of": None,
        "dedupe_similarity": None,
        "cluster_id": None,
        "cluster_model_version": None,
    }


def dead_letter(topic: str, partition: int, offset: int, key: bytes | None, payload: bytes,
                reason: str, detail: str, ts: int) -> dict[str, Any]:
    return {
        "dlq_id": f"{topic}/{partition}/{offset}",
        "ts": ts,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "reason": reason,
        "detail": detail[:2000],
        "key": key,
        "payload": payload,
    }
