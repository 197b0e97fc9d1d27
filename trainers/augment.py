"""Slot-swap augmentation: more training pairs from a small snapshot, by exchanging the values
an answer copies out of its prompt. Pure.

A specialist for a request-to-JSON task mostly copies spans (a host name, a login, a path)
from the request into fields. Trained for thirty passes over a few hundred examples, a small
model memorises those spans instead of learning to copy them, and on new requests it writes
plausible values it has seen ("hostners" for "partners"). Swapping such a value, in the prompt
and in the answer at once, for another value of the same field and the same shape yields a
new, equally valid pair, and many of them teach the copying.

Only values that are safe to swap are touched:
- string leaves of a JSON answer that occur in the prompt as a whole token (not inside a
  longer word), so replacing every occurrence keeps prompt and answer consistent;
- fields with many distinct values (identifiers, not enums: swapping a record type or an
  action would break the rules that tie it to other fields);
- a replacement of the same shape (placeholder, dotted name, path, text with spaces...).
Prose answers, and values the teacher derived rather than copied (a TTL from "2h"), are
left as they are. The held-out split is never augmented: evaluation stays on real traffic.
"""
from __future__ import annotations

import json
import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from schemas.scoring import parse_json
from trainers.copy_decoding import WORD_CHARS, occurs, string_leaves
from trainers.dataset import Example

_PLACEHOLDER = re.compile(r"^<[A-Z_]+_\d+>$")


@dataclass(frozen=True)
class AugmentPolicy:
    target_examples: int = 4000     # grow a snapshot to about this many training pairs
    max_variants: int = 12          # per original example
    min_distinct_ratio: float = 0.5  # a field is swappable when most of its values differ
    min_field_count: int = 8        # ... and it was seen often enough to judge that


def shape(value: str) -> tuple:
    """Values of one shape can stand in for each other without looking out of place."""
    if _PLACEHOLDER.match(value):
        return ("placeholder",)
    return ("." in value, "/" in value, " " in value, "@" in value, "=" in value, value[:1].isdigit())


def _replace(value: Any, pattern: re.Pattern, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _replace(v, pattern, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, pattern, mapping) for v in value]
    if isinstance(value, str):
        return pattern.sub(lambda m: mapping[m.group(0)], value)
    return value


def swappable_fields(pairs: Sequence[tuple[str, Any]], policy: AugmentPolicy) -> dict[str, dict[tuple, list[str]]]:
    """field path -> shape -> distinct values copied from prompts, for the (field, shape)
    pairs that qualify: one field may hold an enum-like placeholder and free host names."""
    seen: dict[tuple[str, tuple], list[str]] = defaultdict(list)
    for prompt, answer in pairs:
        for path, value in string_leaves(answer):
            if value.strip() and occurs(value, prompt):
                seen[(path, shape(value))].append(value)
    out: dict[str, dict[tuple, list[str]]] = defaultdict(dict)
    for (path, kind), values in seen.items():
        distinct = sorted(set(values))
        if len(values) >= policy.min_field_count and len(distinct) / len(values) >= policy.min_distinct_ratio:
            out[path][kind] = distinct
    return dict(out)


def augment(train: Sequence[Example], *, seed: int = 0, policy: AugmentPolicy = AugmentPolicy()) -> list[Example]:
    """The original examples, then slot-swapped variants (marked meta["augmented"]), up to
    about policy.target_examples in all. Returns the input unchanged when nothing qualifies."""
    if not train:
        return []
    variants = min(policy.max_variants, math.ceil(policy.target_examples / len(train)) - 1)
    if variants <= 0:           # large enough already
        return list(train)
    parsed = [(ex, parse_json(ex.response)) for ex in train]
    json_pairs = [(ex.prompt, ans) for ex, ans in parsed if isinstance(ans, (dict, list))]
    fields = swappable_fields(json_pairs, policy) if json_pairs else {}
    if not fields:
        return list(train)
    rng = random.Random(f"augment:{seed}")
    out = list(train)
    known = {(ex.prompt, ex.response) for ex in train}
    for ex, answer in parsed:
        if not isinstance(answer, (dict, list)):
            continue
        slots = {}
        for path, value in string_leaves(answer):
            pool = fields.get(path, {}).get(shape(value))
            if pool and value not in slots and occurs(value, ex.prompt):
                slots[value] = pool
        if not slots:
            continue
        # values that contain each other cannot be swapped independently (the longer one wins)
        slots = {v: pool for v, pool in slots.items() if not any(v != o and v in o for o in slots)}
        for _ in range(variants):
            mapping = {}
            for value, pool in slots.items():
                choices = [c for c in pool if c != value and c not in mapping.values()]
                if choices:
                    mapping[value] = rng.choice(choices)
            if not mapping:
                break
            pattern = re.compile(rf"(?<![{WORD_CHARS}])(?:{'|'.join(re.escape(v) for v in sorted(mapping, key=len, reverse=True))})(?![{WORD_CHARS}])")
            prompt = pattern.sub(lambda m: mapping[m.group(0)], ex.prompt)
            response = json.dumps(_replace(answer, pattern, mapping), ensure_ascii=False, separators=(",", ":"))
            if (prompt, response) in known:
                continue
            known.add((prompt, response))
            out.append(Example(prompt, response, ex.split, {**ex.meta, "augmented": True}))
    return out
