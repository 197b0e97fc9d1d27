"""Assembles tasks into InferenceEvent dicts (schemas/inference_event.v1.avsc), with the
ground truth (family labels, canonical answers, planted PII, duplicate links) on the side."""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from . import labels, pii, traffic
from .families import FAMILIES, SAMPLERS, Task, canonical_json

# 2026-01-05 09:00:00 UTC: a fixed default so that a seed fixes every field, ts included.
DEFAULT_START_TS = 1_767_603_600_000
DEFAULT_TENANTS: dict[str, float] = {"acme": 0.55, "globex": 0.3, "initech": 0.15}
DEFAULT_FAMILY_WEIGHTS: dict[str, float] = {"dns": 0.25, "user_admin": 0.2, "file_share": 0.15,
                                            "ticket_triage": 0.2, "open_question": 0.2}
DEFAULT_SUCCESS = 0.95
FREE_TEXT_SUCCESS = 0.9

FamilySpec = Sequence[str] | Mapping[str, float] | None


@dataclass
class Workload:
    """Events plus everything the generator knows about them, aligned by index."""

    events: list[dict] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)            # task family per event
    answers: list[str | None] = field(default_factory=list)    # canonical JSON (None: free text)
    duplicate_of: list[str | None] = field(default_factory=list)  # original event_id for near-dups
    pii: list[tuple[str, ...]] = field(default_factory=list)   # canary values planted per event

    @property
    def canaries(self) -> list[str]:
        """Every distinct planted PII string, in first-seen order."""
        seen: dict[str, None] = {}
        for values in self.pii:
            for v in values:
                seen.setdefault(v, None)
        return list(seen)

    def extend(self, other: "Workload") -> None:
        for name in ("events", "labels", "answers", "duplicate_of", "pii"):
            getattr(self, name).extend(getattr(other, name))


def family_weights(families: FamilySpec) -> dict[str, float]:
    if families is None:
        return dict(DEFAULT_FAMILY_WEIGHTS)
    weights = dict(families) if isinstance(families, Mapping) else {f: 1.0 for f in families}
    unknown = sorted(set(weights) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown task families {unknown}; choose from {list(FAMILIES)}")
    if not weights or sum(weights.values()) <= 0:
        raise ValueError("families must name at least one family with a positive weight")
    return weights


def default_model_mix(frontier_model: str) -> dict[str, float]:
    """Most calls go to ``frontier_model``; a minority of services use a second frontier model."""
    other = "gpt-4o" if frontier_model.startswith("claude") else "claude-3-5-sonnet"
    return {frontier_model: 0.85, other: 0.15} if other != frontier_model else {frontier_model: 1.0}


def near_duplicate(rng: random.Random, prompt: str) -> str:
    """A tiny edit that keeps every slot value (and so the answer) intact."""
    kind = rng.randrange(4)
    if kind == 0:
        return prompt + rng.choice(("?", ".", " please", " thanks", "!!", " (again)"))
    if kind == 1:
        return rng.choice(("retry: ", "again: ", "hi, ", "re: ")) + prompt
    if kind == 2 and " " in prompt:
        spaces = [i for i, ch in enumerate(prompt) if ch == " "]
        i = rng.choice(spaces)
        return prompt[:i] + "  " + prompt[i + 1:]
    return prompt.rstrip(".!") if prompt[-1:] in ".!" else prompt + "."


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate_workload(
    n: int,
    seed: int | str = 0,
    families: FamilySpec = None,
    tenant_mix: Mapping[str, float] | None = None,
    pii_rate: float = 0.1,
    duplicate_rate: float = 0.05,
    start_ts: int | None = None,
    frontier_model: str = "gpt-4o",
    prices: Mapping[str, Mapping[str, float]] | None = None,
    model_mix: Mapping[str, float] | None = None,
    success_rates: Mapping[str, float] | None = None,
    hint_rate: float = 0.15,
    unpriced_rate: float = 0.3,
    typo_rate: float = 0.02,
    rate_per_s: float = 5.0,
) -> Workload:
    """``n`` events, a deterministic function of all arguments (``start_ts`` None means
    DEFAULT_START_TS). Every generated event_id is registered in the label side table."""
    if n < 0:
        raise ValueError("n must be >= 0")
    for name, rate in (("pii_rate", pii_rate), ("duplicate_rate", duplicate_rate),
                       ("hint_rate", hint_rate), ("unpriced_rate", unpriced_rate), ("typo_rate", typo_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name}={rate} must be between 0 and 1")
    rng = random.Random(f"distillery-workload:{seed}")
    weights = family_weights(families)
    tenants = dict(tenant_mix or DEFAULT_TENANTS)
    models = dict(model_mix or default_model_mix(frontier_model))
    price_table = traffic.DEFAULT_PRICES if prices is None else prices
    success = dict(success_rates or {})
    ts = DEFAULT_START_TS if start_ts is None else int(start_ts)
    mean_gap_ms = 1000.0 / rate_per_s

    out = Workload()
    originals: list[tuple[Task, str, str, tuple[str, ...]]] = []   # task, prompt, event_id, pii
    for _ in range(n):
        ts += int(rng.expovariate(1.0 / mean_gap_ms))
        event_id = _event_id(rng)
        if originals and rng.random() < duplicate_rate:
            task, orig_prompt, orig_id, planted = rng.choice(originals[-500:])
            prompt, dup_of = near_duplicate(rng, orig_prompt), orig_id
        else:
            family = traffic.pick(rng, weights)
            task = SAMPLERS[family](rng, typo_rate)
            prompt, dup_of, planted = task.prompt, None, ()
            if rng.random() < pii_rate:
                prompt, canaries = pii.plant(rng, prompt)
                planted = tuple(c.value for c in canaries)
            originals.append((task, prompt, event_id, planted))
        family = task.family
        service = traffic.pick(rng, traffic.SERVICES[family])
        model = traffic.pick(rng, models)
        default_rate = FREE_TEXT_SUCCESS if task.answer is None else DEFAULT_SUCCESS
        outcome = traffic.sample_outcome(rng, success.get(family, default_rate))
        response, tool_calls = traffic.respond(rng, task, outcome)
        if planted and task.answer is None and rng.random() < 0.3:
            # Free-text replies sometimes echo personal data back (a greeting, a quote).
            response = f"Re your note ({planted[0]}):\n\n{response}"
        input_tokens = traffic.tokens(prompt) + traffic.SYSTEM_PROMPT_TOKENS.get(service, 100)
        output_tokens = traffic.tokens(response)
        latency = traffic.LATENCY.get(model, traffic.DEFAULT_LATENCY).sample(rng, output_tokens)
        cost = None if rng.random() < unpriced_rate else traffic.price_of(price_table, model, input_tokens, output_tokens)
        hint = traffic.HINTS.get((service, family)) if rng.random() < hint_rate else None
        event = {
            "event_id": event_id,
            "ts": ts,
            "tenant": traffic.pick(rng, tenants),
            "service": service,
            "model": model,
            "prompt": prompt,
            "response": response,
            "latency_ms": latency,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost,
            "outcome": outcome,
            "tool_calls": tool_calls,
            "task_hint": hint,
            "metadata": {
                "region": rng.choice(traffic.REGIONS),
                "agent_version": rng.choice(traffic.AGENT_VERSIONS),
                "session_id": f"{rng.getrandbits(48):012x}",
            },
        }
        out.events.append(event)
        out.labels.append(family)
        out.answers.append(canonical_json(task.answer) if task.answer is not None else None)
        out.duplicate_of.append(dup_of)
        out.pii.append(planted)
    labels.register((e["event_id"] for e in out.events), out.labels)
    return out


def generate_events(n: int, seed: int | str = 0, **kwargs) -> list[dict]:
    """InferenceEvent dicts only. Keyword arguments as for `generate_workload`."""
    return generate_workload(n, seed, **kwargs).events


def generate_events_with_canaries(n: int, seed: int | str = 0, **kwargs) -> tuple[list[dict], list[str]]:
    """(events, every distinct PII string planted in them) for leak scans."""
    w = generate_workload(n, seed, **kwargs)
    return w.events, w.canaries


def generate_labelled(n: int, seed: int | str = 0, **kwargs) -> tuple[list[dict], list[str]]:
    """(events, task family of each event) for clustering-quality benchmarks."""
    w = generate_workload(n, seed, **kwargs)
    return w.events, w.labels
