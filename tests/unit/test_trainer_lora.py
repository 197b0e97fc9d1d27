"""Real adapter training on the shipped tiny base (a few steps: the code paths, not quality)."""
import json
import math
import random

import pytest
import torch

from schemas.manifest import hmac_signer, verify
from trainers.artifacts import ArtifactStore
from trainers.base_models import count_params, resolve_base, weights_sha256
from trainers.config import TrainRequest, resolve
from trainers.dataset import Example, write_snapshot
from trainers.fixture import TINY_BASE_DIR, TINY_BASE_NAME
from trainers.gate import Gate
from trainers.job import JobContext, adapter_id_for, run_job
from trainers.lora import train_adapter
from trainers.prompting import IGNORE, encode_pair

KEY = b"unit-test-signing-key-0123456789"


def toy_task(n, seed):
    """A mapping the base has never seen: 'shelve <word> on rack <n>' -> {"bin": word, "rack": n}."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 6)))
        r = rng.randint(1, 9)
        out.append((f"shelve {w} on rack {r}", json.dumps({"bin": w, "rack": r}, separators=(",", ":"))))
    return out


def test_fixture_is_a_small_local_llama():
    assert resolve_base(TINY_BASE_NAME) == TINY_BASE_DIR
    assert (TINY_BASE_DIR / "model.safetensors").stat().st_size < 5_000_000
    assert json.loads((TINY_BASE_DIR / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert 100_000 < count_params(TINY_BASE_DIR) < 2_000_000
    assert len(weights_sha256(TINY_BASE_DIR)) == 64


def test_prompt_tokens_carry_no_loss():
    from trainers.lora import load_tokenizer

    tok = load_tokenizer(TINY_BASE_DIR)
    enc = encode_pair(tok, "shelve abc on rack 3", '{"bin":"abc","rack":3}', max_len=64)
    n_prompt = enc.labels.count(IGNORE)
    assert n_prompt > 0 and enc.labels[n_prompt:] == enc.input_ids[n_prompt:]
    assert enc.input_ids[-1] == tok.eos_token_id
    short = encode_pair(tok, "x " * 200, '{"bin":"abc"}', max_len=32)
    assert len(short.input_ids) == 32 and short.labels[-1] == tok.eos_token_id  # the answer always fits


def test_batched_encoding_equals_one_pair_at_a_time():
    from trainers.lora import load_tokenizer
    from trainers.prompting import encode_pairs

    tok = load_tokenizer(TINY_BASE_DIR)
    pairs = toy_task(20, 8) + [("x" * 400, "y" * 300), ("", "")]   # cut from the left; empty
    for max_len in (192, 48):
        assert encode_pairs(tok, pairs, max_len) == [encode_pair(tok, p, r, max_len) for p, r in pairs]
    assert encode_pairs(tok, [], 192) == []


def test_lora_training_lowers_the_loss_and_saves_an_adapter(tmp_path):
    train = [Example(p, r, "train", {}) for p, r in toy_task(64, 1)]
    cfg = resolve(TrainRequest(method="lora", epochs=4, batch_size=16), count_params(TINY_BASE_DIR), cuda=False)
    seen = []
    out = train_adapter(train, cfg, TINY_BASE_DIR, tmp_path / "a", progress=seen.append, report_every=4)
    assert [p.step for p in seen] == [4, 8, 12, 16] and all(p.total == 16 for p in seen)
    assert seen[-1].loss < seen[0].loss and seen[-1].tokens_per_s > 0 and seen[-1].eta_s == 0
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "a" / "adapter_config.json").read_text())["r"] == cfg.r
    assert 0 < out.trainable_params < out.total_params


def test_lr_scales_give_a_parameter_group_its_own_learning_rate():
    from trainers.loop import train_loop

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(8, 4), torch.nn.Linear(4, 8))
    head = list(model[1].parameters())

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, labels, attention_mask):
            logits = self.m(input_ids)
            loss = torch.nn.functional.cross_entropy(logits.view(-1, 8), labels.clamp(min=0).view(-1))
            return type("Out", (), {"loss": loss})()

    probe = Probe()
    before = [p.detach().clone() for p in probe.parameters()]
    opt_lrs = []
    orig = torch.optim.AdamW.step

    def spy(self, *a, **k):
        opt_lrs.append(sorted(g["lr"] for g in self.param_groups))
        return orig(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        from trainers.prompting import Encoded
        ex = [Encoded([1, 2, 3], [IGNORE, 2, 3])] * 4
        train_loop(probe, ex, steps=3, batch_size=2, lr=1e-2, pad_id=0, warmup=1, lr_scales=[(head, 4.0)])
    finally:
        torch.optim.AdamW.step = orig
    assert all(len(lrs) == 2 and math.isclose(lrs[1], 4 * lrs[0]) for lrs in opt_lrs)
    assert all(not torch.equal(b, p) for b, p in zip(before, probe.parameters()))


def test_answer_loss_equals_the_models_own_loss_and_gradients():
    """The loop applies the output head at answer positions only; that must change nothing
    but the cost: same loss, same gradients as the model's full forward."""
    from trainers.lora import attach_lora, load_base, load_tokenizer
    from trainers.loop import _plain_parts, answer_loss
    from trainers.prompting import collate

    tok = load_tokenizer(TINY_BASE_DIR)
    cfg = resolve(TrainRequest(method="lora", dropout=0.0), count_params(TINY_BASE_DIR), cuda=False)
    torch.manual_seed(0)
    model = attach_lora(load_base(TINY_BASE_DIR, "lora"), cfg)
    assert _plain_parts(model) is not None  # the shipped base takes the fast path
    for p in model.parameters():
        if p.requires_grad:
            p.data.add_(0.01 * torch.randn_like(p))  # LoRA B starts at zero: give it gradients to compare
    pairs = toy_task(6, 3)
    batch = collate([encode_pair(tok, p, r, max_len=96) for p, r in pairs], tok.pad_token_id)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def grads(loss):
        loss.backward()
        out = [p.grad.detach().clone() for p in trainable]
        model.zero_grad(set_to_none=True)
        return out

    own = model(**batch).loss
    g_own = grads(own)
    fast = answer_loss(model, batch)
    g_fast = grads(fast)
    assert torch.allclose(own, fast, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(g_own, g_fast))


def _perturbed_lora_model(seed=0):
    from trainers.lora import attach_lora, load_base

    cfg = resolve(TrainRequest(method="lora", dropout=0.0), count_params(TINY_BASE_DIR), cuda=False)
    torch.manual_seed(seed)
    model = attach_lora(load_base(TINY_BASE_DIR, "lora"), cfg)
    for p in model.parameters():
        if p.requires_grad:
            p.data.add_(0.01 * torch.randn_like(p))  # LoRA B starts at zero: give it gradients to compare
    return model, [p for p in model.parameters() if p.requires_grad]


def _toy_batch(n, seed):
    from trainers.lora import load_tokenizer

    tok = load_tokenizer(TINY_BASE_DIR)
    return [encode_pair(tok, p, r, max_len=96) for p, r in toy_task(n, seed)], tok.pad_token_id


def _loss_and_grads(model, trainable, batch):
    from trainers.loop import answer_loss

    loss = answer_loss(model, batch)
    loss.backward()
    grads = [p.grad.detach().clone() for p in trainable]
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads


def test_folded_lora_forward_gives_peft_loss_and_gradients():
    """The folded training forward is a speed-up only: the same loss and the same gradients
    for every LoRA matrix and the head, and peft's own forward is back after the block."""
    from trainers.folded_lora import folded_lora
    from trainers.prompting import collate

    model, trainable = _perturbed_lora_model()
    examples, pad = _toy_batch(6, 5)
    batch = collate(examples, pad)
    loss, grads = _loss_and_grads(model, trainable, batch)
    with folded_lora(model) as switched:
        assert switched == 28          # 7 linear layers x 4 blocks of the shipped base
        f_loss, f_grads = _loss_and_grads(model, trainable, batch)
    assert torch.allclose(loss, f_loss, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(grads, f_grads))
    assert not any("forward" in vars(m) for m in model.modules())


def test_folded_lora_leaves_layers_it_cannot_fold_to_peft():
    from trainers.folded_lora import folded_lora
    from trainers.lora import attach_lora, load_base

    cfg = resolve(TrainRequest(method="lora", dropout=0.1), count_params(TINY_BASE_DIR), cuda=False)
    model = attach_lora(load_base(TINY_BASE_DIR, "lora"), cfg)
    with folded_lora(model) as switched:
        assert switched == 0           # dropout on the adapter input: peft's graph applies it


def test_lean_decoder_gives_the_models_loss_and_gradients():
    """The lean decoder is a speed-up only: on a right-padded batch of unequal lengths, the
    same answer loss and the same gradients for every LoRA matrix and the head as the model's
    own forward, alone and as the decoder of batch parts on threads."""
    from concurrent.futures import ThreadPoolExecutor

    from trainers.lean_decoder import lean_decoder
    from trainers.loop import _parallel_backward, _split, answer_loss
    from trainers.prompting import collate

    model, trainable = _perturbed_lora_model(3)
    examples, pad = _toy_batch(7, 11)
    batch = collate(examples, pad)
    assert int(batch["attention_mask"].sum()) < batch["attention_mask"].numel()    # padding present
    loss, grads = _loss_and_grads(model, trainable, batch)
    decoder = lean_decoder(model)
    assert decoder is not None and len(decoder.layers) == 4
    lean_loss = answer_loss(model, batch, decoder)
    lean_loss.backward()
    assert torch.allclose(loss, lean_loss.detach(), atol=1e-5)
    assert all(torch.allclose(a, p.grad, atol=1e-6, rtol=1e-4) for a, p in zip(grads, trainable))
    model.zero_grad(set_to_none=True)
    with ThreadPoolExecutor(2) as pool:
        p_loss = _parallel_backward(model, [collate(part, pad) for part in _split(examples, 2)], trainable, pool, decoder)
    assert torch.allclose(loss, p_loss, atol=1e-5)
    assert all(torch.allclose(a, p.grad, atol=1e-6, rtol=1e-4) for a, p in zip(grads, trainable))
    left = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"].flip(1)}
    with pytest.raises(ValueError, match="right-padded"):
        decoder(**left)


def test_lean_decoder_declines_what_it_does_not_cover():
    from trainers.lean_decoder import lean_decoder
    from trainers.lora import attach_lora, load_base

    base = count_params(TINY_BASE_DIR)
    dropout = attach_lora(load_base(TINY_BASE_DIR, "lora"), resolve(TrainRequest(method="lora", dropout=0.1), base, cuda=False))
    assert lean_decoder(dropout) is None          # adapter dropout: peft's graph applies it
    some = attach_lora(load_base(TINY_BASE_DIR, "lora"),
                       resolve(TrainRequest(method="lora", dropout=0.0, target_modules=["q_proj", "v_proj"]), base, cuda=False))
    assert lean_decoder(some) is None             # k_proj, o_proj... carry no adapter
    plain = load_base(TINY_BASE_DIR, "lora")
    plain.config.rope_parameters = {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}
    assert lean_decoder(plain) is None            # rope scaling (and no adapters at all)


def test_length_pools_cover_every_example_once_per_epoch_with_less_padding():
    from trainers.loop import _batches
    from trainers.prompting import Encoded

    rng = random.Random(0)
    examples = [Encoded([1] * rng.randint(5, 200), [IGNORE] * 5) for _ in range(512)]

    def epoch(length_pool):
        it = _batches(examples, 8, random.Random(1), length_pool)
        return [next(it) for _ in range(64)]

    def padded(batches):
        return sum(len(b) * max(len(e.input_ids) for e in b) for b in batches)

    wide, narrow = epoch(32), epoch(8)
    for batches in (wide, narrow):
        assert sorted(id(e) for b in batches for e in b) == sorted(id(e) for e in examples)
    assert padded(wide) < padded(narrow)


def test_batch_parts_on_threads_give_the_whole_batchs_gradient():
    """workers > 1 splits a batch and runs the parts at once: the summed, token-weighted
    gradients must be the gradient of the whole batch's mean loss."""
    from concurrent.futures import ThreadPoolExecutor

    from trainers.loop import _parallel_backward, _split
    from trainers.prompting import collate

    model, trainable = _perturbed_lora_model(1)
    examples, pad = _toy_batch(7, 9)   # odd: parts of unequal size and answer length
    loss, grads = _loss_and_grads(model, trainable, collate(examples, pad))
    with ThreadPoolExecutor(2) as pool:
        parts = [collate(part, pad) for part in _split(examples, 2)]
        assert len(parts) == 2
        p_loss = _parallel_backward(model, parts, trainable, pool)
    assert torch.allclose(loss, p_loss, atol=1e-5)
    assert all(torch.allclose(a, p.grad, atol=1e-6, rtol=1e-4) for a, p in zip(grads, trainable))


def test_parallel_training_runs_and_restores_torch_threads():
    from trainers.loop import train_loop

    model, _ = _perturbed_lora_model(2)
    examples, pad = _toy_batch(32, 4)
    before = torch.get_num_threads()
    result = train_loop(model, examples, steps=12, batch_size=8, lr=5e-3, pad_id=pad, workers=2)
    assert torch.get_num_threads() == before
    assert math.isfinite(result.final_loss) and result.tokens > 0


def test_tiny_bases_fold_lora_and_use_every_core_on_cpu_only():
    tiny = count_params(TINY_BASE_DIR)
    cpu = resolve(TrainRequest(), tiny, cuda=False, cores=3)
    assert cpu.fold_lora and cpu.workers == 3
    assert resolve(TrainRequest(), tiny, cuda=True, cores=3).workers == 1
    big = resolve(TrainRequest(), 7_000_000_000, cuda=False, cores=3)
    assert not big.fold_lora and big.workers == 1


def test_qlora_code_path_runs_on_cpu(tmp_path):
    pytest.importorskip("bitsandbytes")
    train = [Example(p, r, "train", {}) for p, r in toy_task(8, 2)]
    cfg = resolve(TrainRequest(method="qlora", max_steps=2, batch_size=4), count_params(TINY_BASE_DIR), cuda=False)
    out = train_adapter(train, cfg, TINY_BASE_DIR, tmp_path / "q")
    kinds = {type(m).__name__ for m in out.model.modules()}
    assert "Linear4bit" in kinds  # the base really is 4-bit NF4
    assert math.isfinite(out.loop.final_loss) and (tmp_path / "q" / "adapter_model.safetensors").is_file()


def test_run_job_produces_a_signed_evaluated_adapter(tmp_path):
    rows = [{"prompt": p, "response": r, "split": "train"} for p, r in toy_task(48, 3)]
    rows += [{"prompt": p, "response": r, "split": "eval"} for p, r in toy_task(8, 4)]
    uri = str(tmp_path / "snap.jsonl")
    command = {"command_id": "cmd-1", "cluster_id": 7, "base_model": TINY_BASE_NAME, "dataset_uri": uri,
               "dataset_sha256": write_snapshot(uri, rows), "method": "auto", "epochs": 1.0}
    store = ArtifactStore(str(tmp_path / "artifacts"))
    phases = []
    ctx = JobContext(store=store, signer=hmac_signer(KEY), gate=Gate(min_gain=0.5),
                     request_overrides={"max_steps": 3})
    out = run_job(command, ctx, lambda phase, p: phases.append(phase))
    assert phases[0] == "loading" and "training" in phases and phases[-1] == "evaluating"
    assert out.adapter_id == adapter_id_for(command) == adapter_id_for(dict(command))
    adapter_dir = tmp_path / "artifacts" / "adapters" / out.adapter_id
    manifest = verify(out.manifest_uri, adapter_dir, hmac_key=KEY)
    assert manifest["dataset"]["sha256"] == command["dataset_sha256"]
    assert manifest["base_model"]["weights_sha256"] == weights_sha256(TINY_BASE_DIR)
    assert manifest["extra"]["command_id"] == "cmd-1" and manifest["config"]["method"] == "lora"
    for side in ("adapter", "base"):
        for metric in ("exact_match", "field_f1", "json_valid", "format_valid", "latency_ms"):
            assert 0 <= manifest["metrics"][f"{side}_{metric}"] <= (1 if metric != "latency_ms" else 1e6)
    assert out.gate.passed is False and "too little gain" in out.gate.reason  # 3 steps cannot gain 0.5
    # both decodings were scored; copy decoding is kept (decoding.json, signed) only if no worse
    m = manifest["metrics"]
    copy_kept = (adapter_dir / "decoding.json").exists()
    assert copy_kept == (m["adapter_copy_decoding_exact_match"] >= m["adapter_free_decoding_exact_match"])
    assert m["adapter_copy_decoding"] == float(copy_kept)
    assert ("decoding.json" in manifest["files"]) == copy_kept
    assert torch.get_num_threads() >= 1
