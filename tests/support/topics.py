"""Publish to and read from the real broker in integration tests: what a service or an on-call
consumer does, with plain Kafka clients (never through the worker)."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Callable

from confluent_kafka import Producer

from distillery.settings import Topics
from schemas.codec import default_codec


def publish_events(bootstrap: str, events: list[dict], topic: str = Topics.ASK) -> None:
    """Events as JSON on `ask`, as a service would publish them; waits until all are acked."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for e in events:
        payload = json.dumps(e).encode()
        while True:
            try:
                producer.produce(topic, value=payload)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0, "some events were not acknowledged by the broker"


async def _read(bootstrap: str, topic: str, idle_ms: int) -> list[tuple[bytes | None, bytes]]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms, max_records=5000)
            if not batch:
                break
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return out


def read_topic(bootstrap: str, topic: str, subject: str | None = None, idle_ms: int = 2000) -> list[dict]:
    """Every record on `topic` from the beginning (stops after `idle_ms` without a record),
    decoded with the project's codec under `subject` (default: "<topic>-value")."""
    codec = default_codec()
    raw = asyncio.run(_read(bootstrap, topic, idle_ms))
    return [codec.decode(value, subject or f"{topic}-value")[0] for _, value in raw]


def wait_for_records(bootstrap: str, topic: str, predicate: Callable[[list[dict]], bool], timeout: float,
                     what: str = "", worker=None, subject: str | None = None) -> list[dict]:
    """Re-read `topic` until predicate(all records) holds; fails with the last records seen."""
    deadline = time.monotonic() + timeout
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = read_topic(bootstrap, topic, subject, idle_ms=1000)
        if predicate(records):
            return records
        if worker is not None and not worker.alive():
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        time.sleep(1.0)
    tail = worker.log_tail() if worker is not None else ""
    raise AssertionError(f"timed out waiting for {what or topic}: {len(records)} records, last {records[-3:]!r}\n{tail}")
