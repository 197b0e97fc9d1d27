"""Small, varied InferenceEvents for tests (the realistic workload lives in ops/workload)."""
from __future__ import annotations

import json
import random
import time
import uuid


def make_events(n: int, seed: int = 0, prefix: str = "ev") -> list[dict]:
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    verbs = ["summarise", "translate", "classify", "extract the dates from", "rewrite", "answer"]
    models = ["gpt-4o", "claude-3-5-sonnet", "gpt-4o-mini"]
    events = []
    for i in range(n):
        words = " ".join(rng.choice(["invoice", "order", "meeting", "report", "ticket", "release", "budget",
                                     "customer", "server", "deploy"]) for _ in range(rng.randint(4, 12)))
        prompt = f"{rng.choice(verbs)} this text #{i} {uuid.UUID(int=rng.getrandbits(128))}: {words}"
        events.append({
            "event_id": f"{prefix}-{seed}-{i}",
            "ts": now - rng.randint(0, 3_600_000),
            "tenant": rng.choice(["acme", "globex"]),
            "service": rng.choice(["support-agent", "ops-agent"]),
            "model": rng.choice(models),
            "prompt": prompt,
            "response": f"result for {i}: {words[::-1]}",
            "latency_ms": round(rng.uniform(200, 3000), 1),
            "input_tokens": len(prompt) // 4,
            "output_tokens": rng.randint(5, 300),
            "cost_usd": None if i % 3 else round(rng.uniform(0.0001, 0.01), 6),
            "outcome": rng.choice(["success", "success", "success", "failure", "escalated", "unknown"]),
            "tool_calls": json.dumps([{"name": "lookup", "arguments": {"id": i}}]) if i % 5 == 0 else None,
            "task_hint": None if i % 2 else rng.choice(["summary", "translation"]),
            "metadata": {"run": str(seed)},
        })
    return events


MALFORMED = [
    (b"\xff\xfe not utf8 \xc3\x28", "invalid_utf8"),
    (b"this is not json", "not_avro_or_json"),
    (b"[1, 2, 3]", "not_an_object"),
    (b'{"event_id": "", "ts": 1, "tenant": "t", "service": "s", "model": "m", "prompt": "p", "response": "r", "latency_ms": 1, "input_tokens": 1, "output_tokens": 1}', "empty_event_id"),
    (b'{"ts": 1, "tenant": "t", "service": "s", "model": "m", "prompt": "p", "response": "r", "latency_ms": 1, "input_tokens": 1, "output_tokens": 1}', "missing_field"),
    (b'{"event_id": "x", "ts": 1, "tenant": "t", "service": "s", "model": "m", "prompt": "p", "response": "r", "latency_ms": "slow", "input_tokens": 1, "output_tokens": 1}', "wrong_type"),
    (b"\x00\x00\x00\x03\xe7\x02ab", "unknown_schema_id"),
    (b"", "empty"),
]


def malformed(n: int, max_prompt_bytes: int) -> list[tuple[bytes, str]]:
    """n bad messages cycling through every rejection reason, including an oversized prompt."""
    big = json.dumps({"event_id": "big", "ts": 1, "tenant": "t", "service": "s", "model": "m",
                      "prompt": "x" * (max_prompt_bytes + 1), "response": "r", "latency_ms": 1,
                      "input_tokens": 1, "output_tokens": 1}).encode()
    kinds = MALFORMED + [(big, "prompt_too_large")]
    return [kinds[i % len(kinds)] for i in range(n)]
