"""One retrain job, pure of Kafka: command in; a trained, evaluated, signed adapter in the
artifact store out (or an exception saying why not)."""
from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from schemas.manifest import ManifestError, Signer, build_manifest, manifest_sha256, sign_manifest, write_manifest
from trainers.artifacts import ArtifactStore
from trainers.base_models import BaseModelError, count_params, resolve_base, weights_sha256
from trainers.config import ConfigError, TrainRequest, resolve
from trainers.copy_decoding import MODE_COPY, CopyVocabulary
from trainers.dataset import DatasetError, load_snapshot
from trainers.evaluate import evaluate_adapter_and_base, flat_metrics
from trainers.gate import Gate, GateResult
from trainers.loop import Progress
from trainers.lora import cuda_available, train_adapter

log = logging.getLogger(__name__)

# Errors no retry can fix: the job fails at once with the message as its reason.
PERMANENT_ERRORS = (DatasetError, BaseModelError, ConfigError, ManifestError)

PhaseFn = Callable[[str, Progress | None], None]


def adapter_id_for(command: Mapping[str, Any]) -> str:
    """Deterministic, so a retried attempt overwrites its own half-written files, never
    another adapter's."""
    digest = hashlib.sha256(str(command["command_id"]).encode()).hexdigest()[:12]
    return f"c{int(command['cluster_id'])}-{digest}"


def code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("distillery")
    except PackageNotFoundError:
        pkg = "0"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"distillery {pkg}" + (f" ({sha})" if sha else "")


@dataclass
class JobContext:
    store: ArtifactStore
    signer: Signer
    gate: Gate = field(default_factory=Gate)
    candidates_file: Path | None = None
    default_base: Path | None = None
    eval_batch_size: int = 16
    request_overrides: dict[str, Any] = field(default_factory=dict)   # e.g. max_steps, batch_size


@dataclass
class JobOutcome:
    adapter_id: str
    manifest_uri: str
    manifest_sha256: str
    base_model: str
    method: str
    scores: dict[str, dict[str, float]]
    metrics: dict[str, float]
    gate: GateResult
    config: dict[str, Any]


def run_job(command: Mapping[str, Any], ctx: JobContext, on_phase: PhaseFn | None = None) -> JobOutcome:
    phase = on_phase or (lambda name, progress: None)
    phase("loading", None)
    snapshot = load_snapshot(command["dataset_uri"], command.get("dataset_sha256"))
    base_dir = resolve_base(command.get("base_model", ""), ctx.candidates_file, ctx.default_base)
    request = TrainRequest.from_command(command)
    if ctx.request_overrides:
        request = TrainRequest(**{**request.__dict__, **ctx.request_overrides})
    cfg = resolve(request, count_params(base_dir), cuda_available())
    base_hash = weights_sha256(base_dir)
    adapter_id = adapter_id_for(command)

    work = Path(tempfile.mkdtemp(prefix=f"distillery-{adapter_id}-"))
    try:
        adapter_dir = work / adapter_id
        t0 = time.perf_counter()
        trained = train_adapter(snapshot.train, cfg, base_dir, adapter_dir, progress=lambda p: phase("training", p))
        train_seconds = time.perf_counter() - t0
        phase("evaluating", None)
        t1 = time.perf_counter()
        # JSON string values copied from the request or learnt from the teacher's answers
        vocabulary = CopyVocabulary.from_examples((ex.prompt, ex.response) for ex in snapshot.train) if cfg.json_targets else None
        if vocabulary is not None and not vocabulary.known:
            vocabulary = None   # not a JSON task: nothing to constrain
        scores = evaluate_adapter_and_base(trained.model, trained.tokenizer, snapshot.eval, batch_size=ctx.eval_batch_size,
                                           vocabulary=vocabulary)
        if vocabulary is not None and scores["adapter"].get("copy_decoding"):
            vocabulary.save(adapter_dir, MODE_COPY)   # before the manifest: its hashes cover the file
        eval_seconds = time.perf_counter() - t1
        verdict = ctx.gate.check(scores["adapter"], scores["base"])
        metrics = flat_metrics(scores)
        metrics.update(train_tokens_per_s=trained.loop.tokens_per_s, train_seconds=train_seconds,
                       eval_seconds=eval_seconds, train_steps=float(trained.loop.steps),
                       final_loss=trained.loop.final_loss, trainable_params=float(trained.trainable_params),
                       train_examples=float(len(snapshot.train)), eval_examples=float(len(snapshot.eval)))
        config = {**cfg.to_dict(), "gate": {"min_gain": ctx.gate.min_gain, "min_format": ctx.gate.min_format,
                                            "min_exact_match": ctx.gate.min_exact_match},
                  "prompt_format": "chat_template" if getattr(trained.tokenizer, "chat_template", None) else "plain"}
        manifest = build_manifest(
            adapter_id=adapter_id, adapter_dir=adapter_dir, base_model_id=str(command.get("base_model") or base_dir),
            base_weights_sha256=base_hash, dataset_uri=snapshot.uri, dataset_sha256=snapshot.sha256,
            config=config, metrics=metrics, code_version=code_version(), created_at_ms=int(time.time() * 1000),
            extra={"command_id": command["command_id"], "cluster_id": int(command["cluster_id"]),
                   "base_model_dir": str(base_dir), "gate_passed": verdict.passed, "gate_reason": verdict.reason},
        )
        signed = sign_manifest(manifest, ctx.signer)
        write_manifest(signed, adapter_dir)
        manifest_uri = ctx.store.put_adapter(adapter_dir, adapter_id)
        return JobOutcome(adapter_id, manifest_uri, manifest_sha256(signed), str(command.get("base_model") or base_dir),
                          cfg.method, scores, metrics, verdict, config)
    finally:
        shutil.rmtree(work, ignore_errors=True)
