"""Answer checks serving runs on every specialist answer, pure:

- AnswerForm: the form a cluster's answers take (JSON object, array, text), learnt from the
  frontier model's answers, so a specialist's answer can be judged without a reference.
- safety_flags: secrets in an answer that the prompt did not contain (a specialist must never
  invent or leak credentials, card numbers, e-mail addresses).
- FaultInjector: DEMO/TEST ONLY. Corrupts a chosen adapter's answers at a set rate, so the demo
  can show a format-error demotion. Off unless DISTILLERY_SERVE_FAULTS is set.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

from schemas import scoring


def answer_text(content: str | None, tool_calls: list[dict[str, Any]] | None) -> str:
    """The text an answer is judged by: its content, or its tool calls when it has no content."""
    if content and content.strip():
        return content
    if tool_calls:
        from serving.openai_api import tool_calls_json
        return '{"tool_calls":' + (tool_calls_json(tool_calls) or "[]") + "}"
    return content or ""


def form_of(text: str) -> str:
    value = scoring.parse_json(text)
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "text"


class AnswerForm:
    """Dominant answer form of one cluster and an exemplar of it (learn_one per reference answer)."""

    def __init__(self):
        self.counts: Counter[str] = Counter()
        self.exemplars: dict[str, str] = {}

    def learn_one(self, reference: str) -> "AnswerForm":
        if reference and reference.strip():
            form = form_of(reference)
            self.counts[form] += 1
            self.exemplars[form] = reference
        return self

    def predict_one(self) -> str | None:
        return self.counts.most_common(1)[0][0] if self.counts else None

    def exemplar(self) -> str | None:
        form = self.predict_one()
        return self.exemplars.get(form) if form else None


def served_format_valid(answer: str, exemplar: str | None) -> bool:
    """Has the answer the cluster's form? With no exemplar yet: text that opens like JSON must
    parse as JSON, and an answer must not be empty."""
    if exemplar is not None:
        return scoring.format_valid(answer, exemplar)
    stripped = (answer or "").strip()
    if not stripped:
        return False
    if stripped[0] in "{[":
        return scoring.is_json(stripped)
    return True


# ---- safety ------------------------------------------------------------------------------
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_KEYS = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{30,}|xox[bp]-[A-Za-z0-9-]{10,})\b")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _luhn(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def safety_flags(prompt: str, answer: str) -> list[str]:
    """Kinds of secret the answer holds that the prompt did not (empty list = nothing found)."""
    flags: list[str] = []
    for kind, pattern in (("email", _EMAIL), ("ssn", _SSN), ("api_key", _KEYS), ("private_key", _PRIVATE_KEY)):
        if any(m.group(0) not in prompt for m in pattern.finditer(answer)):
            flags.append(kind)
    for m in _CARD.finditer(answer):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and _luhn(digits) and digits not in re.sub(r"\D", "", prompt):
            flags.append("card_number")
            break
    return flags


# ---- fault injection (demo and tests only) ------------------------------------------------
class FaultInjector:
    """DEMO/TEST ONLY: makes an adapter's answers malformed at a given rate.

    Spec (DISTILLERY_SERVE_FAULTS): "on" enables POST /admin/faults at run time;
    "adapter_id=rate[,adapter_id=rate]" also sets initial rates ("*" matches every adapter).
    Deterministic per event id, so a replayed request gets the same fault."""

    def __init__(self, rates: dict[str, float] | None = None, enabled: bool = False):
        self.enabled = enabled or bool(rates)
        self.rates: dict[str, float] = dict(rates or {})
        self.injected = 0

    @classmethod
    def parse(cls, spec: str | None) -> "FaultInjector":
        if spec is None or not spec.strip() or spec.strip().lower() in ("off", "0", "false", "no"):
            return cls()
        from distillery.settings import fraction_map

        rates = fraction_map("DISTILLERY_SERVE_FAULTS", spec, "is not adapter_id=rate with rate in [0, 1] (or 'on')",
                             skip=("on", "1", "true", "yes"))
        return cls(rates, enabled=True)

    def set_rate(self, adapter_id: str, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate == 0.0:
            self.rates.pop(adapter_id, None)
        else:
            self.rates[adapter_id] = rate

    def rate(self, adapter_id: str) -> float:
        return self.rates.get(adapter_id, self.rates.get("*", 0.0))

    def apply(self, adapter_id: str, event_id: str, text: str) -> tuple[str, bool]:
        rate = self.rate(adapter_id) if self.enabled else 0.0
        if rate <= 0.0:
            return text, False
        h = int.from_bytes(hashlib.sha256(f"fault|{adapter_id}|{event_id}".encode()).digest()[:8], "big") / 2**64
        if h >= rate:
            return text, False
        self.injected += 1
        # a truncated answer: what a specialist does when it runs out of tokens mid-object
        stripped = text.strip()
        if stripped.startswith(("{", "[")):
            return stripped[: max(1, len(stripped) // 2)].rstrip("}]") + ",", True
        return "", True   # a text answer that came back empty
