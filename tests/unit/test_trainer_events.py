"""The trainer's published records fit their Avro schemas and say what happened."""
from schemas.codec import default_codec
from trainers import events
from trainers.gate import GateResult
from trainers.job import JobOutcome, adapter_id_for
from trainers.loop import Progress

CMD = {"command_id": "retrain-7-2025", "cluster_id": 7, "base_model": "distillery-tiny-base", "dataset_sha256": "ab" * 32}


def outcome(passed: bool) -> JobOutcome:
    metrics = {"adapter_exact_match": 0.93, "base_exact_match": 0.01, "exact_match_gain": 0.92,
               "train_tokens_per_s": 20_000.0, "final_loss": float("nan")}
    return JobOutcome(adapter_id_for(CMD), "/art/adapters/x/manifest.json", "f" * 64, "distillery-tiny-base", "lora",
                      {}, metrics, GateResult(passed, "gate passed" if passed else "gate failed"), {"r": 16, "alpha": 32})


def roundtrip(subject, record):
    codec = default_codec()
    return codec.decode(codec.encode(subject, record), subject)[0]


def test_success_records_roundtrip_through_the_codec():
    out = outcome(True)
    trained = roundtrip("trained-value", events.trained_succeeded(CMD, out, 2, 1000))
    assert trained["status"] == "succeeded" and trained["attempt"] == 2 and trained["gate_passed"] is True
    assert "final_loss" not in trained["metrics"]  # NaN never reaches a topic
    reg = roundtrip("registry-value", events.registry_candidate(CMD, out, 1000))
    assert (reg["model_id"], reg["state"], reg["kind"], reg["cluster_id"]) == (out.adapter_id, "candidate", "adapter", 7)
    promote = roundtrip("promote-value", events.promote_shadow(CMD, out, 1000))
    assert promote["action"] == "shadow" and promote["actor"] == "trainer"
    assert promote["command_id"] == events.promote_shadow(CMD, out, 2000)["command_id"]  # stable across republish
    assert promote["evidence"]["exact_match_gain"] == 0.92


def test_failure_and_progress_records():
    failed = roundtrip("trained-value", events.trained_failed(CMD, "DatasetError: sha256 mismatch", 1, 5))
    assert failed["status"] == "failed" and failed["adapter_id"] is None and "sha256" in failed["reason"]
    p = roundtrip("training.progress-value", events.progress_event(CMD, "training", 5, Progress(10, 40, 0.5, 900.0, 30.0, 10.0)))
    assert (p["step"], p["total_steps"], p["loss"], p["eta_s"]) == (10, 40, 0.5, 30.0)
    idle = roundtrip("training.progress-value", events.progress_event(CMD, "loading", 5))
    assert idle["loss"] is None and idle["step"] == 0
    assert adapter_id_for(CMD) == adapter_id_for(dict(CMD)) != adapter_id_for({**CMD, "command_id": "other"})
