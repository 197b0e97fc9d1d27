"""Ingest throughput: events/s from `ask` to rows visible in ClickHouse, through the whole worker
(decode, price, redact, dedupe, cluster, sink), beside the raw consume rate of the same broker
with the same client library (aiokafka, which Faust uses), measured in the same run."""
from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from distillery.settings import Topics
from ops.local_stack import TansuBroker, ensure_topics


def _events(n: int, size: int = 1024) -> list[bytes]:
    """~1 KB JSON events with realistic variety (unique prompts, so nothing is skipped)."""
    from tests.support.events import make_events

    out = []
    for e in make_events(n, seed=7, prefix="bench"):
        pad = size - len(json.dumps(e))
        if pad > 0:
            e["response"] += " " + " ".join(uuid.uuid4().hex[:8] for _ in range(pad // 9))
        out.append(json.dumps(e).encode())
    return out


def _produce(bootstrap: str, topic: str, payloads: list[bytes]) -> float:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.num.messages": 10000})
    start = time.perf_counter()
    for p in payloads:
        while True:
            try:
                producer.produce(topic, value=p)
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(120)
    return time.perf_counter() - start


async def _raw_consume(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    seen, start = 0, None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            if batch and start is None:
                start = time.perf_counter()
            for records in batch.values():
                seen += sum(1 for r in records if r.value is not None)
        return time.perf_counter() - start
    finally:
        await consumer.stop()


def main(quick: bool = False) -> dict:
    from tests.support.stack import Stack

    n = 5_000 if quick else 50_000
    payloads = _events(n)
    with TansuBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(ensure_topics(broker.bootstrap, {"raw.bench": (4, {})}))
        _produce(broker.bootstrap, "raw.bench", payloads)
        raw_s = asyncio.run(_raw_consume(broker.bootstrap, "raw.bench", n))
        raw_rate = n / raw_s

        stack = Stack(Path(tmp) / "home", broker)
        stack.start_worker()
        try:
            stack.client(timeout=180)
            # warm-up: the first batch pays model loading and group joins
            _produce(broker.bootstrap, Topics.ASK, _events(200, 512)[:200])
            stack.wait_for("SELECT count() FROM slm_observation_raw", lambda v: v >= 200, timeout=300, what="warm-up")
            base = stack.scalar("SELECT count() FROM slm_observation_raw")
            start = time.perf_counter()
            _produce(broker.bootstrap, Topics.ASK, payloads)
            stack.wait_for("SELECT count() FROM slm_observation_raw", lambda v: v >= base + n, timeout=1800,
                           what=f"{n} rows")
            ingest_s = time.perf_counter() - start
        finally:
            stack.stop()
    ingest_rate = n / ingest_s
    result = {"events": n, "raw_consume_events_per_s": round(raw_rate), "ingest_events_per_s": round(ingest_rate),
              "ratio_ingest_to_raw_consume": round(ingest_rate / raw_rate, 4), "target_ratio": 0.5}
    print(f"raw consume (aiokafka, same broker): {raw_rate:,.0f} ev/s")
    print(f"ingest ask -> ClickHouse rows (full worker): {ingest_rate:,.0f} ev/s")
    print(f"ratio: {ingest_rate / raw_rate:.3f} (target >= 0.5)")
    return result


if __name__ == "__main__":
    import sys
    main(quick="--quick" in sys.argv)
