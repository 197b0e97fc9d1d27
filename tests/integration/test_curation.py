"""Curation on the real stack: nothing downstream of `ask` holds a planted secret, and
near-duplicates are caught across a worker restart."""
from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import uuid
from pathlib import Path

import pytest

from distillery.settings import Topics
from ops import workload as wl
from tests.integration.test_ingest import produce_confluent

pytestmark = pytest.mark.integration
PERSON = re.compile(r"[A-Z][a-z]+(?:[ -][A-Z][\w'-]+)+")

# ---- canary people the detector has never seen --------------------------------------------
# Names are built here from syllables, never read from any list of real names, and the test
# checks that (almost) none of their words is in the detector's gazetteer: the redactor has
# to find them from the way people write names, not by knowing the word.
_ONSET = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
          "kr", "tr", "st", "zh", "th", "ch", "sk", "gw")
_NUCLEUS = ("a", "e", "i", "o", "u", "ai", "ou", "ei", "ya", "ue")
_CODA = ("", "", "n", "r", "l", "m", "s", "sk", "nt", "v")


def _invented(rng: random.Random, syllables: int) -> str:
    w = "".join(rng.choice(_ONSET) + rng.choice(_NUCLEUS) + rng.choice(_CODA) for _ in range(syllables))
    return w.capitalize()


def invented_people(n: int, seed: int, avoid: str) -> list[tuple[str, str]]:
    """n (given, family) pairs; every word unique, >= 5 letters and absent from `avoid` (the
    rest of the traffic), so any occurrence of one downstream is a leak."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        first, last = _invented(rng, rng.choice((2, 2, 3))), _invented(rng, rng.choice((2, 3)))
        if min(len(first), len(last)) < 5 or {first, last} & seen or first == last \
                or first.lower() in avoid or last.lower() in avoid:
            continue
        seen.update((first, last))
        out.append((first, last))
    return out


def name_contexts(first: str, last: str, k: int) -> tuple[str, str, dict[str, str]]:
    """(field, text, metadata) placing one person in the k-th of the ways agent traffic carries
    names: headers, greetings, sign-offs, hand-offs, JSON and CSV fields, logs, transcripts."""
    full, mail = f"{first} {last}", f"{first.lower()}.{last.lower()}@example.org"
    contexts = [
        ("prompt", f"From: {full} <{mail}>\nSubject: refund\n\nplease advise"),
        ("prompt", f"Dear {first},\nyour ticket is closed."),
        ("prompt", f"Dear {full}, your invoice is attached."),
        ("prompt", f"Thanks for the help!\n\nBest regards,\n{full}"),
        ("prompt", f"see logs attached\n\n--\n{full}\nHead of Platform"),
        ("response", f"I have assigned the ticket to {full} in the billing queue."),
        ("response", f"Contact: {full}, +44 7700 900123"),
        ("prompt", f"INFO auth user {full} ({mail}) signed in"),
        ("tool_calls", json.dumps({"name": "update_customer", "arguments": {"customer_name": full, "plan": "pro"}})),
        ("tool_calls", json.dumps({"name": "send_email", "arguments": json.dumps(
            {"to": mail, "body": f"Hi {first},\n\nyour refund is on its way.\n\nRegards,\n{full}"})})),
        ("prompt", f"id,name,email\n1,{full},{mail}\n"),
        ("prompt", f"[10:42] {full}: my export keeps failing"),
        ("prompt", f"Ticket 4411: {full} asked for a refund of the duplicate charge"),
        ("prompt", f"Escalated on behalf of {full} by the on-call engineer"),
        ("metadata", ""),
    ]
    field, text = contexts[k % len(contexts)]
    if field == "metadata":
        return "prompt", "", {"customer_name": full}
    return field, text, {}


def seeded_people(events: list[dict]) -> list[str]:
    """Plants invented people into the events; returns the strings to scan for: every full
    name and every given and family name on its own (a half-redacted name is a leak too)."""
    from streams.redaction.lexicon import load

    people = invented_people(len(events) // 2, seed=7, avoid=json.dumps(events).lower())
    lex = load()
    known = sum(w.lower() in lex.first or w.lower() in lex.last for p in people for w in p)
    assert known <= 0.02 * 2 * len(people), f"{known} canary name words are in the gazetteer: not a test of unseen names"
    canaries = []
    for k, (first, last) in enumerate(people):
        e = events[(2 * k + 1) % len(events)]
        field, text, meta = name_contexts(first, last, k)
        if text:
            e[field] = f"{e[field]}\n{text}" if e.get(field) else text
        e["metadata"] = {**(e.get("metadata") or {}), **meta}
        canaries += [f"{first} {last}", first, last]
    return canaries


def extra_canaries(n: int) -> list[tuple[str, str]]:
    """Secret kinds the workload does not plant: (kind, value), each unique per index."""
    out = []
    for i in range(n):
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
        body = base64.urlsafe_b64encode(json.dumps({"sub": f"user{i}", "n": uuid.uuid4().hex}).encode()).rstrip(b"=").decode()
        sig = base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).rstrip(b"=").decode()
        out += [
            ("ssn", f"{201 + i % 400:03d}-{45 + i % 40:02d}-{6789 - i:04d}"),
            ("jwt", f"{header}.{body}.{sig}"),
            ("aws_key", "AKIA" + uuid.uuid4().hex[:16].upper()),
            ("url_password", f"Pw{uuid.uuid4().hex[:12]}x"),
        ]
    return out


def seeded_events(n: int) -> tuple[list[dict], list[str]]:
    events, canaries = wl.generate_events_with_canaries(n, seed=42, pii_rate=1.0, duplicate_rate=0.0,
                                                        start_ts=None)
    extra = extra_canaries(n // 10)
    for k, (kind, value) in enumerate(extra):
        e = events[k % len(events)]
        if kind == "url_password":
            e["prompt"] += f" then connect with postgres://app_admin:{value}@db.internal:5432/orders"
        elif kind == "ssn":
            e["prompt"] += f" (customer SSN {value})"
        elif kind == "jwt":
            e["response"] += f" Authorization: Bearer {value}"
        else:
            e["prompt"] += f" using aws_access_key_id={value}"
    # the workload's own people: the full name and each part (a half-redacted name leaks)
    parts = [w for c in canaries if PERSON.fullmatch(c) for w in c.split()]
    return events, list(canaries) + [v for _, v in extra] + sorted(set(parts)) + seeded_people(events)


async def topic_bytes(bootstrap: str, topics: list[str]) -> bytes:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    chunks = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=3000, max_records=5000)
            if not batch:
                break
            for records in batch.values():
                chunks.extend((r.key or b"") + b"\n" + (r.value or b"") for r in records)
    finally:
        await consumer.stop()
    return b"\n".join(chunks)


def test_no_planted_secret_reaches_any_topic_table_or_file_downstream_of_ask(stack):
    events, canaries = seeded_events(1000)
    assert len(canaries) > 2000
    stack.start_worker()
    produce_confluent(stack.broker.bootstrap, [json.dumps(e).encode() for e in events])
    stack.wait_for("SELECT count() FROM observations", lambda v: v >= 1000, timeout=300, what="1000 observations")
    stack.wait_for("SELECT count() FROM slm_observation_curated FINAL WHERE cluster_id IS NOT NULL", lambda v: v > 0,
                   timeout=120, what="clustered rows")
    redacted = stack.scalar("SELECT sum(arraySum(mapValues(pii_counts))) FROM observations")
    assert redacted >= len(events)  # every event carried PII

    leaks: dict[str, list[str]] = {}
    # every ClickHouse table
    client = stack.client()
    tables = [r[0] for r in client.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                                         "AND engine LIKE '%MergeTree%'").result_rows]
    for t in tables:
        for k in range(0, len(canaries), 200):
            chunk = canaries[k:k + 200]
            rows = client.query(f"SELECT toString(tuple(*)) FROM {t} WHERE multiSearchAny(toString(tuple(*)), {{c:Array(String)}})",
                                parameters={"c": chunk}).result_rows
            for (row,) in rows:
                leaks.setdefault(f"table {t}", []).extend(c for c in chunk if c in row)
    # every topic downstream of ask (ask.dlq keeps original bytes by contract; nothing here is malformed)
    downstream = [t for t in Topics.all() if t not in (Topics.ASK, Topics.ASK_DLQ)]
    data = asyncio.run(topic_bytes(stack.broker.bootstrap, downstream))
    assert len(data) > 100_000
    leaks["topics"] = [c for c in canaries if c.encode() in data]
    # every file the pipeline writes outside the engine's own store (checkpoints, datasets, logs)
    for path in Path(stack.home).rglob("*"):
        if path.is_file() and "clickhouse" not in path.parts:
            blob = path.read_bytes()
            found = [c for c in canaries if c.encode() in blob]
            if found:
                leaks[f"file {path.relative_to(stack.home)}"] = found
    leaks = {k: sorted(set(v)) for k, v in leaks.items() if v}
    # Every kind must stay out, people included: names planted in the contexts agent traffic
    # carries them in (docs/redaction.md lists what the name rules do and do not cover).
    assert not leaks, f"planted PII found downstream of ask: {json.dumps(leaks)[:3000]}"


def test_near_duplicates_are_caught_across_a_worker_restart(stack):
    base = wl.generate_events(300, seed=5, duplicate_rate=0.0, pii_rate=0.0)
    for e in base:
        e["tenant"], e["task_hint"] = "acme", "support"
    stack.start_worker()
    produce_confluent(stack.broker.bootstrap, [json.dumps(e).encode() for e in base])
    stack.wait_for("SELECT count() FROM observations", lambda v: v >= 300, timeout=240, what="first 300")
    firsts = stack.scalar("SELECT countIf(duplicate_of IS NULL) FROM observations")
    stack.worker.stop()
    stack.start_worker()
    # the same prompts again, re-spaced and re-punctuated (normalised away), with new ids, after the restart
    again = []
    for e in base:
        d = dict(e, event_id=f"again-{e['event_id']}")
        d["prompt"] = e["prompt"].replace(" ", "  ") + " !!"
        again.append(d)
    produce_confluent(stack.broker.bootstrap, [json.dumps(e).encode() for e in again])
    stack.wait_for("SELECT count() FROM observations", lambda v: v >= 600, timeout=240, what="600 observations")
    caught = stack.scalar("SELECT countIf(duplicate_of IS NOT NULL) FROM observations WHERE startsWith(event_id, 'again-')")
    # near-duplicates of events seen before the restart are still recognised
    assert caught >= 0.9 * firsts
    assert stack.scalar("SELECT count() FROM slm_observation_curated FINAL WHERE startsWith(event_id, 'again-')") <= 0.1 * firsts
