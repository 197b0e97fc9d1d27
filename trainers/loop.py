"""A lean supervised training loop (AdamW, warmup + linear decay, gradient clipping) shared by
adapter training and the fixture's pretraining. Lean on purpose: on a CPU the Trainer's
machinery costs more than the tiny models it would train, and we want exact control of the
progress report (step, total, loss, tokens/s, eta)."""
from __future__ import annotations

import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from trainers.prompting import IGNORE, Encoded, collate


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    loss: float            # mean loss over the steps since the previous report
    tokens_per_s: float    # non-padding tokens through forward+backward per second so far
    eta_s: float
    elapsed_s: float


@dataclass(frozen=True)
class LoopResult:
    steps: int
    final_loss: float
    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


ProgressFn = Callable[[Progress], None]


def total_steps(n_examples: int, batch_size: int, epochs: float) -> int:
    return max(1, math.ceil(epochs * math.ceil(n_examples / batch_size)))


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warmup to `peak`, then linear decay to 10% of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return peak * (1.0 - 0.9 * frac)


def _batches(examples: Sequence[Encoded], batch_size: int, rng: random.Random, length_pool: int = 32):
    """Endless shuffled epochs; within a pool of `length_pool` batches, similar lengths go
    together to waste less compute on padding (on the benchmark task the slower half of a batch,
    padding included, is 1.4% above half the batch's real tokens with pools of 32, 5.2% with
    pools of 8: docs/trainer.md)."""
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        pool = batch_size * length_pool
        for start in range(0, len(order), pool):
            chunk = sorted(order[start:start + pool], key=lambda i: len(examples[i].input_ids))
            groups = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
            rng.shuffle(groups)
            for g in groups:
                yield [examples[i] for i in g]


# Architectures whose logits are exactly the output head applied to the decoder's last hidden
# state (no soft-capping, scaling or extra bias), so the head may be applied to some positions only.
PLAIN_HEAD_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def _plain_parts(model: Any) -> tuple[Any, Any] | None:
    """(decoder, output head) of a plain causal LM (through a peft wrapper), else None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None
    decoder = getattr(base, getattr(base, "base_model_prefix", ""), None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    return (decoder, head) if decoder is not None and head is not None else None


def answer_loss(model: Any, batch: dict[str, torch.Tensor], decoder: Callable | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over answer tokens, the output head computed at those
    positions only. Same value as the model's own loss, but most positions are prompt, and on a
    small base the head and its log-softmax over the vocabulary are a large share of a step
    (~10% faster on the shipped base). Other architectures use the model's own loss.
    `decoder`: a stand-in for the model's decoder on right-padded batches (trainers/lean_decoder.py)."""
    parts = _plain_parts(model)
    if parts is None:
        return model(**batch).loss
    own, head = parts
    decoder = decoder if decoder is not None else own
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     use_cache=False).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    logits = head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, targets[keep])


def _answer_tokens(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def _split(batch: Sequence[Encoded], parts: int) -> list[Sequence[Encoded]]:
    size = math.ceil(len(batch) / parts)
    return [batch[i:i + size] for i in range(0, len(batch), size)]


def _parallel_backward(model: Any, parts: list[dict[str, torch.Tensor]], params: list[torch.nn.Parameter],
                       pool: ThreadPoolExecutor, decoder: Callable | None = None) -> torch.Tensor:
    """Forward and backward of each part of one batch on its own thread; sets every
    parameter's .grad to the whole batch's gradient and returns its loss. Each part's loss is
    weighted by its share of the answer tokens, so the sum is the mean over the whole batch.
    Gradients come back from autograd.grad and are summed here, in a fixed order: concurrent
    backward calls must not accumulate into the same .grad (torch: not thread-safe)."""
    total = sum(_answer_tokens(p) for p in parts)

    def run(part: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple]:
        share = _answer_tokens(part) / max(total, 1)
        loss = answer_loss(model, part, decoder) * share
        return loss.detach(), torch.autograd.grad(loss, params, allow_unused=True)

    done = list(pool.map(run, parts))
    for i, p in enumerate(params):
        grads = [g[i] for _, g in done if g[i] is not None]
        p.grad = torch.stack(grads).sum(0) if len(grads) > 1 else (grads[0] if grads else None)
    return sum(loss for loss, _ in done)


def train_loop(
    model: Any,
    examples: Sequence[Encoded],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    pad_id: int,
    warmup: int | None = None,
    weight_decay: float = 0.0,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
    report_every: int = 10,
    lr_scales: Sequence[tuple[Sequence[torch.nn.Parameter], float]] = (),
    workers: int = 1,
    fused_optimizer: bool = True,
    decoder: Callable | None = None,
    length_pool: int = 32,
) -> LoopResult:
    """`lr_scales`: (parameters, factor) pairs whose learning rate is `factor` x the schedule's
    (e.g. a freshly trained output head next to low-rank adapters); the rest get 1x.
    `workers` > 1 (CPU): each batch is cut into that many parts whose forward and backward
    passes run at once, one torch thread each. On a small model this beats torch's own
    intra-op threads, which wait for each other inside every small op (docs/trainer.md).
    `fused_optimizer`: AdamW as one fused kernel per step where the device has it.
    `decoder`: see `answer_loss` (the batches here are right-padded).
    `length_pool`: batches per length-sorted pool (`_batches`)."""
    if not examples:
        raise ValueError("no training examples")
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    scaled = {id(p): f for group, f in lr_scales for p in group if p.requires_grad}
    groups = [{"params": [p for p in params if id(p) not in scaled], "scale": 1.0}]
    for f in sorted(set(scaled.values())):
        groups.append({"params": [p for p in params if scaled.get(id(p)) == f], "scale": f})
    # One fused kernel per step instead of a Python loop over the parameters (~3% of a tiny
    # base's step on a CPU); the for-each fallback covers devices without it.
    fused = fused_optimizer and all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.bfloat16, torch.float16)
                for p in params)
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, weight_decay=weight_decay,
                            **({"fused": True} if fused else {}))
    warm = warmup if warmup is not None else max(1, steps // 20)
    device = next(model.parameters()).device
    model.train()
    t0 = time.perf_counter()
    tokens, window, last_loss = 0, [], float("nan")
    it = _batches(examples, batch_size, random.Random(seed), length_pool)
    workers = max(1, min(int(workers), batch_size)) if device.type == "cpu" else 1
    pool = ThreadPoolExecutor(workers, thread_name_prefix="train") if workers > 1 else None
    threads = torch.get_num_threads()
    if pool is not None:
        torch.set_num_threads(1)    # process-wide: restored below
    try:
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, lr, warm) * group["scale"]
            picked = next(it)
            if pool is not None and len(picked) > 1:
                parts = [{k: v.to(device) for k, v in collate(part, pad_id).items()} for part in _split(picked, workers)]
                loss = _parallel_backward(model, parts, params, pool, decoder)
                tokens += sum(int(p["attention_mask"].sum()) for p in parts)
            else:
                batch = {k: v.to(device) for k, v in collate(picked, pad_id).items()}
                loss = answer_loss(model, batch, decoder)
                loss.backward()
                tokens += int(batch["attention_mask"].sum())
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            window.append(float(loss.detach()))
            done = step + 1
            if progress is not None and (done % report_every == 0 or done == steps):
                elapsed = time.perf_counter() - t0
                last_loss = sum(window) / len(window)
                window = []
                progress(Progress(done, steps, last_loss, tokens / elapsed, elapsed / done * (steps - done), elapsed))
            elif done == steps:
                last_loss = sum(window) / len(window)
    finally:
        if pool is not None:
            pool.shutdown()
            torch.set_num_threads(threads)
    model.eval()
    return LoopResult(steps, last_loss, tokens, time.perf_counter() - t0)
