"""Answer comparison metrics shared by the trainer's evaluation and serving's shadow evaluation.

Pure functions of (prediction, reference) strings, plus a small streaming accumulator
(Scoreboard.update_one / .get) in the style of river's metrics.

- exact_match: equal JSON values when both parse as JSON (key order and whitespace do not
  matter), else equal after whitespace normalisation.
- field_f1: F1 over the (path, value) leaves of JSON answers; token F1 for plain text.
- json_valid: the prediction parses as JSON.
- format_valid: the prediction has the reference's form (a JSON object for an object, an array
  for an array, non-empty text for text).
- schema_match: the prediction has exactly the reference's set of field paths.
- tool_call_valid: for references that are tool calls, the prediction is a well-formed call
  of the same tool(s) with the same argument names (values are judged by EM/F1). None when
  the reference is not a tool call.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

_MISSING = object()


_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```$", re.S)
_PREFACE = re.compile(r"^[^\n{}\[\]]{1,80}:\s*\n")   # one short line of prose ending in a colon


def parse_json(text: str | None) -> Any:
    """The JSON value in `text`, or _MISSING. Chat models wrap JSON answers: a ```json fence
    around it, or one short line of prose before it ("Here is the command:"). Both are
    spelling, not content, so a JSON object or array behind them is read as that value."""
    if text is None:
        return _MISSING
    s = text.strip()
    value = _loads(_unfence(s))
    if value is _MISSING:
        body = _PREFACE.sub("", s, count=1)
        if body != s:
            inner = _loads(_unfence(body.strip()))
            if isinstance(inner, (dict, list)):
                value = inner
    return value


def _unfence(s: str) -> str:
    m = _FENCE.match(s)
    return m.group(1).strip() if m else s


def _loads(s: str) -> Any:
    if not s or s[0] not in "{[\"-0123456789tfn":
        return _MISSING
    try:
        return json.loads(s)
    except ValueError:
        return _MISSING


def is_json(text: str | None) -> bool:
    return parse_json(text) is not _MISSING


def canonical(value: Any) -> str:
    """One spelling per JSON value (sorted keys, no spaces); keeps true distinct from 1."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _norm_text(text: str) -> str:
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> bool:
    p, r = parse_json(prediction), parse_json(reference)
    if p is not _MISSING and r is not _MISSING:
        return canonical(p) == canonical(r)
    return _norm_text(prediction or "") == _norm_text(reference or "")


def leaves(value: Any, path: str = "$") -> list[tuple[str, str]]:
    """(path, canonical scalar) pairs of a JSON value; an empty container is one leaf."""
    if isinstance(value, dict):
        if not value:
            return [(path, "{}")]
        return [leaf for k in value for leaf in leaves(value[k], f"{path}.{k}")]
    if isinstance(value, list):
        if not value:
            return [(path, "[]")]
        return [leaf for i, v in enumerate(value) for leaf in leaves(v, f"{path}[{i}]")]
    return [(path, canonical(value))]


def _f1(pred: Counter, ref: Counter) -> float:
    if not pred and not ref:
        return 1.0
    common = sum((pred & ref).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def field_f1(prediction: str, reference: str) -> float:
    r = parse_json(reference)
    if r is not _MISSING and isinstance(r, (dict, list)):
        p = parse_json(prediction)
        if p is _MISSING:
            return 0.0
        return _f1(Counter(leaves(p)), Counter(leaves(r)))
    return _f1(Counter(_norm_text(prediction or "").split()), Counter(_norm_text(reference or "").split()))


def format_valid(prediction: str, reference: str) -> bool:
    r, p = parse_json(reference), parse_json(prediction)
    if r is not _MISSING and isinstance(r, dict):
        return isinstance(p, dict)
    if r is not _MISSING and isinstance(r, list):
        return isinstance(p, list)
    return bool((prediction or "").strip())


def schema_match(prediction: str, reference: str) -> bool:
    r, p = parse_json(reference), parse_json(prediction)
    if r is _MISSING or p is _MISSING:
        return False
    return sorted(path for path, _ in leaves(p)) == sorted(path for path, _ in leaves(r))


# ---- tool calls -------------------------------------------------------------------------
def tool_calls(value: Any) -> list[tuple[str, Any]] | None:
    """(name, arguments) of every call in the common encodings, or None if `value` is not a
    tool call: {"name", "arguments"|"parameters"|"args"}, {"function": {...}}, {"tool", ...},
    {"tool_calls": [...]}, or a list of calls. Arguments given as a JSON string are parsed."""
    if isinstance(value, list):
        calls = [tool_calls(v) for v in value]
        if not calls or any(c is None for c in calls):
            return None
        return [one for c in calls for one in c]  # type: ignore[union-attr]
    if not isinstance(value, dict):
        return None
    if "tool_calls" in value and isinstance(value["tool_calls"], list):
        return tool_calls(value["tool_calls"])
    if isinstance(value.get("function"), dict):
        return tool_calls(value["function"])
    name = value.get("name", value.get("tool"))
    if not isinstance(name, str):
        return None
    for key in ("arguments", "parameters", "args"):
        if key in value:
            args = value[key]
            if isinstance(args, str):
                parsed = parse_json(args)
                args = parsed if parsed is not _MISSING else args
            return [(name, args)]
    return None


def tool_call_valid(prediction: str, reference: str | None = None, allowed: Iterable[str] | None = None) -> bool | None:
    """None when the reference is given and is not a tool call (the metric does not apply)."""
    ref_calls = None
    if reference is not None:
        ref_calls = tool_calls(parse_json(reference))
        if ref_calls is None:
            return None
    pv = parse_json(prediction)
    calls = tool_calls(pv) if pv is not _MISSING else None
    if not calls:
        return False
    names = set(allowed) if allowed is not None else None
    for name, args in calls:
        if not name.strip() or not isinstance(args, dict):
            return False
        if names is not None and name not in names:
            return False
    if ref_calls is not None:
        # Same tools, each with the argument names the reference used for it.
        if sorted(n for n, _ in calls) != sorted(n for n, _ in ref_calls):
            return False
        want = {n: set(a) if isinstance(a, dict) else None for n, a in ref_calls}
        for name, args in calls:
            if want.get(name) is not None and set(args) != want[name]:
                return False
    return True


# ---- streaming aggregate ------------------------------------------------------------------
METRICS = ("exact_match", "field_f1", "json_valid", "format_valid", "schema_match")


def score_one(prediction: str, reference: str) -> dict[str, float]:
    """Every metric for one answer (1.0/0.0 for booleans); tool_call_valid only when it applies."""
    out = {
        "exact_match": float(exact_match(prediction, reference)),
        "field_f1": field_f1(prediction, reference),
        "json_valid": float(is_json(prediction)),
        "format_valid": float(format_valid(prediction, reference)),
        "schema_match": float(schema_match(prediction, reference)),
    }
    tc = tool_call_valid(prediction, reference)
    if tc is not None:
        out["tool_call_valid"] = float(tc)
    return out


@dataclass
class Scoreboard:
    """Running means of score_one() over a stream of answers, plus latency."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    n: int = 0

    def update_one(self, prediction: str, reference: str, latency_ms: float | None = None) -> dict[str, float]:
        scores = score_one(prediction, reference)
        if latency_ms is not None:
            scores = {**scores, "latency_ms": float(latency_ms)}
        for k, v in scores.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.n += 1
        return scores

    def get(self) -> dict[str, float]:
        out = {k: self.sums[k] / self.counts[k] for k in self.sums}
        out["n"] = float(self.n)
        return out
