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


class FoldedLinear(torch.autograd.Function):
    """y = x · Wf^T + bias, Wf = W + s·B_i·A_i on each row block i of W: one adapted layer, or
    several that read the same input stacked row-wise (q/k/v, gate/up: trainers/lean_decoder.py).
    W and bias are frozen.

    Backward never forms the full-size weight gradient (what a plain folded product would ask
    autograd for): A_i and B_i get theirs through the rank-r path, g·B and x·A^T, as peft's own
    graph would. The folded weight is kept for it rather than rebuilt: the size of W, and these
    paths serve tiny bases only. Call as `FoldedLinear.apply(x, W, bias, s, *As, *Bs)`."""

    @staticmethod
    def forward(ctx, x, weight, bias, scaling: float, *lora):
        n = len(lora) // 2
        lora_a, lora_b = lora[:n], lora[n:]
        if n == 1:
            folded = torch.addmm(weight, lora_b[0], lora_a[0], alpha=scaling)
        else:
            folded, row = weight.clone(), 0
            for a, b in zip(lora_a, lora_b):
                folded[row:row + b.shape[0]].addmm_(b, a, alpha=scaling)
                row += b.shape[0]
        ctx.save_for_backward(x, folded, *lora)
        ctx.scaling = scaling
        return F.linear(x, folded, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, folded, *lora = ctx.saved_tensors
        n = len(lora) // 2
        g = grad_out.reshape(-1, grad_out.shape[-1])
        x2 = x.reshape(-1, x.shape[-1])
        grad_x = (g @ folded).view(x.shape) if ctx.needs_input_grad[0] else None
        g = g * ctx.scaling             # once for every block
        grads_a, grads_b, row = [], [], 0
        for a, b in zip(lora[:n], lora[n:]):
            gi = g[:, row:row + b.shape[0]]
            row += b.shape[0]
            grads_a.append((gi @ b).t() @ x2)
            grads_b.append(gi.t() @ (x2 @ a.t()))
        return (grad_x, None, None, None, *grads_a, *grads_b)


def _folded_forward(layer: Any, name: str):
    base = layer.get_base_layer()
    lora_a, lora_b, scaling = layer.lora_A[name], layer.lora_B[name], layer.scaling[name]

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if args or kwargs:      # peft-only call forms (adapter_names=...): its own path
            return type(layer).forward(layer, x, *args, **kwargs)
        return FoldedLinear.apply(x.to(base.weight.dtype), base.weight, base.bias, scaling,
                                  lora_a.weight, lora_b.weight)

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
