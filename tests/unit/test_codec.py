import json

import pytest

from schemas import codec as c
from schemas.codec import Codec, RejectedMessage, decode_ask

GOOD = {"event_id": "e1", "ts": 1_700_000_000_000, "tenant": "acme", "service": "agent", "model": "gpt-4o",
        "prompt": "add an A record", "response": "{}", "latency_ms": 120.5, "input_tokens": 10,
        "output_tokens": 3, "cost_usd": None, "outcome": "success", "tool_calls": None, "task_hint": None,
        "metadata": {"k": "v"}}


def test_every_schema_version_reads_data_written_by_the_previous_one():
    checked = 0
    for subject, ids in c.subjects().items():
        for old, new in zip(ids, ids[1:]):
            record = _example(json.loads(c.schema_text(old)))
            data = Codec().encode(subject, record, schema_id=old)
            decoded, sid = Codec().decode(data, subject)
            assert sid == old
            for key, value in record.items():
                assert decoded[key] == value, (subject, key)
            checked += 1
    assert checked >= 1  # ask has two versions


def _example(schema: dict) -> dict:
    samples = {"string": "s", "long": 5, "int": 3, "double": 1.5, "boolean": True, "bytes": b"x"}
    out = {}
    for f in schema["fields"]:
        t = f["type"]
        if isinstance(t, list):
            out[f["name"]] = None
        elif isinstance(t, dict) and t.get("type") == "enum":
            out[f["name"]] = t["symbols"][0]
        elif isinstance(t, dict) and t.get("type") == "map":
            out[f["name"]] = {"a": samples.get(t["values"], "v")}
        elif isinstance(t, dict) and t.get("type") == "array":
            out[f["name"]] = [samples.get(t["items"], "v")]
        elif isinstance(t, dict):
            out[f["name"]] = 1_700_000_000_000
        else:
            out[f["name"]] = samples[t]
    return out


def test_all_catalog_schemas_parse_and_round_trip():
    for sid in c._catalog():
        schema = json.loads(c.schema_text(sid))
        record = _example(schema)
        subject = c._catalog()[sid]["subject"]
        decoded, got = Codec().decode(Codec().encode(subject, record, schema_id=sid))
        assert got == sid and decoded == record


def test_json_and_avro_decode_to_the_same_event():
    codec = Codec()
    from_json, sid_json = decode_ask(json.dumps(GOOD).encode(), codec, 10_000)
    from_avro, sid_avro = decode_ask(codec.encode("ask-value", GOOD, schema_id=1), codec, 10_000)
    assert sid_json == 0 and sid_avro == 1
    from_avro.pop("gpu_seconds"), from_avro.pop("parent_event_id")
    assert {k: v for k, v in from_json.items() if k in from_avro} == from_avro


@pytest.mark.parametrize("payload, reason", [
    (b"", "empty"),
    (b"\xff\xfe", "invalid_utf8"),
    (b"nope", "not_avro_or_json"),
    (b"42", "not_an_object"),
    (b"\x00\x00\x00\x00\x63abc", "unknown_schema_id"),
    (b"\x00\x00", "not_avro_or_json"),
])
def test_unreadable_bytes_are_rejected_with_a_reason(payload, reason):
    with pytest.raises(RejectedMessage) as err:
        decode_ask(payload, Codec(), 1000)
    assert err.value.reason == reason


@pytest.mark.parametrize("change, reason", [
    ({"event_id": ""}, "empty_event_id"),
    ({"event_id": "   "}, "empty_event_id"),
    ({"event_id": None}, "missing_field"),
    ({"prompt": 5}, "wrong_type"),
    ({"latency_ms": "fast"}, "wrong_type"),
    ({"input_tokens": 1.5}, "wrong_type"),
    ({"output_tokens": -1}, "negative_value"),
    ({"outcome": "great"}, "bad_outcome"),
    ({"metadata": {"a": [1]}}, "wrong_type"),
    ({"ts": "yesterday"}, "wrong_type"),
    ({"prompt": "x" * 101}, "prompt_too_large"),
])
def test_invalid_events_are_rejected_with_a_reason(change, reason):
    event = {**GOOD, **change}
    with pytest.raises(RejectedMessage) as err:
        decode_ask(json.dumps(event).encode(), Codec(), 100)
    assert err.value.reason == reason


def test_truncated_avro_body_is_rejected():
    data = Codec().encode("ask-value", GOOD)
    with pytest.raises(RejectedMessage) as err:
        decode_ask(data[:12], Codec(), 1000)
    assert err.value.reason == "avro_decode_error"


def test_json_conveniences():
    event, _ = decode_ask(json.dumps({**GOOD, "ts": "2024-05-01T10:00:00Z", "tool_calls": [{"name": "f"}],
                                      "metadata": {"n": 3}}).encode(), Codec(), 1000)
    assert event["ts"] == 1714557600000
    assert json.loads(event["tool_calls"]) == [{"name": "f"}]
    assert event["metadata"] == {"n": "3"}
