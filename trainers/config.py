"""Training settings: what a RetrainCommand asks for, completed with defaults that depend on
the base model's size and the hardware. Pure: no model is loaded here."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

METHODS = ("auto", "lora", "qlora")
TINY_PARAMS = 20_000_000         # the shipped fixture and other toy bases
LARGE_PARAMS = 1_500_000_000


@dataclass(frozen=True)
class TrainRequest:
    """What the command asked for; 0 / empty means "the default for this base"."""

    method: str = "auto"
    r: int = 0
    alpha: int = 0
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ()
    epochs: float = 0.0
    lr: float = 0.0
    batch_size: int = 0
    max_len: int = 0
    max_steps: int = 0              # 0: no cap beyond epochs
    seed: int = 0

    @classmethod
    def from_command(cls, cmd: Mapping[str, Any]) -> "TrainRequest":
        return cls(
            method=str(cmd.get("method") or "auto"),
            r=int(cmd.get("lora_r") or 0),
            alpha=int(cmd.get("lora_alpha") or 0),
            dropout=float(cmd.get("lora_dropout") if cmd.get("lora_dropout") is not None else 0.05),
            target_modules=tuple(cmd.get("target_modules") or ()),
            epochs=float(cmd.get("epochs") or 0.0),
            lr=float(cmd.get("learning_rate") or 0.0),
        )


@dataclass(frozen=True)
class TrainConfig:
    method: str                     # "lora" or "qlora" (never "auto")
    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...] | str
    modules_to_save: tuple[str, ...]
    epochs: float
    lr: float
    batch_size: int
    max_len: int
    max_steps: int                  # 0: no cap
    seed: int
    size_class: str
    base_params: int
    min_steps: int = 0              # small snapshots still get this many optimiser steps
    head_lr_scale: float = 1.0      # learning-rate factor for modules_to_save (a fully trained head)
    json_targets: bool = True       # learn JSON answers in one compact spelling (trainers/targets.py)
    augment: bool = True            # slot-swapped variants of small snapshots (trainers/augment.py)
    fold_lora: bool = False         # train with the folded LoRA forward (trainers/folded_lora.py)
    workers: int = 1                # CPU: parts of each batch trained at once, a thread each
    extra: dict[str, Any] = field(default_factory=dict)

    def steps_for(self, n_examples: int) -> int:
        """Optimiser steps for a training set: `epochs` passes, at least `min_steps` (a few
        hundred examples need more passes than a few thousand), at most `max_steps`."""
        per_epoch = math.ceil(n_examples / self.batch_size)
        steps = max(1, math.ceil(self.epochs * per_epoch), self.min_steps)
        return min(steps, self.max_steps) if self.max_steps else steps

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules) if isinstance(self.target_modules, tuple) else self.target_modules
        d["modules_to_save"] = list(self.modules_to_save)
        return d


class ConfigError(ValueError):
    """The request cannot be honoured (bad method, impossible values). Never worth a retry."""


def size_class(params: int) -> str:
    if params < TINY_PARAMS:
        return "tiny"
    return "small" if params < LARGE_PARAMS else "large"


# Defaults per size class. Real pretrained bases learn a new format from a few hundred
# examples with a low learning rate in a few epochs. Tiny bases need a high learning rate,
# every linear layer adapted plus the output head (LoRA on q/v alone stalls on them), and a
# floor on optimiser steps: a few hundred examples need ~30 passes, a few thousand ~3
# (measured: docs/trainer.md), capped so a command stays within minutes on two CPU cores.
DEFAULTS: dict[str, dict[str, Any]] = {
    # Batch 8 at lr 5e-3 (the lr/batch ratio of the earlier 16 at 1e-2): at the same tokens,
    # twice the updates reach a higher exact match with less spread between seeds.
    # Tiny bases on CPU: the LoRA update folded into each weight (with the lean decoder for plain
    # Llama bases), and each batch split across the cores (one thread each) rather than torch's
    # intra-op threads: ~1.2-1.3x the tokens/s together.
    "tiny": dict(r=16, alpha=32, target_modules="all-linear", modules_to_save=("lm_head",), epochs=3.0,
                 lr=5e-3, batch_size=8, max_len=192, min_steps=960, max_steps=1200, head_lr_scale=1.0,
                 fold_lora=True, batch_parts_per_core=True),
    "small": dict(r=16, alpha=32, target_modules="all-linear", modules_to_save=(), epochs=3.0,
                  lr=2e-4, batch_size=8, max_len=1024),
    "large": dict(r=16, alpha=32, target_modules="all-linear", modules_to_save=(), epochs=2.0,
                  lr=1e-4, batch_size=4, max_len=2048),
}


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        return os.cpu_count() or 1


def resolve(request: TrainRequest, base_params: int, cuda: bool, cores: int | None = None) -> TrainConfig:
    """`cores`: CPU cores for training (default: this process's affinity mask)."""
    if request.method not in METHODS:
        raise ConfigError(f"method {request.method!r} is not one of {', '.join(METHODS)}")
    if request.r < 0 or request.alpha < 0 or request.epochs < 0 or request.lr < 0:
        raise ConfigError("lora_r, lora_alpha, epochs and learning_rate must be >= 0 (0 means default)")
    if not 0.0 <= request.dropout < 1.0:
        raise ConfigError(f"lora_dropout {request.dropout} must be in [0, 1)")
    cls = size_class(base_params)
    d = DEFAULTS[cls]
    method = request.method if request.method != "auto" else ("qlora" if cuda else "lora")
    r = request.r or d["r"]
    return TrainConfig(
        method=method,
        r=r,
        alpha=request.alpha or (2 * r if request.r else d["alpha"]),
        dropout=request.dropout,
        target_modules=tuple(request.target_modules) if request.target_modules else d["target_modules"],
        modules_to_save=tuple(d["modules_to_save"]),
        epochs=request.epochs or d["epochs"],
        lr=request.lr or d["lr"],
        batch_size=request.batch_size or d["batch_size"],
        max_len=request.max_len or d["max_len"],
        max_steps=request.max_steps or d.get("max_steps", 0),
        seed=request.seed,
        size_class=cls,
        base_params=base_params,
        # An explicit epoch count is honoured as asked; the floor only backs the default.
        min_steps=0 if request.epochs else d.get("min_steps", 0),
        head_lr_scale=d.get("head_lr_scale", 1.0),
        fold_lora=d.get("fold_lora", False),
        workers=max(1, cores or cpu_cores()) if d.get("batch_parts_per_core") and not cuda else 1,
    )
