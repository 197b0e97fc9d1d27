"""A lean training forward for a tiny Llama-architecture base with folded LoRA layers.

On a base of ~1 M parameters a CPU step is short enough that fixed per-call costs matter: the
Hugging Face decoder's module calls and mask building, and one Python autograd function per
adapted projection (28 on the shipped base), each paid again in the backward pass. This
forward runs the same arithmetic with fewer, larger calls: q/k/v and gate/up each as one
product with their folded weights stacked, rotary tables computed once, and causal
SDPA without a mask (training batches are right-padded, so no real token ever attends to a pad;
pad positions are never scored). Same loss and gradients as the model's own forward up to float
rounding (tests/unit/test_trainer_lora.py).

`lean_decoder(model)` returns None for anything it does not cover (other architectures, biases,
rope scaling, dropout, unfoldable LoRA layers), and the caller keeps the model's own forward.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from trainers.folded_lora import FoldedLinear, foldable_adapter


@dataclass
class _Stack:
    """Projections that read the same input, as one folded product (folded_lora.FoldedLinear)."""
    weight: torch.Tensor                 # frozen, the projections' weights stacked row-wise
    lora_a: tuple[torch.nn.Parameter, ...]
    lora_b: tuple[torch.nn.Parameter, ...]
    scaling: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return FoldedLinear.apply(x, self.weight, None, self.scaling, *self.lora_a, *self.lora_b)


def _stack(layers: Sequence[Any]) -> _Stack | None:
    names = [foldable_adapter(layer) for layer in layers]
    if any(name is None for name in names):
        return None
    bases = [layer.get_base_layer() for layer in layers]
    scalings = {float(layer.scaling[name]) for layer, name in zip(layers, names)}
    if any(base.bias is not None for base in bases) or len(scalings) != 1:
        return None                     # e.g. ranks differing per layer: the folded peft layers instead
    return _Stack(torch.cat([base.weight.detach() for base in bases]),
                  tuple(layer.lora_A[name].weight for layer, name in zip(layers, names)),
                  tuple(layer.lora_B[name].weight for layer, name in zip(layers, names)),
                  scalings.pop())


@dataclass
class _Layer:
    norm1: Any
    qkv: _Stack
    o: _Stack
    norm2: Any
    gate_up: _Stack
    down: _Stack


@dataclass
class _Output:
    last_hidden_state: torch.Tensor


class LeanDecoder:
    """Callable like the decoder in `trainers.loop.answer_loss`: input_ids (right-padded) ->
    an object with `last_hidden_state`. The attention mask is only checked to be right padding
    (module docstring); a left-padded batch is refused."""

    def __init__(self, decoder: Any, layers: list[_Layer], heads: int, kv_heads: int, head_dim: int):
        self.decoder = decoder
        self.layers = layers
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self._rope: tuple[torch.Tensor, torch.Tensor] | None = None

    def _rotary(self, x: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        # The model's own rotary module, once for the longest length seen: same tables.
        if self._rope is None or self._rope[0].shape[-2] < length:
            positions = torch.arange(max(length, 256), device=x.device)[None]
            with torch.no_grad():
                cos, sin = self.decoder.rotary_emb(x, positions)
            self._rope = (cos[:, None], sin[:, None])      # (1, 1, T, head_dim)
        cos, sin = self._rope
        return cos[:, :, :length], sin[:, :, :length]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> _Output:
        if attention_mask is not None and bool((attention_mask[:, 1:] > attention_mask[:, :-1]).any()):
            raise ValueError("the lean decoder needs right-padded batches (no mask is applied)")
        b, t = input_ids.shape
        h, kv, d = self.heads, self.kv_heads, self.head_dim
        x = self.decoder.embed_tokens(input_ids)
        cos, sin = self._rotary(x, t)
        width = (x.shape[-1],)
        for layer in self.layers:
            heads = layer.qkv(F.rms_norm(x, width, layer.norm1.weight, layer.norm1.variance_epsilon))
            heads = heads.view(b, t, h + 2 * kv, d).transpose(1, 2)
            qk = heads[:, :h + kv]                      # queries and keys rotate together
            qk = qk * cos + _rotate_half(qk) * sin
            att = F.scaled_dot_product_attention(qk[:, :h], qk[:, h:], heads[:, h + kv:], is_causal=True,
                                                 enable_gqa=kv != h)
            x = x + layer.o(att.transpose(1, 2).reshape(b, t, h * d))
            gate, up = layer.gate_up(F.rms_norm(x, width, layer.norm2.weight, layer.norm2.variance_epsilon)).chunk(2, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        norm = self.decoder.norm
        return _Output(F.rms_norm(x, width, norm.weight, norm.variance_epsilon))


def _plain_rms_norm(module: Any) -> bool:
    """Llama's RMSNorm (weight * x / rms(x), float32 on these bases), which F.rms_norm computes."""
    return type(module).__name__ == "LlamaRMSNorm" and getattr(module, "weight", None) is not None \
        and module.weight.dtype == torch.float32 and hasattr(module, "variance_epsilon")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def lean_decoder(model: Any) -> LeanDecoder | None:
    """A LeanDecoder over `model`'s (peft-wrapped) Llama decoder, or None when not covered."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    decoder = getattr(base, "model", None)
    if getattr(config, "model_type", None) != "llama" or decoder is None:
        return None
    # transformers 5 names them rope_parameters (rope_scaling is an alias); 4.x had rope_scaling.
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if (getattr(config, "hidden_act", None) != "silu" or getattr(config, "attention_bias", False)
            or getattr(config, "mlp_bias", False) or getattr(config, "pretraining_tp", 1) != 1
            or getattr(config, "attention_dropout", 0.0)
            or rope.get("rope_type", rope.get("type", "default")) != "default"):
        return None
    if not _plain_rms_norm(decoder.norm):
        return None
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    layers = []
    for block in decoder.layers:
        att, mlp = block.self_attn, block.mlp
        if getattr(att, "scaling", head_dim ** -0.5) != head_dim ** -0.5:
            return None
        if not all(_plain_rms_norm(n) for n in (block.input_layernorm, block.post_attention_layernorm)):
            return None
        stacks = (_stack([att.q_proj, att.k_proj, att.v_proj]), _stack([att.o_proj]),
                  _stack([mlp.gate_proj, mlp.up_proj]), _stack([mlp.down_proj]))
        if any(s is None for s in stacks):
            return None
        layers.append(_Layer(block.input_layernorm, stacks[0], stacks[1], block.post_attention_layernorm,
                             stacks[2], stacks[3]))
    return LeanDecoder(decoder, layers, heads, kv_heads, head_dim)
