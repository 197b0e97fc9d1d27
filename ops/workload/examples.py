"""Prompt -> answer pairs for the trainer: short prompts, canonical JSON targets."""
from __future__ import annotations

import random
from typing import NamedTuple

from .families import FAMILIES, SAMPLERS

MAX_WORDS = 40


class Example(NamedTuple):
    prompt: str
    answer: str      # canonical JSON (sorted keys, compact); prose for free-text families
    family: str


def _check_family(family: str) -> None:
    if family not in SAMPLERS:
        raise ValueError(f"unknown task family {family!r}; choose from {list(FAMILIES)}")


def iter_examples(family: str, seed: int | str = 0, typo_rate: float = 0.02, max_words: int = MAX_WORDS):
    """An endless deterministic stream of examples with prompts shorter than ``max_words``."""
    _check_family(family)
    rng = random.Random(f"distillery-examples:{family}:{seed}")
    sample = SAMPLERS[family]
    while True:
        task = sample(rng, typo_rate)
        if len(task.prompt.split()) < max_words:
            yield Example(task.prompt, task.reference, family)


def make_examples(family: str, n: int, seed: int | str = 0, typo_rate: float = 0.02,
                  max_words: int = MAX_WORDS) -> list[Example]:
    """``n`` examples of ``family`` (a deterministic function of the arguments)."""
    stream = iter_examples(family, seed, typo_rate, max_words)
    return [next(stream) for _ in range(n)]


def make_split(family: str, n_train: int, n_eval: int, seed: int | str = 0,
               typo_rate: float = 0.02, disjoint_answers: bool = True) -> tuple[list[Example], list[Example]]:
    """Train and eval sets with no prompt in common; with ``disjoint_answers`` no eval answer
    occurs in train either, so eval measures generalisation to unseen slot values rather
    than recall. Duplicate prompts within train are dropped."""
    stream = iter_examples(family, seed, typo_rate)
    budget = 20 * n_train + 10_000      # draws before we call the request impossible
    train: list[Example] = []
    seen_prompts: set[str] = set()
    seen_answers: set[str] = set()
    while len(train) < n_train:
        budget -= 1
        if budget < 0:
            raise ValueError(f"{family}: could not draw {n_train} distinct training prompts")
        ex = next(stream)
        if ex.prompt not in seen_prompts:
            seen_prompts.add(ex.prompt)
            seen_answers.add(ex.answer)
            train.append(ex)
    evaluation: list[Example] = []
    budget = 200 * n_eval + 2_000
    while len(evaluation) < n_eval:
        budget -= 1
        if budget < 0:
            raise ValueError(
                f"{family}: only {len(evaluation)} of {n_eval} eval examples have answers unseen in "
                f"{n_train} training examples (the family has few distinct answers); "
                "ask for fewer, or pass disjoint_answers=False")
        ex = next(stream)
        if ex.prompt in seen_prompts or (disjoint_answers and ex.answer in seen_answers):
            continue
        seen_prompts.add(ex.prompt)
        evaluation.append(ex)
    return train, evaluation
