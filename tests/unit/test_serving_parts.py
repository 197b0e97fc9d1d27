"""Pure parts of the serving tier: wire format, replay book, metrics exposition, answer checks,
shadow comparison, routing contract, bus codec, cluster snapshots."""
from __future__ import annotations

import asyncio
import json

import pytest

from distillery.settings import SettingsError
from schemas.codec import Codec
from serving import openai_api
from serving.bus import MemoryBus, decode_record, encode_record
from serving.clusters import ClusterAssigner
from serving.metrics import Registry
from serving.quality import AnswerForm, FaultInjector, answer_text, safety_flags, served_format_valid
from serving.replay_upstream import ReplayBook, Recording, recording_from_event
from serving.routing import Candidate, ModelStats, RouteDecision, RouteRequest, RouterAdapter, baseline_route, route
from serving.shadow import ShadowRunner, compare, result_id, sampled
from serving.upstream import Answer


# ---- OpenAI wire format ----------------------------------------------------------------
def test_prompt_from_messages():
    assert openai_api.prompt_from_messages([{"role": "user", "content": "hi there"}]) == "hi there"
    conv = [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert openai_api.prompt_from_messages(conv) == "system: be brief\nuser: ab"


def test_parse_chat_request_validates():
    req = openai_api.parse_chat_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}],
                                         "max_tokens": 5, "stream": True, "metadata": {"tenant": "t1"}})
    assert (req.model, req.max_tokens, req.stream, req.metadata, req.prompt) == ("gpt-4o", 5, True, {"tenant": "t1"}, "x")
    for bad in ({}, {"messages": "x"}, {"messages": [{"role": "robot", "content": "x"}]},
                {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, [1]):
        with pytest.raises(openai_api.BadRequest):
            openai_api.parse_chat_request(bad)


def test_stream_chunks_roundtrip_through_accumulator():
    calls = [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}]
    acc = openai_api.StreamAccumulator()
    raw = b"".join(openai_api.stream_chunks("id1", "m", "hello streaming world", 3, 4, calls, piece_chars=5))
    for i in range(0, len(raw), 7):          # arbitrary network fragmentation
        acc.feed(raw[i:i + 7])
    assert acc.text == "hello streaming world" and acc.model == "m"
    assert acc.usage == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert acc.calls[0]["function"] == {"name": "lookup", "arguments": '{"q": 1}'} and acc.finish_reason == "tool_calls"
    body = openai_api.completion("id1", "m", "", 1, 2, calls)
    assert body["choices"][0]["finish_reason"] == "tool_calls" and body["usage"]["total_tokens"] == 3


# ---- replay book --------------------------------------------------------------------------
def test_replay_book_exact_then_nearest():
    book = ReplayBook([
        Recording("create a dns record for api.example.com", "A", "gpt-4o", None, 100, 5, 1),
        Recording("delete user bob from group admins", "B", "gpt-4o", None, 100, 5, 1),
        Recording("delete user bob from group admins", "C", "gpt-4o", None, 100, 5, 1),   # first wins
    ])
    assert len(book) == 2
    assert book.lookup("delete user bob from group admins") == (book.exact["delete user bob from group admins"], True)
    assert book.exact["delete user bob from group admins"].response == "B"
    rec, exact = book.lookup("please delete user alice from group admins")
    assert rec.response == "B" and not exact
    assert book.lookup("unknown words entirely", nearest=False) == (None, False)


def test_recording_from_event_parses_tool_calls():
    rec = recording_from_event({"prompt": "p", "response": "", "model": "gpt-4o",
                                "tool_calls": '[{"type":"function","function":{"name":"f","arguments":"{}"}}]'})
    assert rec.tool_calls[0]["function"]["name"] == "f" and rec.input_tokens >= 1


# ---- metrics exposition ---------------------------------------------------------------------
def test_prometheus_text_format():
    r = Registry()
    c = r.counter("x_total", "things", ("kind",))
    c.inc(kind='a"b')
    c.inc(2, kind='a"b')
    h = r.histogram("lat_seconds", "latency", (), buckets=(0.1, 1.0))
    h.observe(0.05)
    h.observe(0.5)
    text = r.render()
    assert '# TYPE x_total counter\nx_total{kind="a\\"b"} 3\n' in text
    assert 'lat_seconds_bucket{le="0.1"} 1' in text and 'lat_seconds_bucket{le="1"} 2' in text
    assert 'lat_seconds_bucket{le="+Inf"} 2' in text and "lat_seconds_count 2" in text and "lat_seconds_sum 0.55" in text
    with pytest.raises(ValueError):
        c.inc(kind="a", extra="b")
    with pytest.raises(ValueError):
        c.inc(-1, kind="a")


# ---- answer checks --------------------------------------------------------------------------
def test_answer_form_and_served_format():
    form = AnswerForm()
    for ref in ('{"a": 1}', '{"b": 2}', "plain text"):
        form.learn_one(ref)
    assert form.predict_one() == "object"
    assert served_format_valid('{"z": 0}', form.exemplar())
    assert not served_format_valid("[1, 2]", form.exemplar())
    assert not served_format_valid('{"a": ', None) and served_format_valid("prose", None) and not served_format_valid("  ", None)
    assert answer_text("", [{"function": {"name": "f", "arguments": "{}"}}]).startswith('{"tool_calls":')


def test_safety_flags_only_for_secrets_the_prompt_lacked():
    assert safety_flags("mail bob@example.com", "sent to bob@example.com") == []
    assert safety_flags("mail bob", "sent to eve@evil.io") == ["email"]
    assert safety_flags("pay", "card 4111 1111 1111 1111") == ["card_number"]
    assert safety_flags("pay", "ref 4111 1111 1111 1112") == []        # fails Luhn
    assert "api_key" in safety_flags("", "use sk-abcdefghijklmnopqrstuvwx")


def test_fault_injector_spec_rate_and_determinism():
    assert not FaultInjector.parse(None).enabled and not FaultInjector.parse("off").enabled
    on = FaultInjector.parse("on")
    assert on.enabled and on.rates == {}
    f = FaultInjector.parse("ad-1=0.5")
    hits = [f.apply("ad-1", f"e{i}", '{"a": 1}')[1] for i in range(400)]
    assert 150 < sum(hits) < 250
    assert [f.apply("ad-1", f"e{i}", '{"a": 1}')[1] for i in range(400)] == hits   # same events, same faults
    bad, hit = FaultInjector.parse("*=1").apply("any", "e", '{"device": "lights"}')
    assert hit and not served_format_valid(bad, '{"x": 1}')
    assert FaultInjector.parse("*=1").apply("any", "e", "text")[0] == ""
    with pytest.raises(SettingsError):
        FaultInjector.parse("ad-1=2")


# ---- shadow -------------------------------------------------------------------------------
def test_shadow_compare_and_sampling():
    same = compare("p", '{"a": 1, "b": 2}', '{"b": 2, "a": 1}')
    assert same["exact_match"] and same["field_f1"] == 1.0 and same["format_valid"] and not same["escalated"]
    half = compare("p", '{"a": 1, "b": 3}', '{"a": 1, "b": 2}')
    assert not half["exact_match"] and half["field_f1"] == pytest.approx(0.5) and half["format_valid"]
    broken = compare("p", '{"a": 1', '{"a": 1}')
    assert not broken["format_valid"] and broken["escalated"]
    tool_ref = '{"name": "lookup", "arguments": {"q": "x"}}'
    assert not compare("p", '{"name": "other", "arguments": {"q": "x"}}', tool_ref)["tool_calls_valid"]
    assert compare("p", "leaks eve@evil.io", "fine")["safety_incident"]
    rate = sum(sampled(f"e{i}", "a", 0.25) for i in range(2000)) / 2000
    assert 0.2 < rate < 0.3 and sampled("e1", "a", 1.0) and not sampled("e1", "a", 0.0)
    assert result_id("e1", "a") == result_id("e1", "a") != result_id("e1", "b")


def test_shadow_runner_bounds_work_in_flight():
    published = []

    async def slow_generate(adapter_id, prompt, max_tokens):
        await asyncio.sleep(0.01)
        return Answer('{"a": 1}', f"distillery/{adapter_id}", 3, 4, 10.0, None, 0.01)

    async def publish(topic, key, record):
        published.append((topic, record))

    async def main():
        runner = ShadowRunner(slow_generate, publish, lambda a: 0.001, sample_rate=1.0, max_in_flight=2)
        primary = Answer('{"a": 1}', "gpt-4o", 3, 4, 100.0)
        started = runner.offer(event_id="e1", cluster_id=1, adapters=["x", "y", "z"], prompt="p", max_tokens=8,
                               primary=primary, primary_text='{"a": 1}', primary_cost_usd=0.01)
        assert started == 2 and runner.dropped == 1
        assert runner.offer(event_id="e2", cluster_id=None, adapters=["x"], prompt="p", max_tokens=8,
                            primary=primary, primary_text="", primary_cost_usd=0.0) == 0
        await runner.drain()
        return runner

    runner = asyncio.run(main())
    assert runner.completed == 2 and {r["adapter_id"] for _, r in published} == {"x", "y"}
    topic, rec = published[0]
    assert topic == "shadow.results" and rec["exact_match"] and rec["shadow_cost_usd"] == 0.001


# ---- routing contract -------------------------------------------------------------------------
SPEC = Candidate("distillery/a1", "specialist", "a1", 50.0, (0.0001, 0.0002), 10, 3, 0.98, 600, "held_out_eval",
                 0.00015, gpu_second=0.0004)
LLM = Candidate("gpt-4o", "upstream", None, 900.0, (0.001, 0.003), 100, None, None, 0, "status_quo", 0.002,
                input_per_1k=0.0025, output_per_1k=0.01)


def rr(*cands, safety="standard", cluster=3):
    return RouteRequest({"input_tokens": 50, "max_tokens": 64}, cluster, None, None, safety, "standard", tuple(cands))


def test_baseline_route():
    d = baseline_route(rr(SPEC, LLM))
    assert (d.primary_model, d.escalation_chain) == ("distillery/a1", ("gpt-4o",))
    assert baseline_route(rr(SPEC, LLM, safety="high")).primary_model == "gpt-4o"
    assert baseline_route(rr(LLM)).primary_model == "gpt-4o"
    with pytest.raises(LookupError):
        baseline_route(rr())


def test_router_adapter_uses_the_router_and_maps_its_decision():
    adapter = RouterAdapter(seed=1)
    d = adapter(rr(SPEC, LLM))
    assert d.primary_model == "distillery/a1" and d.extra["router"] == "serving.router"
    assert d.expected_p95_latency_ms is not None and d.expected_cost_usd is not None
    unproven = Candidate("distillery/a1", "specialist", "a1", 50.0, None, 0, 3, None, 0, "none", None, gpu_second=0.0004)
    adapter.router.epsilon = 0.0
    assert adapter(rr(unproven, LLM)).primary_model == "gpt-4o"   # no evidence, no traffic


def test_route_falls_back_when_the_router_fails_or_names_an_unknown_model():
    def broken(_):
        raise RuntimeError("bug")

    def elsewhere(_):
        return RouteDecision("claude-3-5-sonnet", (), "not here")

    assert route(rr(SPEC, LLM), broken).primary_model == "distillery/a1"
    assert route(rr(SPEC, LLM), elsewhere).primary_model == "distillery/a1"


def test_model_stats():
    stats = ModelStats(window=100)
    for i in range(100):
        stats.learn_one("m", float(i), 0.001 * i)
    assert stats.calls("m") == 100 and stats.p95_latency_ms("m") == pytest.approx(94.05)
    lo, hi = stats.cost_range("m")
    assert lo < hi and stats.cost_range("other") is None and stats.mean_cost("m") == pytest.approx(0.0495)


# ---- bus codec and memory bus ------------------------------------------------------------------
def test_records_roundtrip_as_avro_and_json():
    codec = Codec()
    cmd = {"command_id": "c1", "ts": 1_700_000_000_000, "adapter_id": "a", "cluster_id": 2, "action": "promote",
           "reason": "r", "manifest_uri": None, "rollback_to": None, "evidence": {"calls": 3.0}, "actor": "policy"}
    assert decode_record(codec, "promote", encode_record(codec, "promote", cmd)) == cmd
    assert decode_record(codec, "promote", json.dumps(cmd).encode())["adapter_id"] == "a"


def test_memory_bus_replays_log_to_late_subscribers():
    async def main():
        bus, seen = MemoryBus(), []
        await bus.publish("t", "k", {"n": 1})

        async def handler(rec):
            seen.append(rec["n"])
        bus.subscribe("t", handler, from_beginning=True)
        await bus.start()
        await bus.publish("t", "k", {"n": 2})
        return seen

    assert asyncio.run(main()) == [1, 2]


# ---- cluster snapshots --------------------------------------------------------------------------
class _Model:
    def __init__(self, version):
        self.version = version

    def predict_one(self, prompt):
        return self.version if prompt else None


def test_cluster_assigner_keeps_newest_snapshot():
    calls = []

    def loader(featurizer, state):
        calls.append((featurizer, state))
        if state == b"broken":
            raise ValueError("corrupt")
        return _Model(int(state))

    a = ClusterAssigner(loader)
    assert a.assign("x") is None and not a.ready
    assert a.update({"model_version": 2, "featurizer": "f", "state": b"2"})
    assert not a.update({"model_version": 1, "featurizer": "f", "state": b"1"})   # older: ignored
    assert not a.update({"model_version": 5, "featurizer": "f", "state": b"broken"})
    assert a.version == 2 and a.assign("x") == 2 and a.rejected == 1


def test_cluster_assigner_loads_the_stream_s_snapshot_with_the_same_code():
    from streams.clustering import ClusterItem, ClustererConfig, FeaturizerConfig, TaskClusterer

    model = TaskClusterer(ClustererConfig(min_size=2), FeaturizerConfig(text="none"))
    dns = [f"create a dns record for host{i}.example.com pointing to 10.0.0.{i}" for i in range(12)]
    users = [f"add user u{i} to the admins group and reset the password of u{i}" for i in range(12)]
    model.learn_batch([ClusterItem(f"e{i}", p) for i, p in enumerate(dns + users)])
    record = model.snapshot_record(ts_ms=1)
    assigner = ClusterAssigner()            # default loader: streams.clustering
    assert assigner.update(record) and assigner.version == record["model_version"]
    for prompt in ("create a dns record for web.example.com pointing to 10.1.1.1",
                   "add user zed to the admins group and reset the password of zed", "what time is it"):
        assert assigner.assign(prompt) == model.predict_one(prompt)
    assert assigner.assign(dns[0]) is not None and assigner.assign(dns[0]) != assigner.assign(users[0])
