"""Ingest throughput: events/s from `ask` to rows visible in ClickHouse, through the whole worker
(decode, price, redact, dedupe, cluster, sink), beside the raw consume rate of the same broker,
measured in the same run on the same topic.

Baselines (what "raw consume" means here): a plain consumer assigned every partition of `ask`
directly (no group join), reading every message from the beginning and touching its bytes, timed
from the first fetch to the last message. aiokafka is the client Faust uses, so its rate is the
figure of the issue; confluent-kafka (librdkafka) is printed as a second reference. Both read the
same messages the worker ingested (warm-up + measured run), after the worker has stopped, so the
two cores are not shared with it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from distillery.settings import Topics
from ops.local_stack import TansuBroker

WARMUP = 200


def _events(n: int, size: int = 1024, prefix: str = "bench", seed: int = 7) -> list[bytes]:
    """~1 KB JSON events with realistic variety (unique prompts, so nothing is skipped)."""
    from tests.support.events import make_events

    out = []
    for e in make_events(n, seed=seed, prefix=prefix):
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


async def _raw_consume_aiokafka(bootstrap: str, topic: str, expected: int) -> tuple[int, int, float]:
    """Read every message of `topic` from the beginning: (messages, value bytes, seconds)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        await consumer.topics()  # loads metadata; partitions_for_topic() reads it (a plain set)
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise RuntimeError(f"topic {topic} has no partitions")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = size = 0
        start = time.perf_counter()
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=5000, max_records=10_000)
            if not batch:
                raise RuntimeError(f"aiokafka raw consume stalled at {seen}/{expected} messages")
            for records in batch.values():
                for record in records:
                    seen += 1
                    size += len(record.value or b"")
        return seen, size, time.perf_counter() - start
    finally:
        await consumer.stop()


def _raw_consume_confluent(bootstrap: str, topic: str, expected: int) -> tuple[int, int, float]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10)
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])  # 0 = first offset
        seen = size = 0
        start = time.perf_counter()
        while seen < expected:
            # ask for no more than remain: consume() waits for the full count or the timeout
            messages = consumer.consume(min(10_000, expected - seen), timeout=5.0)
            if not messages:
                raise RuntimeError(f"confluent-kafka raw consume stalled at {seen}/{expected} messages")
            for m in messages:
                if m.error():
                    continue
                seen += 1
                size += len(m.value() or b"")
        return seen, size, time.perf_counter() - start
    finally:
        consumer.close()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants so far (Linux /proc); the
    worker's CPU per event is a figure that contention on a shared machine distorts little."""
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def _wait_rows(stack, at_least: int, timeout: float, every_s: float = 1.0) -> None:
    """Poll the worker's query interface once a second (each count() costs the worker a little
    CPU, so the harness polls sparingly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if stack.scalar("SELECT count() FROM slm_observation_raw") >= at_least:
                return
        except Exception:
            if not stack.worker.alive():
                raise RuntimeError(f"worker exited:\n{stack.worker.log_tail()}")
        time.sleep(every_s)
    raise TimeoutError(f"fewer than {at_least} rows after {timeout:.0f}s:\n{stack.worker.log_tail()}")


def _median_rate(runs: list[tuple[int, int, float]]) -> float:
    return statistics.median(n / s for n, _, s in runs)


def main(quick: bool = False) -> dict:
    from tests.support.stack import Stack

    n = 5_000 if quick else 50_000
    # the client retries while the worker's query interface comes up; those retries are not news
    logging.getLogger("clickhouse_connect").setLevel(logging.ERROR)
    payloads = _events(n)
    with TansuBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp) / "home", broker)  # creates every topic as the worker expects
        stack.start_worker()
        try:
            stack.client(timeout=180)
            # warm-up: the first batch pays model loading and group joins
            _produce(broker.bootstrap, Topics.ASK, _events(WARMUP, 512, prefix="warmup", seed=8))
            _wait_rows(stack, WARMUP, timeout=300)
            base = stack.scalar("SELECT count() FROM slm_observation_raw")
            cpu_before = _cpu_seconds(stack.worker.proc.pid)
            start = time.perf_counter()
            _produce(broker.bootstrap, Topics.ASK, payloads)
            _wait_rows(stack, base + n, timeout=1800)
            ingest_s = time.perf_counter() - start
            worker_cpu_s = _cpu_seconds(stack.worker.proc.pid) - cpu_before
        finally:
            stack.stop()
        # the same topic the worker consumed, every message of it, with the worker stopped
        total = WARMUP + n
        aio = [asyncio.run(_raw_consume_aiokafka(broker.bootstrap, Topics.ASK, total)) for _ in range(3)]
        rdk = [_raw_consume_confluent(broker.bootstrap, Topics.ASK, total) for _ in range(3)]
    for runs, name in ((aio, "aiokafka"), (rdk, "confluent-kafka")):
        if any(seen != total for seen, _, _ in runs):
            raise RuntimeError(f"{name} read {[r[0] for r in runs]} messages, expected {total}")
    raw_rate, rdk_rate = _median_rate(aio), _median_rate(rdk)
    ingest_rate = n / ingest_s
    result = {"events": n, "raw_consume_aiokafka_events_per_s": round(raw_rate),
              "raw_consume_confluent_events_per_s": round(rdk_rate), "ingest_events_per_s": round(ingest_rate),
              "ingest_seconds": round(ingest_s, 2), "ratio_ingest_to_raw_consume": round(ingest_rate / raw_rate, 4),
              "ratio_ingest_to_confluent_consume": round(ingest_rate / rdk_rate, 4), "target_ratio": 0.5,
              "mean_message_bytes": round(aio[0][1] / aio[0][0]),
              "worker_cpu_ms_per_event": round(1000 * worker_cpu_s / n, 3),
              "worker_cores_used": round(worker_cpu_s / ingest_s, 2)}
    print(f"raw consume of `{Topics.ASK}` ({total:,} messages, median of 3): aiokafka {raw_rate:,.0f} ev/s, "
          f"confluent-kafka {rdk_rate:,.0f} ev/s")
    print(f"ingest ask -> ClickHouse rows (full worker): {ingest_rate:,.0f} ev/s ({n:,} events in {ingest_s:.1f}s)")
    print(f"worker CPU (all its processes): {1000 * worker_cpu_s / n:.2f} ms/event, {worker_cpu_s / ingest_s:.2f} cores busy")
    print(f"ratio ingest / raw consume (aiokafka): {ingest_rate / raw_rate:.4f} (target >= 0.5); "
          f"vs confluent-kafka: {ingest_rate / rdk_rate:.4f}")
    return result


if __name__ == "__main__":
    import sys
    main(quick="--quick" in sys.argv)
