"""Held-out evaluation: greedy answers scored against the recorded teacher answers, for the
adapter and, beside it, the base model (the same weights with the adapter switched off)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from schemas.scoring import Scoreboard
from trainers.copy_decoding import CopyVocabulary
from trainers.dataset import Example
from trainers.generation import greedy_answers


@dataclass
class EvalReport:
    metrics: dict[str, float]
    answers: list[str] = field(default_factory=list)


def answer_budget(tokenizer: Any, references: Sequence[str], cap: int = 512) -> int:
    """max_new_tokens: the longest reference plus slack, so a correct answer is never cut."""
    longest = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references)
    return min(cap, longest + 16)


def evaluate_model(model: Any, tokenizer: Any, examples: Sequence[Example], *, batch_size: int = 16,
                   max_new_tokens: int | None = None, vocabulary: CopyVocabulary | None = None) -> EvalReport:
    if not examples:
        raise ValueError("no held-out examples to evaluate on")
    refs = [e.response for e in examples]
    budget = max_new_tokens or answer_budget(tokenizer, refs)
    answers = greedy_answers(model, tokenizer, [e.prompt for e in examples], max_new_tokens=budget,
                             batch_size=batch_size, vocabulary=vocabulary)
    board = Scoreboard()
    for (text, ms), ref in zip(answers, refs):
        board.update_one(text, ref, ms)
    metrics = board.get()
    metrics["eval_batch_size"] = float(batch_size)
    return EvalReport(metrics, [a for a, _ in answers])


def evaluate_adapter_and_base(peft_model: Any, tokenizer: Any, examples: Sequence[Example], *,
                              batch_size: int = 16, vocabulary: CopyVocabulary | None = None) -> dict[str, dict[str, float]]:
    """{"adapter": metrics, "base": metrics} on the same examples with greedy decoding.

    With a copy vocabulary the adapter is scored with free and with copy-constrained decoding
    (both kept, as "adapter_free_decoding" / "adapter_copy_decoding"); "adapter" is the better
    of the two by exact match (copy on a tie), and its "copy_decoding" flag says which."""
    adapter = evaluate_model(peft_model, tokenizer, examples, batch_size=batch_size)
    adapter.metrics["copy_decoding"] = 0.0
    sides: dict[str, dict[str, float]] = {}
    if vocabulary is not None:
        copy = evaluate_model(peft_model, tokenizer, examples, batch_size=batch_size, vocabulary=vocabulary)
        copy.metrics["copy_decoding"] = 1.0
        sides = {"adapter_free_decoding": adapter.metrics, "adapter_copy_decoding": copy.metrics}
        if copy.metrics["exact_match"] >= adapter.metrics["exact_match"]:
            adapter = copy
    ctx = peft_model.disable_adapter() if hasattr(peft_model, "disable_adapter") else contextlib.nullcontext()
    with ctx:
        base = evaluate_model(peft_model, tokenizer, examples, batch_size=batch_size)
    return {"adapter": adapter.metrics, "base": base.metrics, **sides}


def flat_metrics(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"adapter": {...}, "base": {...}} -> {"adapter_exact_match": ..., "base_exact_match": ...,
    "exact_match_gain": ...}: the map carried by trained/registry events."""
    out = {f"{side}_{k}": float(v) for side, m in scores.items() for k, v in m.items()}
    if "adapter" in scores and "base" in scores:
        for k in ("exact_match", "field_f1", "format_valid"):
            if k in scores["adapter"] and k in scores["base"]:
                out[f"{k}_gain"] = scores["adapter"][k] - scores["base"][k]
    return out
