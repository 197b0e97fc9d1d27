"""Backbone on the real stack: Tansu broker, `distillery worker`, embedded chDB read through the
worker's ClickHouse HTTP query interface."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from confluent_kafka import Producer

from distillery.settings import Topics
from schemas.codec import default_codec
from tests.support.events import make_events, malformed

pytestmark = pytest.mark.integration


def produce_json_aiokafka(bootstrap: str, payloads: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(Topics.ASK, value=p) for p in payloads]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
    asyncio.run(run())


def produce_confluent(bootstrap: str, payloads: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for p in payloads:
        while True:
            try:
                producer.produce(Topics.ASK, value=p)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def avro_payloads(events: list[dict]) -> list[bytes]:
    codec = default_codec()
    out = []
    for e in events:
        e = dict(e)
        e.pop("gpu_seconds", None)
        out.append(codec.encode("ask-value", e, schema_id=1))  # v1 writers still read as v2
    return out


def test_json_and_avro_events_land_exactly_once_and_bad_ones_are_dead_lettered(stack):
    events = make_events(10_000, seed=1)
    json_half = [json.dumps(e).encode() for e in events[:5000]]
    avro_half = avro_payloads(events[5000:])
    bad = malformed(500, stack.settings.max_prompt_bytes)
    # interleave: one bad message every ten good ones, in both producers
    mixed_json = []
    for i, p in enumerate(json_half):
        mixed_json.append(p)
        if i % 20 == 0 and len(mixed_json) // 21 < 250:
            mixed_json.append(bad[i // 20][0])
    n_bad_json = len(mixed_json) - len(json_half)
    mixed_avro = []
    for i, p in enumerate(avro_half):
        mixed_avro.append(p)
        if i % 20 == 0 and (len(mixed_avro) - i - 1) < 500 - n_bad_json:
            mixed_avro.append(bad[n_bad_json + i // 20][0])
    assert (len(mixed_json) - 5000) + (len(mixed_avro) - 5000) == 500

    stack.start_worker()
    produce_json_aiokafka(stack.broker.bootstrap, mixed_json)
    produce_confluent(stack.broker.bootstrap, mixed_avro)

    stack.wait_for("SELECT count() FROM observations", lambda v: v >= 10_000, timeout=480, what="10,000 observations")
    stack.wait_for("SELECT count() FROM dead_letters FINAL", lambda v: v >= 500, what="500 dead letters")
    time.sleep(2)  # anything extra would show up now
    assert stack.scalar("SELECT count() FROM observations") == 10_000
    assert stack.scalar("SELECT uniqExact(event_id) FROM observations") == 10_000
    assert stack.scalar("SELECT count() FROM dead_letters FINAL") == 500
    reasons = dict(stack.client().query("SELECT reason, count() FROM dead_letters FINAL GROUP BY reason").result_rows)
    assert set(reasons) >= {"invalid_utf8", "not_avro_or_json", "not_an_object", "empty_event_id", "missing_field",
                            "wrong_type", "unknown_schema_id", "prompt_too_large"}
    assert stack.scalar("SELECT countIf(detail = '') FROM dead_letters FINAL") == 0
    # cost is priced at ingest when absent, and never silently zero for a known model
    assert stack.scalar("SELECT countIf(cost_source = 'unpriced') FROM observations") == 0
    assert stack.scalar("SELECT countIf(cost_usd <= 0) FROM observations") == 0
    # every published event id is there
    ids = {r[0] for r in stack.client().query("SELECT event_id FROM observations").result_rows}
    assert ids == {e["event_id"] for e in events}


def test_worker_killed_mid_stream_still_shows_each_event_once(stack):
    events = make_events(6_000, seed=2)
    payloads = [json.dumps(e).encode() for e in events]
    stack.start_worker()
    stack.client()  # the worker is up
    produce_confluent(stack.broker.bootstrap, payloads[:3000])
    stack.wait_for("SELECT count() FROM observations", lambda v: v >= 500, what="some rows before the kill")
    produce_confluent(stack.broker.bootstrap, payloads[3000:])
    stack.worker.kill9()
    stack.start_worker()
    stack.wait_for("SELECT count() FROM observations", lambda v: v >= 6_000, timeout=480, what="all rows after restart")
    time.sleep(3)
    assert stack.scalar("SELECT count() FROM observations") == 6_000
    assert stack.scalar("SELECT uniqExact(event_id) FROM observations") == 6_000


def test_replaying_the_same_events_changes_nothing(stack):
    events = make_events(2_000, seed=3)
    payloads = [json.dumps(e).encode() for e in events]
    stack.start_worker()
    produce_confluent(stack.broker.bootstrap, payloads)
    stack.wait_for("SELECT count() FROM observations", lambda v: v >= 2_000, what="first pass")
    replay_started = int(time.time() * 1000)
    time.sleep(0.01)
    produce_confluent(stack.broker.bootstrap, payloads)  # a producer retry storm / replay
    # the replayed copies carry a newer ingest_ts, and they replace the first ones
    stack.wait_for(f"SELECT count() FROM observations WHERE toUnixTimestamp64Milli(ingest_ts) > {replay_started}",
                   lambda v: v >= 2_000, what="replayed rows stored")
    assert stack.scalar("SELECT count() FROM observations") == 2_000
    assert stack.scalar("SELECT uniqExact(event_id) FROM observations") == 2_000
