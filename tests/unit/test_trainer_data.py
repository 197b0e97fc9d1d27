"""Dataset snapshots, training config resolution, the promotion gate and the command ledger."""
import json
import math

import pytest

from trainers.artifacts import ArtifactStore
from trainers.config import ConfigError, TrainRequest, resolve, size_class
from trainers.dataset import DatasetError, load_snapshot, parse_rows, sha256_bytes, write_snapshot
from trainers.gate import Gate
from trainers.ledger import FAILED, SUCCEEDED, Ledger, decide, record_name

ROWS = [{"prompt": "p1", "response": "{}", "split": "train", "cluster_id": 3},
        {"prompt": "p2", "response": "[1]", "split": "eval"}]


def test_snapshot_roundtrip_local_and_fsspec(tmp_path):
    for uri in (str(tmp_path / "d.jsonl"), "memory://snapshots/d.jsonl"):
        sha = write_snapshot(uri, ROWS)
        snap = load_snapshot(uri, sha)
        assert [e.prompt for e in snap.train] == ["p1"] and [e.prompt for e in snap.eval] == ["p2"]
        assert snap.train[0].meta == {"cluster_id": 3} and snap.sha256 == sha


def test_snapshot_sha_mismatch_and_missing(tmp_path):
    uri = str(tmp_path / "d.jsonl")
    write_snapshot(uri, ROWS)
    with pytest.raises(DatasetError, match="sha256 mismatch"):
        load_snapshot(uri, "0" * 64)
    with pytest.raises(DatasetError, match="refusing an unverified"):
        load_snapshot(uri, "")
    with pytest.raises(DatasetError, match="does not exist"):
        load_snapshot(str(tmp_path / "nope.jsonl"), "0" * 64)


@pytest.mark.parametrize("lines,message", [
    ([], "no rows"),
    (["not json"], "line 1: not JSON"),
    (['[1]'], "must be a JSON object"),
    (['{"prompt": "a", "split": "train"}'], "'response' must be a string"),
    (['{"prompt": " ", "response": "b", "split": "train"}'], "'prompt' is empty"),
    (['{"prompt": "a", "response": "b", "split": "test"}'], "'split' must be"),
    (['{"prompt": "a", "response": "b", "split": "eval"}'], "no rows with split 'train'"),
    (['{"prompt": "a", "response": "b", "split": "train"}'], "no rows with split 'eval'"),
])
def test_malformed_rows_fail_clearly(lines, message):
    with pytest.raises(DatasetError, match=message):
        parse_rows("\n".join(lines).encode(), "x.jsonl")
    assert sha256_bytes(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_a_tool_call_answer_becomes_the_target():
    rows = ['{"prompt": "a", "response": "", "tool_calls": "[{\\"name\\": \\"f\\", \\"arguments\\": {}}]", "split": "train"}',
            '{"prompt": "b", "response": "ok", "tool_calls": null, "split": "eval"}']
    train, held = parse_rows("\n".join(rows).encode())
    assert json.loads(train[0].response) == {"tool_calls": [{"name": "f", "arguments": {}}]}
    assert held[0].response == "ok" and held[0].meta == {"tool_calls": None}


def test_config_defaults_follow_base_size_and_hardware():
    tiny = resolve(TrainRequest(), 500_000, cuda=False)
    assert tiny.method == "lora" and tiny.size_class == "tiny" and tiny.modules_to_save == ("lm_head",)
    assert tiny.target_modules == "all-linear"
    real = resolve(TrainRequest(), 360_000_000, cuda=True)
    assert real.method == "qlora" and real.lr < tiny.lr and real.modules_to_save == ()
    assert size_class(7_000_000_000) == "large"
    asked = resolve(TrainRequest.from_command({"method": "qlora", "lora_r": 4, "target_modules": ["q_proj", "v_proj"],
                                               "epochs": 1.5, "learning_rate": 1e-3}), 500_000, cuda=False)
    assert (asked.method, asked.r, asked.alpha, asked.target_modules, asked.epochs, asked.lr) == \
        ("qlora", 4, 8, ("q_proj", "v_proj"), 1.5, 1e-3)
    assert asked.to_dict()["target_modules"] == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="method"):
        resolve(TrainRequest(method="full"), 1, cuda=False)
    with pytest.raises(ConfigError, match="dropout"):
        resolve(TrainRequest(dropout=1.0), 1, cuda=False)


def test_steps_follow_the_snapshot_size():
    tiny = resolve(TrainRequest(), 1_000_000, cuda=False)
    assert tiny.min_steps > 0 and tiny.max_steps > tiny.min_steps and tiny.head_lr_scale >= 1.0
    # a small snapshot gets the floor, a large one the cap, one in between its epochs
    assert tiny.steps_for(10) == tiny.min_steps
    assert tiny.steps_for(10_000_000) == tiny.max_steps
    mid = next(n for n in range(1, 100_000, 7) if tiny.min_steps < tiny.steps_for(n) < tiny.max_steps)
    assert tiny.steps_for(mid) == math.ceil(tiny.epochs * math.ceil(mid / tiny.batch_size))
    # an explicit epoch count is honoured without the floor; an explicit max_steps caps it
    asked = resolve(TrainRequest(epochs=1.0), 1_000_000, cuda=False)
    assert asked.min_steps == 0 and asked.steps_for(32) == math.ceil(32 / asked.batch_size)
    assert resolve(TrainRequest(max_steps=3), 1_000_000, cuda=False).steps_for(10_000) == 3
    real = resolve(TrainRequest(), 360_000_000, cuda=True)
    assert real.min_steps == 0 and real.max_steps == 0 and real.head_lr_scale == 1.0
    assert real.steps_for(1000) == math.ceil(real.epochs * math.ceil(1000 / real.batch_size))


def test_gate():
    gate = Gate(min_gain=0.1, min_format=0.9)
    assert gate.check({"exact_match": 0.95, "format_valid": 1.0}, {"exact_match": 0.0}).passed
    low = gate.check({"exact_match": 0.05, "format_valid": 1.0}, {"exact_match": 0.0})
    assert not low.passed and "too little gain" in low.reason
    bad = gate.check({"exact_match": 0.95, "format_valid": 0.5}, {"exact_match": 0.0})
    assert not bad.passed and "malformed" in bad.reason


def test_ledger_decisions():
    kw = dict(node_id="me", now_ms=1_000_000, max_attempts=3, lease_ms=60_000)
    assert decide(None, **kw).action == "run" and decide(None, **kw).attempt == 1
    assert decide({"state": SUCCEEDED, "published": True}, **kw).action == "skip"
    assert decide({"state": FAILED, "published": True}, **kw).action == "skip"
    assert decide({"state": SUCCEEDED, "published": False}, **kw).action == "publish"
    fresh_other = {"state": "running", "attempt": 1, "owner": "them", "heartbeat_ms": 990_000}
    assert decide(fresh_other, **kw).action == "wait"
    crashed = {"state": "running", "attempt": 1, "owner": "them", "heartbeat_ms": 1}
    d = decide(crashed, **kw)
    assert (d.action, d.attempt) == ("run", 2)
    exhausted = {"state": "running", "attempt": 3, "owner": "them", "heartbeat_ms": 1, "reason": "OOM"}
    d = decide(exhausted, **kw)
    assert d.action == "fail" and "3 attempt" in d.reason and "OOM" in d.reason


def test_ledger_is_durable_in_the_store(tmp_path):
    ledger = Ledger(ArtifactStore(str(tmp_path / "artifacts")))
    ledger.start("cmd/1 weird id", 1, "me", 5)
    ledger.finish("cmd/1 weird id", SUCCEEDED, {"events": []}, "ok", 6)
    again = Ledger(ArtifactStore(str(tmp_path / "artifacts")))  # a restarted trainer
    rec = again.get("cmd/1 weird id")
    assert rec["state"] == SUCCEEDED and rec["published"] is False and rec["attempt"] == 1
    again.mark_published("cmd/1 weird id")
    assert json.loads((tmp_path / "artifacts" / record_name("cmd/1 weird id")).read_text())["published"] is True
    assert record_name("a") != record_name("a ") and "/" not in record_name("x/y").split("/", 2)[2]


def test_json_answers_are_learnt_in_one_spelling():
    from schemas.scoring import exact_match
    from trainers.targets import training_target

    value = {"action": "create", "zone": "a.example", "ttl": 60, "tags": ["x", "y"]}
    compact = json.dumps(value, separators=(",", ":"))
    spellings = [compact, json.dumps(value), "```json\n" + json.dumps(value, indent=2) + "\n```",
                 "Here is the command:\n" + json.dumps(value), "```\n" + json.dumps(value) + "\n```"]
    for text in spellings:
        assert training_target(text) == compact          # the teacher's key order is kept
        assert exact_match(training_target(text), compact)
    assert training_target('[1, {"b": 2}]') == '[1,{"b":2}]'
    # anything that is not a JSON container alone is learnt exactly as written
    for text in ("plain prose", 'Sure: {"a": 1}', '"just a string"', "42", "Note:\nnot json", '{"a": 1} and more',
                 "A long introduction line that goes on and on well past eighty characters of prose, really:\n{}"):
        assert training_target(text) == text
