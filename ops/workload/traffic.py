"""How agent services call frontier models: who calls, which model, how long, at what price,
and how it ends. Pure functions of an rng and a task; no I/O."""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Mapping

from .families import Task

# USD per 1k tokens (public list prices, late 2024). Override with ``prices=``.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o": {"input_per_1k": 0.0025, "output_per_1k": 0.010},
    "gpt-4o-mini": {"input_per_1k": 0.00015, "output_per_1k": 0.0006},
    "claude-3-5-sonnet": {"input_per_1k": 0.003, "output_per_1k": 0.015},
    "claude-3-5-haiku": {"input_per_1k": 0.0008, "output_per_1k": 0.004},
    "gpt-4.1": {"input_per_1k": 0.002, "output_per_1k": 0.008},
}


@dataclass(frozen=True)
class LatencyModel:
    """Time to first token plus per-output-token time, with lognormal jitter and a rare tail."""

    first_token_ms: float
    per_token_ms: float
    sigma: float = 0.25
    tail_prob: float = 0.01
    tail_factor: float = 4.0

    def sample(self, rng: random.Random, output_tokens: int) -> float:
        base = self.first_token_ms + self.per_token_ms * output_tokens
        ms = base * rng.lognormvariate(0.0, self.sigma)
        if rng.random() < self.tail_prob:
            ms *= self.tail_factor
        return round(ms, 1)


LATENCY: dict[str, LatencyModel] = {
    "gpt-4o": LatencyModel(420.0, 11.0),
    "gpt-4o-mini": LatencyModel(300.0, 6.0),
    "claude-3-5-sonnet": LatencyModel(650.0, 14.0),
    "claude-3-5-haiku": LatencyModel(380.0, 8.0),
    "gpt-4.1": LatencyModel(450.0, 10.0),
}
DEFAULT_LATENCY = LatencyModel(500.0, 12.0)

# Which agent services send each family (a service may serve several families, so the
# service name alone does not give the task away), with each service's system-prompt size.
SERVICES: dict[str, tuple[tuple[str, float], ...]] = {
    "dns": (("netops-agent", 0.6), ("dns-copilot", 0.3), ("it-assistant", 0.1)),
    "user_admin": (("iam-agent", 0.6), ("helpdesk-bot", 0.3), ("it-assistant", 0.1)),
    "file_share": (("fileshare-agent", 0.7), ("it-assistant", 0.3)),
    "ticket_triage": (("support-triage", 0.7), ("helpdesk-bot", 0.3)),
    "open_question": (("chat-assistant", 0.6), ("research-agent", 0.25), ("it-assistant", 0.15)),
    "calendar": (("scheduler-agent", 0.7), ("chat-assistant", 0.3)),
}
SYSTEM_PROMPT_TOKENS: dict[str, int] = {
    "netops-agent": 180, "dns-copilot": 120, "it-assistant": 260, "iam-agent": 150,
    "helpdesk-bot": 210, "fileshare-agent": 140, "support-triage": 230, "chat-assistant": 90,
    "research-agent": 320, "scheduler-agent": 110,
}
# The labels a service puts in task_hint when it bothers to (most calls carry none).
HINTS: dict[tuple[str, str], str] = {
    ("netops-agent", "dns"): "dns-change", ("dns-copilot", "dns"): "dns-record",
    ("iam-agent", "user_admin"): "iam", ("helpdesk-bot", "user_admin"): "account-request",
    ("fileshare-agent", "file_share"): "share-acl", ("support-triage", "ticket_triage"): "triage",
    ("helpdesk-bot", "ticket_triage"): "ticket", ("chat-assistant", "open_question"): "chat",
    ("research-agent", "open_question"): "research", ("scheduler-agent", "calendar"): "scheduling",
}
AGENT_VERSIONS = ("1.4.2", "1.4.3", "1.5.0", "2.0.1", "2.1.0")
REGIONS = ("eu-west-1", "us-east-1", "us-west-2", "ap-southeast-1")


def tokens(text: str) -> int:
    """The usual ~4 characters per token estimate."""
    return max(1, math.ceil(len(text) / 4))


def price_of(prices: Mapping[str, Mapping[str, float]], model: str, input_tokens: int,
             output_tokens: int) -> float | None:
    """Cost in USD from a price table keyed by model. Accepts per-1k (``input_per_1k``) or
    per-1M (``input_per_1m``) token prices; None when the model is not in the table."""
    row = prices.get(model)
    if row is None:
        return None
    if "input_per_1k" in row:
        cost = input_tokens * row["input_per_1k"] / 1e3 + output_tokens * row["output_per_1k"] / 1e3
    elif "input_per_1m" in row:
        cost = input_tokens * row["input_per_1m"] / 1e6 + output_tokens * row["output_per_1m"] / 1e6
    else:
        return None
    return round(cost, 8)


def pick(rng: random.Random, weighted: Mapping[str, float] | tuple[tuple[str, float], ...]) -> str:
    items = list(weighted.items()) if isinstance(weighted, Mapping) else list(weighted)
    return rng.choices([k for k, _ in items], weights=[w for _, w in items])[0]


def sample_outcome(rng: random.Random, success_rate: float) -> str:
    """The true outcome: success with ``success_rate``, else failure (60%), escalation (25%)
    or an unreported result (15%)."""
    if rng.random() < success_rate:
        return "success"
    return rng.choices(("failure", "escalated", "unknown"), weights=(60, 25, 15))[0]


def _corrupt(rng: random.Random, answer: dict) -> dict:
    """A plausible wrong command: one slot dropped or changed, as a weak model would do.
    Always differs from ``answer``, so failures are measurably wrong."""
    wrong = dict(answer)
    key = rng.choice([k for k in wrong if k != "action"] or ["action"])
    value = wrong[key]
    if rng.random() < 0.3 and key != "action":
        del wrong[key]
    elif isinstance(value, int):
        wrong[key] = value * 10 + 1
    else:
        text = str(value)
        half = text[: len(text) // 2]
        wrong[key] = half if half and rng.random() < 0.5 else text + "s"
    return wrong


def _format_json(rng: random.Random, answer: dict) -> str:
    """How a frontier model writes a JSON reply: mostly bare, sometimes fenced or prefaced."""
    r = rng.random()
    if r < 0.8:
        return json.dumps(answer, separators=(",", ":"))
    if r < 0.9:
        return "```json\n" + json.dumps(answer, indent=2) + "\n```"
    return "Here is the command:\n" + json.dumps(answer)


ESCALATIONS = (
    "I can't complete this safely without confirmation from a human operator; I've escalated the request.",
    "This change needs approval. Escalating to the on-call engineer.",
    "The request is ambiguous, so I've handed it to a human to confirm the details.",
)
FAILURE_TEXTS = (
    "Sorry, I couldn't determine what you want me to do.",
    "Error: the request could not be parsed.",
    "I'm not able to help with that.",
)


def respond(rng: random.Random, task: Task, outcome: str) -> tuple[str, str | None]:
    """(response text, tool_calls JSON string or None) for a task ending in ``outcome``."""
    if outcome == "escalated":
        return rng.choice(ESCALATIONS), None
    if task.answer is None:     # free-text family
        if outcome == "failure":
            cut = task.reference[: max(40, len(task.reference) // 5)]
            return rng.choice((cut + "...", rng.choice(FAILURE_TEXTS))), None
        return task.reference, None
    if outcome == "failure":
        if rng.random() < 0.25:
            return rng.choice(FAILURE_TEXTS), None
        answer = _corrupt(rng, task.answer)
    else:
        answer = task.answer
    text = _format_json(rng, answer)
    tool_calls = None
    if rng.random() < 0.7:
        tool_calls = json.dumps([{"name": task.tool, "arguments": answer}], separators=(",", ":"))
    return text, tool_calls
