"""The workload generator: deterministic, schema-valid, truthful about its ground truth."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import fastavro
import pytest
from fastavro.validation import validate

from ops import workload as wl
from ops.workload import pii
from ops.workload.__main__ import main as cli_main
from ops.workload.families import calendar, dns, fileshare, questions, tickets, users
from schemas.codec import Codec, decode_ask

SCHEMA = fastavro.parse_schema(json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "inference_event.v1.avsc").read_text()))

# Answer fields whose value is normalised rather than copied from the prompt.
NORMALISED = {"action", "type", "ttl", "priority", "permission", "principal_type", "expires",
              "category", "date", "start", "duration_min"}


@pytest.fixture(scope="module")
def workload():
    return wl.generate_workload(1500, seed=11, pii_rate=0.2, duplicate_rate=0.1)


def test_same_seed_same_events_and_different_seed_differs():
    a = wl.generate_events(300, seed=5)
    b = wl.generate_events(300, seed=5)
    c = wl.generate_events(300, seed=6)
    assert a == b
    assert [e["prompt"] for e in a] != [e["prompt"] for e in c]
    assert wl.make_examples("dns", 50, seed=3) == wl.make_examples("dns", 50, seed=3)
    assert wl.make_examples("dns", 50, seed=3) != wl.make_examples("dns", 50, seed=4)


def test_events_match_the_avro_schema_and_the_ask_decoder(workload):
    codec = Codec()
    for event in workload.events[:300]:
        assert validate(event, SCHEMA)
        from_json, sid = decode_ask(json.dumps(event).encode(), codec, 262_144)
        assert sid == 0
        from_avro, _ = decode_ask(codec.encode("ask-value", event), codec, 262_144)
        for key in ("event_id", "ts", "prompt", "response", "cost_usd", "outcome", "tool_calls", "metadata"):
            assert from_json[key] == event[key] == from_avro[key]


def test_traffic_looks_like_agent_traffic(workload):
    events = workload.events
    outcomes = Counter(e["outcome"] for e in events)
    assert outcomes["success"] / len(events) > 0.85
    assert outcomes["failure"] > 0 and outcomes["escalated"] > 0
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(b["ts"] >= a["ts"] for a, b in zip(events, events[1:]))
    assert {e["model"] for e in events} == {"gpt-4o", "claude-3-5-sonnet"}
    unpriced = sum(e["cost_usd"] is None for e in events) / len(events)
    assert 0.15 < unpriced < 0.45
    hinted = sum(e["task_hint"] is not None for e in events) / len(events)
    assert 0.05 < hinted < 0.3
    for e in events:
        assert e["input_tokens"] >= len(e["prompt"]) / 4
        assert abs(e["output_tokens"] - len(e["response"]) / 4) <= 1
        assert e["latency_ms"] > 0
        if e["cost_usd"] is not None:
            assert e["cost_usd"] == wl.generator.traffic.price_of(
                wl.DEFAULT_PRICES, e["model"], e["input_tokens"], e["output_tokens"])
    # Free-text answers are long; JSON ones short.
    by_family = {}
    for e, fam in zip(events, workload.labels):
        if e["outcome"] == "success":
            by_family.setdefault(fam, []).append(len(e["response"].split()))
    assert min(by_family["open_question"]) > 100
    assert max(by_family["dns"]) < 60


def test_json_answers_are_canonical_and_copy_slot_values_from_the_prompt():
    for family in wl.JSON_FAMILIES:
        for ex in wl.make_examples(family, 300, seed=1):
            answer = json.loads(ex.answer)
            assert ex.answer == json.dumps(answer, sort_keys=True, separators=(",", ":"))
            for key, value in answer.items():
                if key not in NORMALISED and value != "@":
                    assert str(value) in ex.prompt, (family, key, value, ex.prompt)


def test_normalised_slots_follow_the_documented_rules():
    for ex in wl.make_examples("dns", 400, seed=2):
        a = json.loads(ex.answer)
        if a["action"] == "create_record":
            assert "ttl" in a
        if "ttl" in a and a["ttl"] != dns.DEFAULT_TTL:
            ttl = a["ttl"]
            spellings = {str(ttl), f"{ttl // 60} min", f"{ttl // 60}m", f"{ttl // 3600} hour", f"{ttl // 3600}h"}
            assert any(s in ex.prompt for s in spellings), ex
        if a.get("name") == "@":
            assert re.search(rf"(^|[\s:]){re.escape(a['zone'])}", ex.prompt)
    for ex in wl.make_examples("ticket_triage", 300, seed=2):
        a = json.loads(ex.answer)
        cues = [c for c in tickets.CUES[a["priority"]] if c]
        others = [c for p, cs in tickets.CUES.items() if p != a["priority"] for c in cs if c]
        assert not any(c in ex.prompt for c in others)
        if cues:
            assert any(c in ex.prompt for c in cues)
    for ex in wl.make_examples("calendar", 200, seed=2):
        a = json.loads(ex.answer)
        hour, minute = map(int, a["start"].split(":"))
        h12 = hour % 12 or 12
        assert a["start"] in ex.prompt or f"{h12}:{minute:02d}" in ex.prompt or (minute == 0 and f"{h12}" in ex.prompt)


def test_every_family_has_many_phrasings_and_short_training_prompts():
    counts = {
        "dns": len(dns.CREATE + dns.UPDATE + dns.DELETE + dns.LIST),
        "user_admin": sum(len(t) for t in users.TEMPLATES.values()),
        "file_share": len(fileshare.SHARE + fileshare.REVOKE + fileshare.EXPIRE),
        "ticket_triage": len(tickets.TEMPLATES) + sum(len(t) for _, t in tickets.COMPLAINTS.values()),
        "open_question": len(questions.TEMPLATES),
        "calendar": len(calendar.TEMPLATES),
    }
    assert set(counts) == set(wl.FAMILIES)
    assert all(c >= 15 for c in counts.values()), counts
    for family in wl.FAMILIES:
        examples = wl.make_examples(family, 300, seed=9)
        assert all(len(ex.prompt.split()) < 40 for ex in examples)
        assert len({ex.prompt for ex in examples}) >= 290
        assert all(ex.family == family for ex in examples)


def test_split_holds_out_prompts_and_answers():
    train, evaluation = wl.make_split("user_admin", 400, 100, seed=4)
    assert len(train) == 400 and len(evaluation) == 100
    assert not {e.prompt for e in train} & {e.prompt for e in evaluation}
    assert not {e.answer for e in train} & {e.answer for e in evaluation}
    # Triage has a few hundred distinct answers: a large train set leaves none unseen.
    with pytest.raises(ValueError, match="disjoint_answers=False"):
        wl.make_split("ticket_triage", 10000, 50, seed=0)
    train, evaluation = wl.make_split("ticket_triage", 10000, 50, seed=0, disjoint_answers=False)
    assert not {e.prompt for e in train} & {e.prompt for e in evaluation}


def test_typos_touch_template_words_only():
    noisy = wl.make_examples("file_share", 300, seed=5, typo_rate=0.5)
    clean = wl.make_examples("file_share", 300, seed=5, typo_rate=0.0)
    assert noisy != clean
    for ex in noisy:
        a = json.loads(ex.answer)
        assert a["path"] in ex.prompt and a["principal"] in ex.prompt


def test_planted_pii_is_valid_and_reported_as_canaries():
    events, canaries = wl.generate_events_with_canaries(600, seed=2, pii_rate=0.3)
    assert len(canaries) > 100
    text = "\n".join(e["prompt"] for e in events)
    assert all(c in text for c in canaries)
    kinds = Counter(kind for kind in _kinds(canaries))
    assert set(kinds) == set(pii.KINDS), kinds
    for c in canaries:
        if kinds_of(c) == "card":
            assert pii.luhn_valid(c), c
        if kinds_of(c) == "iban":
            assert pii.iban_valid(c), c
    share = sum(any(c in e["prompt"] for c in canaries) for e in events) / len(events)
    assert 0.2 < share < 0.45
    clean, none = wl.generate_events_with_canaries(300, seed=2, pii_rate=0.0)
    assert none == []
    for e in clean:
        text = e["prompt"] + " " + e["response"]
        assert not re.search(r"[\w.]+@[\w-]+\.[a-z]{2,}|sk-\w{20}|AKIA|ghp_", text)
        # No accidental look-alikes either: every checksum-valid number is a planted one.
        assert not any(pii.luhn_valid(m) for m in re.findall(r"\d[\d ]{11,21}\d", text))
        assert not any(pii.iban_valid(m) for m in re.findall(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", text))


def kinds_of(value: str) -> str:
    if "@" in value:
        return "email"
    if re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9 ]+", value) and len(value.replace(" ", "")) >= 15:
        return "iban"
    if value.startswith(("sk-", "AKIA", "ghp_")):
        return "api_key"
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", value):
        return "ip"
    if re.fullmatch(r"[\d ]{15,19}", value):
        return "card"
    if re.search(r"\d", value):
        return "phone"
    return "person"


def _kinds(values):
    return [kinds_of(v) for v in values]


def test_checksums_reject_corrupted_numbers():
    assert pii.iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not pii.iban_valid("GB82 WEST 1234 5698 7654 33")
    assert pii.luhn_valid("4539 1488 0343 6467")
    assert not pii.luhn_valid("4539 1488 0343 6468")
    assert pii.make_iban("DE", "370400440532013000") == "DE89370400440532013000"


def test_labels_live_on_the_side_and_cover_every_family(workload):
    events, labels = workload.events, workload.labels
    assert set(labels) == set(wl.DEFAULT_FAMILIES)
    assert wl.families_of(events) == labels
    assert wl.label_of(events[0]["event_id"]) == labels[0]
    for e, fam in zip(events, labels):
        values = [v for k, v in e.items() if isinstance(v, str) and k not in ("prompt", "response", "tool_calls")]
        assert fam not in values + list(e["metadata"].values())
    with pytest.raises(KeyError):
        wl.label_of({"event_id": "never-generated"})


def test_near_duplicates_keep_the_task_but_not_the_id(workload):
    ids = {e["event_id"]: i for i, e in enumerate(workload.events)}
    dups = [(i, d) for i, d in enumerate(workload.duplicate_of) if d is not None]
    assert 0.06 < len(dups) / len(workload.events) < 0.14
    for i, original in dups:
        j = ids[original]
        assert j < i
        assert workload.events[i]["prompt"] != workload.events[j]["prompt"]
        assert workload.labels[i] == workload.labels[j] and workload.answers[i] == workload.answers[j]
        a, b = workload.events[i]["prompt"], workload.events[j]["prompt"]
        assert abs(len(a) - len(b)) <= 12


def test_failed_json_calls_carry_a_wrong_answer(workload):
    checked = 0
    for e, answer in zip(workload.events, workload.answers):
        if answer is None or e["outcome"] not in ("failure", "success"):
            continue
        body = e["response"].removeprefix("Here is the command:\n").strip("`").removeprefix("json\n")
        try:
            parsed = json.loads(body)
        except ValueError:
            assert e["outcome"] == "failure"
            continue
        same = json.dumps(parsed, sort_keys=True, separators=(",", ":")) == answer
        assert same == (e["outcome"] == "success")
        checked += 1
    assert checked > 500


def test_drift_new_family_appears_only_after_the_change():
    s = wl.shifted_stream(600, 600, seed=1, kind="new_family", new_family_share=0.25)
    assert s.change_at == 600 and len(s.events) == 1200
    assert "calendar" not in s.labels[:600]
    share = s.labels[600:].count("calendar") / 600
    assert 0.17 < share < 0.33
    assert s.events[600]["ts"] >= s.events[599]["ts"]


def test_drift_success_drop_changes_one_family_only():
    s = wl.shifted_stream(1500, 1500, seed=1, kind="success_drop", family="dns")

    def rate(lo, hi, fam):
        outs = [e["outcome"] for e, f in zip(s.events[lo:hi], s.labels[lo:hi]) if f == fam]
        return outs.count("success") / len(outs)

    assert rate(0, 1500, "dns") > 0.88 and rate(1500, 3000, "dns") < 0.72
    assert rate(1500, 3000, "user_admin") > 0.88
    with pytest.raises(ValueError):
        wl.shifted_stream(10, 10, kind="new_family", family="dns")


def test_jsonl_round_trip_and_cli(tmp_path):
    events = wl.generate_events(40, seed=3)
    path = tmp_path / "e.jsonl"
    assert wl.write_jsonl(events, path) == 40
    assert list(wl.read_jsonl(path)) == events
    out, canaries, labels = tmp_path / "cli.jsonl", tmp_path / "c.txt", tmp_path / "l.tsv"
    assert cli_main(["--n", "60", "--seed", "1", "--out", str(out), "--pii-rate", "0.5",
                     "--canaries", str(canaries), "--labels", str(labels)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 60 and len(labels.read_text().splitlines()) == 60
    text = out.read_text()
    assert all(c in text or json.dumps(c)[1:-1] in text for c in canaries.read_text().splitlines())
    with pytest.raises(SystemExit) as exc:
        cli_main(["--help"])
    assert exc.value.code == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        wl.generate_events(10, families=["nope"])
    with pytest.raises(ValueError):
        wl.generate_events(10, pii_rate=1.5)
    with pytest.raises(ValueError):
        wl.make_examples("nope", 1, seed=0)
