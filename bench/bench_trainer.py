"""Trainer benchmark: LoRA on the shipped tiny base, on a deterministic natural-language ->
JSON task from ops/workload (DNS management by default), measured against baselines run in
the same process:

  base model   the same weights with the adapter switched off, on the same held-out split
               (exact match, field F1, format validity, latency): what the adapter adds;
  full FT      full-weight fine-tuning for a few steps at the same batch size: what LoRA's
               training throughput (tokens/s) costs or saves.

Held-out prompts and answers are disjoint from the training ones (ops.workload.make_split).
Target: adapter exact match >= 0.90 where the base scores near 0, training in < 120 s on two
CPU cores. `python -m bench.bench_trainer [--quick]`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FULL = dict(family="dns", n_train=8000, n_eval=100, epochs=2.0, lr=4e-3)
QUICK = dict(family="user_admin", n_train=600, n_eval=40, epochs=4.0, lr=4e-3)
TARGET_EM, TARGET_SECONDS = 0.90, 120.0


def _full_ft_tokens_per_s(examples: list, batch_size: int, steps: int) -> float:
    from transformers import AutoModelForCausalLM

    from trainers.fixture import TINY_BASE_DIR
    from trainers.loop import train_loop

    model = AutoModelForCausalLM.from_pretrained(str(TINY_BASE_DIR), local_files_only=True)
    res = train_loop(model, examples, steps=steps, batch_size=batch_size, lr=1e-4, pad_id=0)
    return res.tokens_per_s


def main(quick: bool = False) -> dict[str, Any]:
    import torch

    from ops.workload import make_split
    from trainers.base_models import count_params
    from trainers.config import TrainRequest, resolve
    from trainers.dataset import Example
    from trainers.evaluate import evaluate_adapter_and_base
    from trainers.fixture import TINY_BASE_DIR
    from trainers.lora import train_adapter
    from trainers.prompting import encode_pair

    p = QUICK if quick else FULL
    train_rows, eval_rows = make_split(p["family"], p["n_train"], p["n_eval"], seed=2024)
    train = [Example(e.prompt, e.answer, "train", {}) for e in train_rows]
    held = [Example(e.prompt, e.answer, "eval", {}) for e in eval_rows]
    cfg = resolve(TrainRequest(method="lora", epochs=p["epochs"], lr=p["lr"], seed=1), count_params(TINY_BASE_DIR), cuda=False)
    print(f"task {p['family']}: {len(train)} train / {len(held)} held-out examples (disjoint answers); "
          f"base {TINY_BASE_DIR.name} ({cfg.base_params:,} params), torch threads {torch.get_num_threads()}")
    print(f"LoRA r={cfg.r} alpha={cfg.alpha} targets={cfg.target_modules} save={list(cfg.modules_to_save)} "
          f"epochs={cfg.epochs} lr={cfg.lr} batch={cfg.batch_size}")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        trained = train_adapter(train, cfg, TINY_BASE_DIR, Path(tmp) / "adapter",
                                progress=lambda pr: print(f"  step {pr.step}/{pr.total} loss {pr.loss:.3f} "
                                                          f"{pr.tokens_per_s:,.0f} tok/s eta {pr.eta_s:.0f}s", flush=True),
                                report_every=max(1, trained_steps_hint(len(train), cfg) // 6))
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        scores = evaluate_adapter_and_base(trained.model, trained.tokenizer, held, batch_size=32)
        eval_s = time.perf_counter() - t1
    a, b = scores["adapter"], scores["base"]
    examples = [encode_pair(trained.tokenizer, e.prompt, e.response, cfg.max_len) for e in train[:256]]
    full_tps = _full_ft_tokens_per_s(examples, cfg.batch_size, steps=8 if quick else 20)
    lora_tps = trained.loop.tokens_per_s

    print(f"training: {trained.loop.steps} steps in {train_s:.1f}s (loop {trained.loop.seconds:.1f}s), "
          f"{lora_tps:,.0f} tokens/s = {lora_tps / full_tps:.2f}x full fine-tuning ({full_tps:,.0f} tokens/s); "
          f"{trained.trainable_params:,} of {trained.total_params:,} params trainable")
    print(f"held-out ({len(held)} examples, greedy, eval {eval_s:.1f}s):")
    for name, m in (("adapter", a), ("base", b)):
        print(f"  {name:8s} exact match {m['exact_match']:.3f}  field F1 {m['field_f1']:.3f}  "
              f"format valid {m['format_valid']:.3f}  json valid {m['json_valid']:.3f}  latency {m['latency_ms']:.1f} ms/example")
    gain = a["exact_match"] - b["exact_match"]
    ok_em, ok_time = a["exact_match"] >= TARGET_EM, train_s < TARGET_SECONDS
    print(f"exact-match gain over the base: {gain:+.3f}; target EM >= {TARGET_EM} {'met' if ok_em else 'MISSED'}, "
          f"training < {TARGET_SECONDS:.0f}s {'met' if ok_time else 'MISSED'}")
    return {
        "family": p["family"], "train_examples": len(train), "eval_examples": len(held),
        "steps": trained.loop.steps, "train_seconds": train_s, "eval_seconds": eval_s,
        "train_tokens_per_s": lora_tps, "full_ft_tokens_per_s": full_tps, "lora_vs_full_ft_throughput": lora_tps / full_tps,
        "adapter": a, "base": b, "exact_match_gain": gain, "field_f1_gain": a["field_f1"] - b["field_f1"],
        "latency_ratio_adapter_vs_base": a["latency_ms"] / b["latency_ms"] if b["latency_ms"] else None,
        "trainable_params": trained.trainable_params, "target_em_met": ok_em, "target_time_met": ok_time,
        "torch_threads": torch.get_num_threads(),
    }


def trained_steps_hint(n: int, cfg: Any) -> int:
    from trainers.loop import total_steps

    return total_steps(n, cfg.batch_size, cfg.epochs)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
    sys.exit(0)
