"""LoRA / QLoRA adapter training with peft, pure of Kafka: a snapshot and a config in, an
adapter directory and the trained model (for evaluation) out."""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from trainers.augment import augment
from trainers.config import TrainConfig
from trainers.dataset import Example
from trainers.folded_lora import folded_lora
from trainers.lean_decoder import lean_decoder
from trainers.loop import LoopResult, ProgressFn, train_loop
from trainers.prompting import encode_pairs
from trainers.targets import training_target

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training could not finish (a retry may help: out of memory, a flaky disk)."""


def preload_libraries() -> float:
    """Import transformers' auto classes and peft now; returns the seconds it took. A cold
    import costs 5-8 s on two CPU cores: a long-running trainer pays it once at start, not
    inside its first command's training time and progress."""
    t0 = time.perf_counter()
    from peft import LoraConfig, get_peft_model  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    return time.perf_counter() - t0


def cuda_available() -> bool:
    return torch.cuda.is_available()


def load_tokenizer(base_dir: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base(base_dir: Path, method: str) -> Any:
    """The base model, 4-bit NF4 quantised for QLoRA (bitsandbytes; on CUDA when present, on
    CPU otherwise, which exercises the code path but not the quality)."""
    from transformers import AutoModelForCausalLM

    cuda = cuda_available()
    kwargs: dict[str, Any] = {"local_files_only": True}
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else (torch.float16 if cuda else torch.float32)
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["dtype"] = compute
        kwargs["device_map"] = {"": 0} if cuda else {"": "cpu"}
    else:
        kwargs["dtype"] = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)
    if method != "qlora" and cuda:
        model = model.to("cuda")
    return model


def attach_lora(model: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cuda_available())
    lora = LoraConfig(
        task_type="CAUSAL_LM", r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules) if isinstance(cfg.target_modules, tuple) else cfg.target_modules,
        modules_to_save=list(cfg.modules_to_save) or None,
    )
    return get_peft_model(model, lora)


@dataclass
class TrainedAdapter:
    model: Any                  # the peft model, adapter active (disable_adapter() gives the base)
    tokenizer: Any
    adapter_dir: Path
    loop: LoopResult
    trainable_params: int
    total_params: int
    train_examples: int
    load_seconds: float


def train_adapter(
    train: Sequence[Example], cfg: TrainConfig, base_dir: Path, out_dir: Path,
    progress: ProgressFn | None = None, report_every: int = 10,
) -> TrainedAdapter:
    """Train one adapter and save it (adapter_config.json + adapter_model.safetensors) in out_dir."""
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(base_dir)
    model = attach_lora(load_base(base_dir, cfg.method), cfg)
    load_seconds = time.perf_counter() - t0
    # Steps follow the snapshot's size, not the augmented one: variants replace repeated
    # passes over the same pairs, they do not add training time.
    steps = cfg.steps_for(len(train))
    if cfg.augment and cfg.json_targets:
        grown = augment(train, seed=cfg.seed)
        if len(grown) > len(train):
            log.info("slot-swap augmentation: %d snapshot pairs -> %d training pairs", len(train), len(grown))
        train = grown
    examples = encode_pairs(tokenizer, [(ex.prompt, training_target(ex.response) if cfg.json_targets else ex.response)
                                        for ex in train], cfg.max_len)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    # Tiny Llama bases: the folded arithmetic in fewer, larger calls (trainers/lean_decoder.py).
    decoder = lean_decoder(model) if cfg.fold_lora else None
    log.info("training %s adapter: %d examples, %d steps, r=%d, %d/%d trainable params, %d worker(s)%s",
             cfg.method, len(examples), steps, cfg.r, trainable, total, cfg.workers,
             ", folded LoRA forward" + (" (lean decoder)" if decoder else "") if cfg.fold_lora else "")
    try:
        head = [p for name, p in model.named_parameters() if "modules_to_save" in name]
        with folded_lora(model) if cfg.fold_lora else nullcontext():
            result = train_loop(model, examples, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                pad_id=tokenizer.pad_token_id, seed=cfg.seed, progress=progress,
                                report_every=report_every, lr_scales=[(head, cfg.head_lr_scale)] if head else (),
                                workers=cfg.workers, decoder=decoder)
    except torch.OutOfMemoryError as exc:
        raise TrainingError(f"out of memory at batch size {cfg.batch_size}: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    return TrainedAdapter(model, tokenizer, out_dir, result, trainable, total, len(examples), load_seconds)
