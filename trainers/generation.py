"""Greedy decoding of answers, batched with left padding (the same way serving answers)."""
from __future__ import annotations

import time
from typing import Any, Sequence

import torch
from transformers import LogitsProcessorList

from trainers.copy_decoding import CopyVocabulary, logits_processor
from trainers.prompting import encode_prompt, left_pad


@torch.inference_mode()
def greedy_answers(
    model: Any, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 16,
    vocabulary: CopyVocabulary | None = None,
) -> list[tuple[str, float]]:
    """(answer text, latency in ms) per prompt. Latency is the batch's wall time divided by
    its size: the amortised cost of one answer at this batch size. With a vocabulary, JSON
    string values are copy-constrained (trainers/copy_decoding.py)."""
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    # Sorting by length cuts left padding; results are put back in the caller's order.
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out: list[tuple[str, float] | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in left_pad([encoded[i] for i in idx], pad_id).items()}
        width = batch["input_ids"].shape[1]
        extra = {}
        if vocabulary is not None:
            rules = [vocabulary.rule(prompts[i]) for i in idx]
            extra["logits_processor"] = LogitsProcessorList([logits_processor(tokenizer, rules, width)])
        t0 = time.perf_counter()
        generated = model.generate(
            **batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=pad_id, eos_token_id=tokenizer.eos_token_id, **extra,
        )
        per_example_ms = (time.perf_counter() - t0) * 1000.0 / len(idx)
        for row, i in enumerate(idx):
            text = tokenizer.decode(generated[row, width:], skip_special_tokens=True)
            out[i] = (text.strip(), per_example_ms)
    return [o for o in out if o is not None]
