"""The trainer service on the real stack: a Tansu broker, aiokafka, the tiny base, a local
artifact store. A RetrainCommand yields a signed adapter, a `trained` event, a `registry`
candidate and a `shadow` PromoteCommand; the same command again (also after a restart)
trains nothing."""
from __future__ import annotations

import asyncio
import time

import pytest

from distillery.settings import Settings, Topics
from ops.local_stack import ensure_topics, topic_plan
from ops.workload import make_split
from schemas.codec import default_codec
from schemas.manifest import verify, verify_keys_from_settings
from trainers.dataset import write_snapshot
from trainers.fixture import TINY_BASE_NAME
from trainers.service import GROUP_ID, TrainerService

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTPUT_TOPICS = (Topics.TRAINED, Topics.REGISTRY, Topics.PROMOTE, Topics.TRAINING_PROGRESS)
SUBJECT = {Topics.TRAINED: "trained-value", Topics.REGISTRY: "registry-value", Topics.PROMOTE: "promote-value",
           Topics.TRAINING_PROGRESS: "training.progress-value"}


def retrain_command(tmp_path) -> dict:
    train, held = make_split("user_admin", 768, 40, seed=11)
    rows = [{"prompt": e.prompt, "response": e.answer, "split": "train"} for e in train]
    rows += [{"prompt": e.prompt, "response": e.answer, "split": "eval"} for e in held]
    uri = str(tmp_path / "snapshot.jsonl")
    return {
        "command_id": "retrain-c5-it", "ts": int(time.time() * 1000), "cluster_id": 5, "base_model": TINY_BASE_NAME,
        "dataset_uri": uri, "dataset_sha256": write_snapshot(uri, rows), "train_examples": len(train),
        "eval_examples": len(held), "method": "auto", "lora_r": 0, "lora_alpha": 0, "lora_dropout": 0.05,
        "target_modules": [], "epochs": 4.0, "learning_rate": 0.0, "trigger": "manual",
        "evidence": {"regret_pct": 42.0}, "reason": "integration test",
    }


async def produce(bootstrap: str, command: dict) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.RETRAIN, default_codec().encode("retrain-value", command),
                                     key=command["command_id"].encode())
    finally:
        await producer.stop()


async def committed_offset(bootstrap: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP_ID, enable_auto_commit=False)
    await probe.start()
    try:
        return (await probe.committed(TopicPartition(Topics.RETRAIN, 0))) or 0
    finally:
        await probe.stop()


async def wait_committed(bootstrap: str, offset: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await committed_offset(bootstrap) < offset:
        assert time.monotonic() < deadline, f"the trainer did not commit offset {offset} within {timeout}s"
        await asyncio.sleep(0.5)


async def read_outputs(bootstrap: str) -> dict[str, list[dict]]:
    """Everything on the output topics so far (their high watermark bounds the read)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    codec = default_codec()
    out: dict[str, list[dict]] = {t: [] for t in OUTPUT_TOPICS}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in OUTPUT_TOPICS for p in (consumer.partitions_for_topic(t) or {0})]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for tp, msgs in batch.items():
                out[tp.topic] += [codec.decode(m.value, SUBJECT[tp.topic])[0] for m in msgs]
    finally:
        await consumer.stop()
    return out


async def scenario(tmp_path, bootstrap: str) -> None:
    settings = Settings.from_env({"DISTILLERY_HOME": str(tmp_path / "home"), "KAFKA_BOOTSTRAP": bootstrap,
                                  "DISTILLERY_PROFILE": "local"})
    await ensure_topics(bootstrap, topic_plan(settings))
    command = retrain_command(tmp_path)

    async def start() -> tuple[TrainerService, asyncio.Event, asyncio.Task]:
        svc, stop, ready = TrainerService(settings), asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(svc.run(stop, ready))
        await asyncio.wait_for(ready.wait(), 30)
        return svc, stop, task

    svc, stop, task = await start()
    await produce(bootstrap, command)
    await wait_committed(bootstrap, 1, timeout=240)
    assert svc.stats["trained"] == 1 and svc.stats["failed"] == 0

    out = await read_outputs(bootstrap)
    [trained] = out[Topics.TRAINED]
    print("trained:", {k: round(v, 3) for k, v in trained["metrics"].items()})
    assert trained["status"] == "succeeded" and trained["command_id"] == command["command_id"]
    assert trained["gate_passed"] is True, trained["reason"]
    assert trained["metrics"]["adapter_exact_match"] >= trained["metrics"]["base_exact_match"] + settings.gate_min_gain
    [registered] = out[Topics.REGISTRY]
    assert (registered["model_id"], registered["state"], registered["kind"]) == (trained["adapter_id"], "candidate", "adapter")
    [promote] = out[Topics.PROMOTE]
    assert promote["action"] == "shadow" and promote["adapter_id"] == trained["adapter_id"]
    assert promote["manifest_uri"] == trained["manifest_uri"] and promote["cluster_id"] == 5
    phases = [p["phase"] for p in out[Topics.TRAINING_PROGRESS]]
    assert phases[0] == "loading" and "training" in phases and phases[-1] == "done"
    steps = [p for p in out[Topics.TRAINING_PROGRESS] if p["phase"] == "training"]
    assert steps[-1]["step"] == steps[-1]["total_steps"] and steps[-1]["tokens_per_s"] > 0

    # The adapter in the artifact store verifies against the manifest and the node's key.
    adapter_dir = settings.home / "artifacts" / "adapters" / trained["adapter_id"]
    manifest = verify(trained["manifest_uri"], adapter_dir, verify_keys_from_settings(settings))
    assert manifest["dataset"]["sha256"] == command["dataset_sha256"]

    # Redelivery: the same command again trains nothing, here and after a restart.
    await produce(bootstrap, command)
    await wait_committed(bootstrap, 2, timeout=60)
    assert svc.stats["trained"] == 1 and svc.stats["skipped"] == 1
    stop.set()
    await asyncio.wait_for(task, 30)

    svc2, stop2, task2 = await start()
    await produce(bootstrap, command)
    await wait_committed(bootstrap, 3, timeout=60)
    assert svc2.stats["trained"] == 0 and svc2.stats["skipped"] == 1

    # A snapshot that does not match its hash fails at once, with the reason, and is not retried.
    bad = {**command, "command_id": "retrain-c5-bad", "dataset_sha256": "0" * 64}
    await produce(bootstrap, bad)
    await wait_committed(bootstrap, 4, timeout=60)
    assert svc2.stats["failed"] == 1 and svc2.stats["trained"] == 0
    stop2.set()
    await asyncio.wait_for(task2, 30)

    again = await read_outputs(bootstrap)
    assert len(again[Topics.PROMOTE]) == 1
    ok, failed = again[Topics.TRAINED]
    assert ok["command_id"] == command["command_id"]
    assert failed["status"] == "failed" and failed["attempt"] == 1 and "sha256 mismatch" in failed["reason"]
    assert [r["state"] for r in again[Topics.REGISTRY]] == ["candidate", "failed"]


def test_retrain_command_trains_once_and_requests_a_shadow_trial(tmp_path, broker):
    asyncio.run(scenario(tmp_path, broker.bootstrap))
