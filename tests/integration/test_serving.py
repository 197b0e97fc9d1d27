"""The serving tier on the real stack: a Tansu broker (aiokafka, Avro on every topic), the
adapter registry on the tiny base, the replay upstream, HTTP on loopback.

- a promoted adapter serves its cluster's next requests (events on `ask` with GPU-seconds);
- a tampered adapter is refused: a demotion event and a demote command;
- format errors on served traffic roll back to the previous adapter and emit the event;
  a restarted replica rebuilds the same assignments from the `promote` topic.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from distillery.settings import Settings, Topics
from ops.local_stack import ensure_topics, topic_plan
from schemas import manifest as manifests
from schemas.codec import default_codec
from serving.app import ROUTE_HEADER, SERVICE_KEY, create_app
from serving.devtools import build_signed_adapter, promote_command, tamper
from serving.replay_upstream import ReplayBook, Recording, create_replay_app
from serving.routing import baseline_route

pytestmark = [pytest.mark.integration]

KEY = "integration-signing-key-0123456789"
PROMPT = "turn on the lights in the kitchen"
ANSWER = '{"device": "lights", "room": "kitchen", "state": "on"}'   # what the shipped tiny base answers too


def cluster_snapshot() -> tuple[dict[str, Any], int]:
    """A real clustering model (streams.clustering, no text encoder to keep it fast) trained on
    two task families; its snapshot record and the cluster PROMPT falls in."""
    from streams.clustering import ClusterItem, ClustererConfig, FeaturizerConfig, TaskClusterer

    model = TaskClusterer(ClustererConfig(min_size=2), FeaturizerConfig(text="none"))
    notes = [f"turn on the lights in the {r}" for r in ("kitchen", "garage", "office", "hallway", "attic", "patio", "bedroom")]
    dns = [f"create a dns record for host{i}.example.com pointing to 10.0.0.{i}" for i in range(8)]
    model.learn_batch([ClusterItem(f"e{i}", p) for i, p in enumerate(notes + dns)])
    cluster = model.predict_one(PROMPT)
    assert cluster is not None and cluster != model.predict_one(dns[0])
    return model.snapshot_record(ts_ms=int(time.time() * 1000)), cluster


class Harness:
    def __init__(self, tmp: Path, bootstrap: str):
        self.tmp, self.bootstrap = tmp, bootstrap
        self.codec = default_codec()
        self.settings = Settings.from_env({
            "DISTILLERY_HOME": str(tmp / "home"), "KAFKA_BOOTSTRAP": bootstrap, "DISTILLERY_PROFILE": "local",
            "DISTILLERY_SIGNING_KEY": KEY, "DISTILLERY_SERVE_MAX_NEW_TOKENS": "40",
            "DISTILLERY_MAX_LOADED_ADAPTERS": "2", "DISTILLERY_SERVE_FAULTS": "on",
        })
        self.producer = None
        self.upstream: TestServer | None = None
        self.clients: list[TestClient] = []

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        await ensure_topics(self.bootstrap, topic_plan(self.settings))
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await self.producer.start()
        self.upstream = TestServer(create_replay_app(ReplayBook([Recording(PROMPT, ANSWER, "gpt-4o", None, 400.0, 12, 11)])))
        await self.upstream.start_server()
        snapshot, self.cluster = cluster_snapshot()
        self.snapshot_version = snapshot["model_version"]
        await self.send(Topics.CLUSTER_SNAPSHOT, "snapshot", snapshot)

    async def replica(self, base: Path) -> TestClient:
        settings = self.settings.with_overrides(upstream_url=str(self.upstream.make_url("/v1")), base_model_path=base)
        app = create_app(settings, router=baseline_route,
                         replica_id=f"it-{len(self.clients)}")
        client = TestClient(TestServer(app))
        await client.start_server()          # runs the service start: catch-up on promote, base model
        self.clients.append(client)
        return client

    async def send(self, topic: str, key: str, record: dict[str, Any]) -> None:
        await self.producer.send_and_wait(topic, self.codec.encode(f"{topic}-value", record), key=key.encode())

    async def read(self, topic: str) -> list[dict[str, Any]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            idle = 0
            while idle < 2:
                batch = await consumer.getmany(timeout_ms=300)
                idle = 0 if batch else idle + 1
                for _, msgs in batch.items():
                    out += [self.codec.decode(m.value, f"{topic}-value")[0] for m in msgs]
        finally:
            await consumer.stop()
        return out

    async def stop(self) -> None:
        for c in self.clients:
            await c.close()
        if self.upstream:
            await self.upstream.close()
        if self.producer:
            await self.producer.stop()


async def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def chat(client: TestClient) -> tuple[dict, dict]:
    resp = await client.post("/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": PROMPT}]})
    assert resp.status == 200, await resp.text()
    return await resp.json(), json.loads(resp.headers[ROUTE_HEADER])


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """On the shipped tiny base: good-a and good-b keep the base's behaviour (LoRA B = 0), which
    answers PROMPT like the recorded frontier answer; evil is signed, then tampered with."""
    from trainers.fixture import TINY_BASE_DIR

    assert (TINY_BASE_DIR / "config.json").is_file(), "build the fixture: python -m trainers.fixture.build_tiny_base"
    root = tmp_path_factory.mktemp("serving-it")
    signer = manifests.hmac_signer(KEY.encode())
    made = {name: build_signed_adapter(TINY_BASE_DIR, root / name, name, signer, seed=i, random_weights=(name == "evil"),
                                       metrics={"adapter_exact_match": 0.97, "eval_examples": 500.0})
            for i, name in enumerate(["good-a", "good-b", "evil"])}
    tamper(root / "evil")
    return TINY_BASE_DIR, {k: str(v) for k, v in made.items()}


def run_scenario(tmp_path, broker, body) -> None:
    async def main():
        h = Harness(tmp_path, broker.bootstrap)
        await h.start()
        try:
            await body(h)
        finally:
            await h.stop()
    asyncio.run(main())


def test_promoted_adapter_serves_its_cluster(tmp_path, broker, adapters):
    base, uris = adapters

    async def body(h: Harness):
        client = await h.replica(base)
        service = client.server.app[SERVICE_KEY]
        assert service.assigner.version == h.snapshot_version   # read from the compacted topic
        answer, route = await chat(client)
        assert answer["model"] == "gpt-4o" and route["cluster_id"] == h.cluster
        await h.send(Topics.PROMOTE, str(h.cluster), promote_command("it-p1", "promote", "good-a", h.cluster, uris["good-a"]))
        await eventually(lambda: service.registry.is_loaded("good-a"), what="good-a loaded")
        answer, route = await chat(client)
        assert answer["model"] == "distillery/good-a" and route["served_by"] == "specialist"
        assert json.loads(answer["choices"][0]["message"]["content"]) == json.loads(ANSWER)
        events = await eventually(lambda: _served(h, "distillery/good-a"), what="the specialist's event on ask")
        assert events[0]["gpu_seconds"] > 0 and events[0]["prompt"] == PROMPT
        # the same command again changes nothing
        await h.send(Topics.PROMOTE, str(h.cluster), promote_command("it-p1", "promote", "good-a", h.cluster, uris["good-a"]))
        await eventually(lambda: service.metrics.commands.value(action="promote", result="duplicate") == 1, what="duplicate seen")
    run_scenario(tmp_path, broker, body)


async def _served(h: Harness, model: str):
    return [e for e in await h.read(Topics.ASK) if e["model"] == model]


def test_tampered_adapter_is_refused_and_demoted(tmp_path, broker, adapters):
    base, uris = adapters

    async def body(h: Harness):
        client = await h.replica(base)
        service = client.server.app[SERVICE_KEY]
        await h.send(Topics.PROMOTE, str(h.cluster), promote_command("it-evil", "promote", "evil", h.cluster, uris["evil"]))
        demotions = await eventually(lambda: h.read(Topics.DEMOTION), what="a demotion event")
        assert demotions[0]["adapter_id"] == "evil" and demotions[0]["what_happened"].startswith("refused_integrity")
        assert "adapter_model.safetensors" in demotions[0]["what_happened"]
        commands = await eventually(lambda: _actions(h, "demote"), what="the demote command")
        assert commands[0]["adapter_id"] == "evil" and commands[0]["actor"].startswith("serving:")
        await eventually(lambda: service.assignments.adapters["evil"].state == "demoted", what="demote applied")
        assert not service.registry.is_loaded("evil")
        answer, _ = await chat(client)
        assert answer["model"] == "gpt-4o"
    run_scenario(tmp_path, broker, body)


async def _actions(h: Harness, action: str):
    return [c for c in await h.read(Topics.PROMOTE) if c["action"] == action]


def test_format_errors_roll_back_and_a_new_replica_agrees(tmp_path, broker, adapters):
    base, uris = adapters

    async def body(h: Harness):
        client = await h.replica(base)
        service = client.server.app[SERVICE_KEY]
        await h.send(Topics.PROMOTE, str(h.cluster), promote_command("it-a", "promote", "good-a", h.cluster, uris["good-a"]))
        await h.send(Topics.PROMOTE, str(h.cluster), promote_command("it-b", "promote", "good-b", h.cluster, uris["good-b"]))
        await eventually(lambda: service.assignments.active(h.cluster) == "good-b" and service.registry.is_loaded("good-b"),
                         what="good-b active")
        # DEMO/TEST fault injection: every answer of good-b comes back malformed
        resp = await client.post("/admin/faults", json={"adapter_id": "good-b", "format_error_rate": 1.0})
        assert resp.status == 200
        for _ in range(3):
            answer, route = await chat(client)
            assert answer["model"] == "gpt-4o" and route["escalated"] is True
        demotions = await eventually(lambda: h.read(Topics.DEMOTION), what="the demotion event")
        d = demotions[0]
        assert d["adapter_id"] == "good-b" and d["now_serving"] == "distillery/good-a"
        assert d["what_happened"].startswith("format_errors") and d["evidence"]["format_errors"] == 3.0
        rollbacks = await eventually(lambda: _actions(h, "rollback"), what="the rollback command")
        assert rollbacks[0]["rollback_to"] == "good-a" and d["demotion_id"] == "dem-" + rollbacks[0]["command_id"]
        await eventually(lambda: service.assignments.active(h.cluster) == "good-a", what="rollback applied")
        answer, _ = await chat(client)
        assert answer["model"] == "distillery/good-a"
        escalated = [e for e in await h.read(Topics.ASK) if e["outcome"] == "escalated"]
        assert len(escalated) == 3 and all(e["model"] == "distillery/good-b" for e in escalated)

        # a second replica rebuilds the same state from the log
        second = await h.replica(base)
        other = second.server.app[SERVICE_KEY]
        assert other.assignments.snapshot()["clusters"] == service.assignments.snapshot()["clusters"]
        assert other.registry.loaded == ["good-a"]
        answer, _ = await chat(second)
        assert answer["model"] == "distillery/good-a"
    run_scenario(tmp_path, broker, body)
