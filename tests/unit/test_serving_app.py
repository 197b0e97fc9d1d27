"""The serving app end to end in one process: real HTTP on loopback (aiohttp test server), the
replay upstream, the adapter registry on a tiny base, the in-process bus."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from distillery.settings import Settings, Topics  # noqa: E402
from schemas import manifest as manifests  # noqa: E402
from serving.adapters import AdapterRegistry  # noqa: E402
from serving.app import ROUTE_HEADER, ServingService, build_app  # noqa: E402
from serving.bus import MemoryBus  # noqa: E402
from serving.clusters import ClusterAssigner  # noqa: E402
from serving.devtools import build_signed_adapter, default_base_dir, promote_command, tamper  # noqa: E402
from serving.replay_upstream import ReplayBook, Recording, create_replay_app  # noqa: E402
from serving.router import Router  # noqa: E402
from serving.routing import RouterAdapter, baseline_route, default_router  # noqa: E402
from serving.upstream import Upstream  # noqa: E402

KEY = "unit-test-signing-key-0123456789"
TEXT_PROMPT = "summarise the meeting notes for Ada"          # cluster 1: plain-text answers
JSON_PROMPT = "turn on the lights in the kitchen"            # cluster 2: JSON answers


def cluster_snapshot() -> tuple[dict, dict[str, int]]:
    """The stream's clustering model (streams.clustering; no text encoder, to stay fast),
    trained on two task families: its snapshot record, and the cluster of each test prompt."""
    from streams.clustering import ClusterItem, ClustererConfig, FeaturizerConfig, TaskClusterer

    model = TaskClusterer(ClustererConfig(min_size=2), FeaturizerConfig(text="none"))
    names = ("Ada", "Ben", "Chloe", "Dev", "Ema", "Finn", "Gus", "Hana")
    rooms = ("kitchen", "garage", "office", "hallway", "attic", "patio", "bedroom", "basement")
    items = [f"summarise the meeting notes for {n}" for n in names] + [f"turn on the lights in the {r}" for r in rooms]
    model.learn_batch([ClusterItem(f"e{i}", p) for i, p in enumerate(items)])
    clusters = {p: model.predict_one(p) for p in (TEXT_PROMPT, JSON_PROMPT, "tell me a joke")}
    assert None not in (clusters[TEXT_PROMPT], clusters[JSON_PROMPT]) and clusters[TEXT_PROMPT] != clusters[JSON_PROMPT]
    return model.snapshot_record(ts_ms=1), clusters


SNAPSHOT, CLUSTERS = cluster_snapshot()
C_TEXT, C_JSON = CLUSTERS[TEXT_PROMPT], CLUSTERS[JSON_PROMPT]

RECORDINGS = [
    Recording(TEXT_PROMPT, "Ada met the team; the launch moves to May.", "gpt-4o", None, 400.0, 12, 11),
    Recording(JSON_PROMPT, '{"device": "lights", "room": "kitchen", "state": "on"}', "gpt-4o", None, 380.0, 9, 14),
    Recording("what is the weather", "Sunny.", "gpt-4o", None, 300.0, 5, 2),
]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    """On the shipped tiny base: spec-a and spec-c keep the base's behaviour (LoRA B = 0), which
    answers JSON_PROMPT exactly like the recorded frontier answer; spec-b has random weights
    and answers garbage."""
    from trainers.fixture import TINY_BASE_DIR

    assert (TINY_BASE_DIR / "config.json").is_file(), "build the fixture: python -m trainers.fixture.build_tiny_base"
    root = tmp_path_factory.mktemp("app")
    signer = manifests.hmac_signer(KEY.encode())
    # the held-out evaluation these adapters declare (the router needs evidence to pick a specialist)
    evaluated = {"adapter_exact_match": 0.97, "eval_examples": 500.0}
    uris = {name: str(build_signed_adapter(TINY_BASE_DIR, root / name, name, signer, seed=i, metrics=evaluated,
                                           random_weights=(name == "spec-b"),
                                           # strong enough to move a confident base's greedy answer
                                           weight_std=0.2 if name == "spec-b" else None))
            for i, name in enumerate(["spec-a", "spec-b", "spec-c"])}
    return TINY_BASE_DIR, uris, root


def settings_for(tmp: Path, **overrides) -> Settings:
    # GPU-seconds priced low: on a shared 2-core CPU the tiny model's wall time is noisy, and
    # the cost criterion is not what these tests are about
    prices = tmp / "prices.json"
    prices.write_text(json.dumps({"models": {"gpt-4o": {"input_per_1k": 0.0025, "output_per_1k": 0.010}},
                                  "patterns": [{"match": "distillery/*", "gpu_second": 0.000001}]}))
    s = Settings.from_env({"DISTILLERY_HOME": str(tmp), "DISTILLERY_SIGNING_KEY": KEY, "DISTILLERY_PRICE_TABLE": str(prices),
                           "DISTILLERY_SHADOW_SAMPLE_RATE": "1.0", "DISTILLERY_MAX_LOADED_ADAPTERS": "2",
                           "DISTILLERY_SERVE_MAX_NEW_TOKENS": "24"})
    return s.with_overrides(**overrides)


async def start(tmp: Path, base: Path | None, router=baseline_route, **overrides):
    upstream_server = TestServer(create_replay_app(ReplayBook(RECORDINGS)))
    await upstream_server.start_server()
    settings = settings_for(tmp, **overrides)
    bus = MemoryBus()
    await bus.publish(Topics.CLUSTER_SNAPSHOT, "snapshot", SNAPSHOT)
    registry = AdapterRegistry(base, manifests.VerifyKeys(hmac_key=KEY.encode()), max_loaded=2,
                               cache_dir=tmp / "cache") if base else None
    service = ServingService(settings, bus, registry=registry,
                             upstream=Upstream(str(upstream_server.make_url("/v1"))),
                             assigner=ClusterAssigner(), router=router, replica_id="test-replica")
    client = TestClient(TestServer(build_app(service)))
    await client.start_server()
    return client, service, bus, upstream_server


async def chat(client, prompt: str, stream: bool = False, **headers):
    return await client.post("/v1/chat/completions", json={"model": "auto", "stream": stream,
                                                          "messages": [{"role": "user", "content": prompt}]},
                             headers=headers)


def run(coro):
    return asyncio.run(coro)


def test_upstream_route_event_and_endpoints(tmp_path):
    async def main():
        client, service, bus, up = await start(tmp_path, None, router=default_router())
        try:
            resp = await chat(client, JSON_PROMPT, **{"x-distillery-tenant": "acme", "x-distillery-service": "home-agent"})
            assert resp.status == 200
            body = await resp.json()
            assert body["choices"][0]["message"]["content"] == RECORDINGS[1].response
            assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 14, "total_tokens": 23}
            route = json.loads(resp.headers[ROUTE_HEADER])
            assert route["cluster_id"] == C_JSON and route["primary_model"] == "gpt-4o" and route["served_by"] == "upstream"
            assert "gpt-4o (frontier)" in route["justification"] and route["expected_p95_latency_ms"] > 0
            event, = bus.records(Topics.ASK)
            assert (event["tenant"], event["service"], event["model"], event["prompt"]) == ("acme", "home-agent", "gpt-4o", JSON_PROMPT)
            assert event["response"] == RECORDINGS[1].response and event["gpu_seconds"] is None
            assert event["event_id"] == route["event_id"] and event["metadata"]["serve_cluster_id"] == str(C_JSON)
            # any prompt is answered, in whatever cluster the model puts it (None: no task cluster)
            resp = await chat(client, "tell me a joke")
            assert resp.status == 200 and json.loads(resp.headers[ROUTE_HEADER])["cluster_id"] == CLUSTERS["tell me a joke"]
            models = await (await client.get("/v1/models")).json()
            assert [m["id"] for m in models["data"]] == ["gpt-4o"]
            health = await client.get("/healthz")
            assert health.status == 200 and (await health.json())["cluster_snapshot_version"] == SNAPSHOT["model_version"]
            metrics = await (await client.get("/metrics")).text()
            assert 'distillery_serve_requests_total{route="upstream",status="200"} 2' in metrics
            assert f"distillery_cluster_snapshot_version {SNAPSHOT['model_version']}" in metrics
            bad = await client.post("/v1/chat/completions", json={"messages": []})
            assert bad.status == 400
        finally:
            await client.close()
            await up.close()
    run(main())


def test_streaming_relays_upstream_and_logs_the_whole_answer(tmp_path):
    async def main():
        client, service, bus, up = await start(tmp_path, None)
        try:
            resp = await chat(client, TEXT_PROMPT, stream=True)
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
            raw = await resp.read()
            pieces = [json.loads(line[6:]) for line in raw.decode().split("\n\n") if line.startswith("data: {")]
            text = "".join(p["choices"][0]["delta"].get("content") or "" for p in pieces)
            assert text == RECORDINGS[0].response and raw.rstrip().endswith(b"data: [DONE]")
            assert json.loads(resp.headers[ROUTE_HEADER])["cluster_id"] == C_TEXT
            event, = bus.records(Topics.ASK)
            assert event["response"] == RECORDINGS[0].response and event["output_tokens"] == 11
        finally:
            await client.close()
            await up.close()
    run(main())


def test_promoted_specialist_serves_its_cluster_and_escalates_malformed_answers(tmp_path, adapters):
    base, uris, _ = adapters

    async def main():
        client, service, bus, up = await start(tmp_path, base, serve_max_new_tokens=40)
        try:
            # learn the clusters' answer forms from the frontier model first
            for p in (TEXT_PROMPT, JSON_PROMPT):
                assert (await chat(client, p)).status == 200
            await bus.publish(Topics.PROMOTE, "1", promote_command("c1", "promote", "spec-a", C_JSON, uris["spec-a"]))
            await bus.publish(Topics.PROMOTE, "2", promote_command("c2", "promote", "spec-b", C_TEXT, uris["spec-b"]))
            assert sorted(service.registry.loaded) == ["spec-a", "spec-b"]
            n_before = len(bus.records(Topics.ASK))
            resp = await chat(client, JSON_PROMPT)
            body, route = await resp.json(), json.loads(resp.headers[ROUTE_HEADER])
            assert body["model"] == "distillery/spec-a" and route["served_by"] == "specialist"
            assert json.loads(body["choices"][0]["message"]["content"]) == json.loads(RECORDINGS[1].response)
            assert route["primary_model"] == "distillery/spec-a" and route["effective_chain"] == ["gpt-4o"]
            assert "active specialist" in route["justification"]
            event = bus.records(Topics.ASK)[-1]
            assert event["model"] == "distillery/spec-a" and event["gpu_seconds"] > 0 and event["outcome"] == "unknown"
            # spec-b answers garbage that looks like JSON but does not parse: escalated to the LLM
            resp = await chat(client, TEXT_PROMPT)
            body, route = await resp.json(), json.loads(resp.headers[ROUTE_HEADER])
            assert route["primary_model"] == "distillery/spec-b" and route["escalated"] is True
            assert body["model"] == "gpt-4o" and body["choices"][0]["message"]["content"] == RECORDINGS[0].response
            spec_event, llm_event = bus.records(Topics.ASK)[-2:]
            assert spec_event["outcome"] == "escalated" and spec_event["model"] == "distillery/spec-b"
            assert spec_event["metadata"]["escalation_reason"] == "format_error"
            assert llm_event["parent_event_id"] == spec_event["event_id"]
            assert len(bus.records(Topics.ASK)) == n_before + 3
            # streaming from a specialist
            resp = await chat(client, JSON_PROMPT, stream=True)
            raw = (await resp.read()).decode()
            assert '"model":"distillery/spec-a"' in raw and raw.rstrip().endswith("[DONE]")
            models = [m["id"] for m in (await (await client.get("/v1/models")).json())["data"]]
            assert models == ["gpt-4o", "distillery/spec-a", "distillery/spec-b"]
        finally:
            await client.close()
            await up.close()
    run(main())


def test_format_errors_roll_back_with_demotion_event(tmp_path, adapters):
    base, uris, _ = adapters

    async def main():
        client, service, bus, up = await start(tmp_path, base, serve_faults="spec-c=1.0", serve_max_new_tokens=40)
        try:
            await bus.publish(Topics.PROMOTE, "1", promote_command("c1", "promote", "spec-a", C_JSON, uris["spec-a"]))
            await bus.publish(Topics.PROMOTE, "1", promote_command("c2", "promote", "spec-c", C_JSON, uris["spec-c"]))
            assert service.assignments.active(C_JSON) == "spec-c"
            for _ in range(3):     # 3 malformed answers in a 50-call window: 6 % > 5 %
                resp = await chat(client, JSON_PROMPT)
                assert resp.status == 200 and (await resp.json())["model"] == "gpt-4o"   # escalated each time
            await service.settle()
            demotion, = bus.records(Topics.DEMOTION)
            assert demotion["adapter_id"] == "spec-c" and demotion["now_serving"] == "distillery/spec-a"
            assert demotion["what_happened"].startswith("format_errors") and demotion["evidence"]["format_errors"] == 3
            assert "spec-a" in demotion["what_to_do"]
            rollback = bus.records(Topics.PROMOTE)[-1]
            assert (rollback["action"], rollback["rollback_to"], rollback["actor"]) == ("rollback", "spec-a", "policy")
            assert demotion["demotion_id"] == "dem-" + rollback["command_id"]
            assert service.assignments.active(C_JSON) == "spec-a"
            resp = await chat(client, JSON_PROMPT)
            assert (await resp.json())["model"] == "distillery/spec-a"
            # the same decision is not published twice
            await chat(client, JSON_PROMPT)
            await service.settle()
            assert len(bus.records(Topics.DEMOTION)) == 1
        finally:
            await client.close()
            await up.close()
    run(main())


def test_tampered_adapter_is_refused_and_demoted(tmp_path, adapters):
    base, _, root = adapters

    async def main():
        signer = manifests.hmac_signer(KEY.encode())
        uri = build_signed_adapter(base, tmp_path / "evil", "evil", signer, seed=7)
        tamper(tmp_path / "evil")
        client, service, bus, up = await start(tmp_path, base)
        try:
            await bus.publish(Topics.PROMOTE, "1", promote_command("c1", "promote", "evil", C_TEXT, str(uri)))
            assert not service.registry.is_loaded("evil")
            demotion, = bus.records(Topics.DEMOTION)
            assert demotion["adapter_id"] == "evil" and demotion["what_happened"].startswith("refused_integrity")
            assert demotion["now_serving"] == "gpt-4o" and "security incident" in demotion["what_to_do"]
            demote = bus.records(Topics.PROMOTE)[-1]
            assert demote["action"] == "demote" and demote["adapter_id"] == "evil"
            assert service.assignments.active(C_TEXT) is None
            resp = await chat(client, TEXT_PROMPT)
            assert (await resp.json())["model"] == "gpt-4o"
        finally:
            await client.close()
            await up.close()
    run(main())


def test_shadow_results_drive_promotion(tmp_path, adapters):
    base, uris, _ = adapters
    # the seed criteria, with a small sample, and latency left out: a CPU specialist cannot
    # match a loopback replay's sub-millisecond answers
    thresholds = "min_shadow_calls=3,evaluation_window=3,max_latency_increase=1000000"

    async def main():
        no_exploration = RouterAdapter(Router(epsilon=0.0))
        client, service, bus, up = await start(tmp_path, base, router=no_exploration, promotion_thresholds=thresholds,
                                              serve_max_new_tokens=40)
        try:
            await bus.publish(Topics.PROMOTE, "1", promote_command("s1", "shadow", "spec-a", C_JSON, uris["spec-a"]))
            for i in range(3):
                resp = await chat(client, JSON_PROMPT)
                assert (await resp.json())["model"] == "gpt-4o"       # shadows never answer
                await service.settle()   # at most 2 shadow calls run at once; the rest are dropped
            results = bus.records(Topics.SHADOW_RESULTS)
            assert len(results) == 3 and {r["adapter_id"] for r in results} == {"spec-a"}
            r = results[0]
            assert r["exact_match"] and r["field_f1"] == 1.0 and r["format_valid"] and not r["escalated"]
            assert r["primary_model"] == "gpt-4o" and 0 < r["shadow_cost_usd"] < r["primary_cost_usd"]
            assert r["primary_cost_usd"] == pytest.approx(9 / 1000 * 0.0025 + 14 / 1000 * 0.010)   # token-priced
            assert r["event_id"] in {e["event_id"] for e in bus.records(Topics.ASK)}
            promote = bus.records(Topics.PROMOTE)[-1]
            assert promote["action"] == "promote" and promote["adapter_id"] == "spec-a", promote
            assert promote["evidence"]["calls"] == 3 and promote["evidence"]["success_parity"] == 1.0
            assert promote["manifest_uri"] == uris["spec-a"] and promote["reason"].startswith("shadow_gate")
            assert service.assignments.active(C_JSON) == "spec-a"
            # the router weighs the gate's evidence: 3 agreeing calls are too few for the
            # standard tier's SLA (Wilson lower bound), so the LLM keeps the traffic for now
            assert service.evidence("spec-a") == (1.0, 3, "shadow_gate")
            route = json.loads((await chat(client, JSON_PROMPT)).headers[ROUTE_HEADER])
            assert route["primary_model"] == "gpt-4o" and "distillery/spec-a" not in route["escalation_chain"]
        finally:
            await client.close()
            await up.close()
    run(main())


def test_fatal_drift_hands_cluster_back_to_llm(tmp_path, adapters):
    base, uris, _ = adapters

    async def main():
        client, service, bus, up = await start(tmp_path, base)
        try:
            await bus.publish(Topics.PROMOTE, "1", promote_command("c1", "promote", "spec-a", C_TEXT, uris["spec-a"]))
            await bus.publish(Topics.DRIFT, "1", {"drift_id": "d1", "ts": 0, "cluster_id": C_TEXT, "metric": "vocabulary",
                                                  "before": 0.1, "after": 0.7, "evidence": "", "suggested_action": "",
                                                  "severity": "fatal"})
            demotion, = bus.records(Topics.DEMOTION)
            assert demotion["what_happened"].startswith("fatal_drift") and demotion["now_serving"] == "gpt-4o"
            assert service.assignments.active(C_TEXT) is None
        finally:
            await client.close()
            await up.close()
    run(main())
