"""Building blocks for tests, benchmarks and the demo: a tiny randomly initialised base (when
the shipped fixture is not there) and signed LoRA adapters made directly with peft.

These adapters are untrained (random LoRA weights) but real: same files, same manifest, same
signature and the same load path as the trainer's output.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from schemas import manifest as manifests


def build_random_base(out_dir: Path, seed: int = 0, hidden: int = 32, layers: int = 1) -> Path:
    """A tiny Llama + byte-level BPE tokenizer with the fixture's chat template (seconds)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from trainers.fixture.build_tiny_base import train_tokenizer

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    texts = ['{"action": "set", "device": "lights", "room": "kitchen"}', "turn on the lights in the kitchen",
             "create a ticket for the broken printer", '{"tool_calls": [{"name": "lookup", "arguments": {}}]}'] * 30
    tok = train_tokenizer(texts, 320)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=False, bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tok.save_pretrained(str(out_dir))
    return out_dir


def default_base_dir(fallback: Path) -> Path:
    """The shipped tiny fixture when it is built, else a random tiny base under `fallback`."""
    from trainers.fixture import TINY_BASE_DIR

    if (TINY_BASE_DIR / "config.json").is_file():
        return TINY_BASE_DIR
    return build_random_base(fallback)


def build_signed_adapter(base_dir: Path, out_dir: Path, adapter_id: str, signer: manifests.Signer, *,
                         seed: int = 0, r: int = 4, base_model_id: str = "distillery-tiny-base",
                         metrics: dict[str, float] | None = None, random_weights: bool = True,
                         weight_std: float | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """A signed LoRA adapter on `base_dir`. Returns the manifest path.

    extra_files: name -> text written beside the weights before signing (e.g. decoding.json).
    random_weights=True: random A and B, so the adapter changes the base's answers (garbage);
    False: peft's standard init (B = 0), so it answers exactly as the base does."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from trainers.base_models import weights_sha256

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True)
    cfg = LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=2 * r, target_modules="all-linear",
                     init_lora_weights=not random_weights)
    model = get_peft_model(base, cfg)
    if weight_std is not None:
        # peft's random init can be too gentle to move a confident base's greedy answer.
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_" in name:
                    param.normal_(0.0, weight_std)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    readme = out_dir / "README.md"
    if readme.exists():
        readme.unlink()   # peft's model card: not part of what we sign and ship
    for name, text in (extra_files or {}).items():
        (out_dir / name).write_text(text)
    manifest = manifests.build_manifest(
        adapter_id=adapter_id, adapter_dir=out_dir, base_model_id=base_model_id,
        base_weights_sha256=weights_sha256(Path(base_dir)), dataset_uri="devtools://random",
        dataset_sha256="0" * 64, config={"r": r, "init": "random" if random_weights else "identity", "seed": seed}, metrics=metrics or {},
        code_version="devtools", created_at_ms=int(time.time() * 1000),
    )
    return manifests.write_manifest(manifests.sign_manifest(manifest, signer), out_dir)


def tamper(adapter_dir: Path) -> Path:
    """Flip one byte of the adapter weights (for tests of the refusal path)."""
    path = Path(adapter_dir) / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def promote_command(command_id: str, action: str, adapter_id: str, cluster_id: int, manifest_uri: str | None = None,
                    rollback_to: str | None = None, reason: str = "", actor: str = "operator",
                    evidence: dict[str, float] | None = None) -> dict[str, Any]:
    return {"command_id": command_id, "ts": int(time.time() * 1000), "adapter_id": adapter_id,
            "cluster_id": int(cluster_id), "action": action, "reason": reason or action,
            "manifest_uri": manifest_uri, "rollback_to": rollback_to, "evidence": evidence or {}, "actor": actor}
