"""How a (prompt, response) pair becomes tokens: the one prompt format trainer and serving share.

A base with a chat template (instruct models, and the shipped tiny base) gets the prompt as a
single user turn; a plain base gets a fixed text template. The target is the response plus the
tokenizer's end-of-sequence token, and only target tokens carry a loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

PLAIN_TEMPLATE = "### Instruction:\n{prompt}\n### Response:\n"
IGNORE = -100  # label value the loss skips (prompt and padding positions)


def format_prompt(tokenizer: Any, prompt: str) -> str:
    """The text the model sees before it starts answering."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    return PLAIN_TEMPLATE.format(prompt=prompt)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def _join(tokenizer: Any, prefix: list[int], target: list[int], max_len: int) -> Encoded:
    bos = tokenizer.bos_token_id
    if bos is not None and (not prefix or prefix[0] != bos) and getattr(tokenizer, "add_bos_token", False):
        prefix = [bos] + prefix
    target = (target + [tokenizer.eos_token_id])[:max_len]
    room = max_len - len(target)
    prefix = prefix[-room:] if room > 0 else []
    return Encoded(prefix + target, [IGNORE] * len(prefix) + target)


def encode_pair(tokenizer: Any, prompt: str, response: str, max_len: int) -> Encoded:
    """Prompt tokens (no loss) + response tokens + EOS (loss). Long prompts are cut from the
    left so the answer, which is what we learn, always fits."""
    return _join(tokenizer, _ids(tokenizer, format_prompt(tokenizer, prompt)), _ids(tokenizer, response), max_len)


def encode_pairs(tokenizer: Any, pairs: Sequence[tuple[str, str]], max_len: int) -> list[Encoded]:
    """encode_pair for many pairs, tokenised in two batched calls (a training set of a few
    thousand pairs: ~1 s less than one call per text)."""
    if not pairs:
        return []
    kw = {"add_special_tokens": False}
    prefixes = tokenizer([format_prompt(tokenizer, prompt) for prompt, _ in pairs], **kw)["input_ids"]
    targets = tokenizer([response for _, response in pairs], **kw)["input_ids"]
    return [_join(tokenizer, list(pre), list(tgt), max_len) for pre, tgt in zip(prefixes, targets)]


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    return _ids(tokenizer, format_prompt(tokenizer, prompt))


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors for teacher-forced training."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def left_pad(prompts: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-padded prompt batch for generation (answers start at the same column)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    return {"input_ids": ids, "attention_mask": mask}
