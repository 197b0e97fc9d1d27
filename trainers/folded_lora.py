"""A faster, equivalent training forward for LoRA on small bases: y = x (W + s·B·A)^T.

peft computes a LoRA layer as base(x) + s·B(A(dropout(x))): three matrix products, two
element-wise passes over the activations and their autograd nodes per adapted layer. On a tiny
base those small ops, not the arithmetic, dominate a CPU step. Folding the update into the
weight first (an (out x r)·(r x in) product, tiny next to the activations) leaves one large
product per layer in the forward pass; the backward pass keeps peft's rank-r arithmetic. Same
loss and gradients up to float rounding, ~1.2x the tokens/s of the shipped base (docs/trainer.md).

Only for plain peft LoRA layers over a frozen dense nn.Linear, one active adapter, no dropout,
no DoRA or other variant, not merged; anything else keeps peft's own forward.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F


def foldable_adapter(layer: Any) -> str | None:
    """The adapter name when `layer` can use the folded forward, else None."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    if not isinstance(layer, LoraLinear) or layer.merged or layer.disable_adapters:
        return None
    base = layer.get_base_layer()
    if type(base) is not torch.nn.Linear or getattr(layer, "fan_in_fan_out", False):
        return None
    if base.weight.requires_grad or (base.bias is not None and base.bias.requires_grad):
        return None     # a trained base weight needs its full gradient: peft's graph gives it
    active = list(layer.active_adapters)
    if len(active) != 1 or active[0] not in layer.lora_A:
        return None
    name = active[0]
    if name in getattr(layer, "lora_variant", {}) or getattr(layer, "use_dora", {}).get(name):
        return None
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return None
    if layer.lora_A[name].bias is not None or layer.lora_B[name].bias is not None:
        return None
    return name


class _FoldedLoraLinear(torch.autograd.Function):
    """y = x (W + s·B·A)^T + bias, with W and bias frozen.

    Backward never forms the full-size weight gradient (what a plain folded product would ask
    autograd for): A and B get theirs through the rank-r path, g·B and x·A^T, as peft's own
    graph would. Only x, W, A and B are kept for it, never the folded weight."""

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float):
        ctx.save_for_backward(x, weight, lora_a, lora_b)
        ctx.scaling = scaling
        return F.linear(x, torch.addmm(weight, lora_b, lora_a, alpha=scaling), bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, lora_a, lora_b = ctx.saved_tensors
        s = ctx.scaling
        g = grad_out.reshape(-1, grad_out.shape[-1])
        x2 = x.reshape(-1, x.shape[-1])
        grad_x = grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (g @ torch.addmm(weight, lora_b, lora_a, alpha=s)).view(x.shape)
        if ctx.needs_input_grad[3]:
            grad_a = (g @ lora_b).t() @ x2 * s
        if ctx.needs_input_grad[4]:
            grad_b = g.t() @ (x2 @ lora_a.t()) * s
        return grad_x, None, None, grad_a, grad_b, None


def _folded_forward(layer: Any, name: str):
    base = layer.get_base_layer()
    lora_a, lora_b, scaling = layer.lora_A[name], layer.lora_B[name], layer.scaling[name]

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if args or kwargs:      # peft-only call forms (adapter_names=...): its own path
            return type(layer).forward(layer, x, *args, **kwargs)
        return _FoldedLoraLinear.apply(x.to(base.weight.dtype), base.weight, base.bias,
                                       lora_a.weight, lora_b.weight, scaling)

    return forward


@contextmanager
def folded_lora(model: Any) -> Iterator[int]:
    """Within the block, every eligible LoRA layer of `model` runs the folded forward; yields
    how many layers were switched. peft's forward is back afterwards (saving, evaluation)."""
    switched = []
    for module in model.modules():
        name = foldable_adapter(module)
        if name is not None:
            module.forward = _folded_forward(module, name)
            switched.append(module)
    try:
        yield len(switched)
    finally:
        for module in switched:
            del module.forward
