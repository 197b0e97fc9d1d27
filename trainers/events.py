"""The records the trainer publishes, built from a command and a job's outcome. Pure; field
names follow schemas/*.avsc (trained_event, registry_event, promote_command,
training_progress)."""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

from trainers.job import JobOutcome
from trainers.loop import Progress


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v == v and v not in (float("inf"), float("-inf"))}


def progress_event(command: Mapping[str, Any], phase: str, now_ms: int, p: Progress | None = None,
                   step: int = 0, total: int = 0) -> dict[str, Any]:
    return {
        "command_id": command["command_id"], "ts": now_ms, "cluster_id": int(command["cluster_id"]), "phase": phase,
        "step": p.step if p else step, "total_steps": p.total if p else total,
        "loss": p.loss if p and p.loss == p.loss else None,
        "tokens_per_s": p.tokens_per_s if p else None, "eta_s": p.eta_s if p else None,
    }


def trained_succeeded(command: Mapping[str, Any], out: JobOutcome, attempt: int, now_ms: int) -> dict[str, Any]:
    return {
        "command_id": command["command_id"], "ts": now_ms, "cluster_id": int(command["cluster_id"]),
        "status": "succeeded", "reason": out.gate.reason, "adapter_id": out.adapter_id, "base_model": out.base_model,
        "manifest_uri": out.manifest_uri, "manifest_sha256": out.manifest_sha256, "method": out.method,
        "attempt": attempt, "metrics": _finite(out.metrics), "gate_passed": out.gate.passed,
    }


def trained_failed(command: Mapping[str, Any], reason: str, attempt: int, now_ms: int, method: str = "lora") -> dict[str, Any]:
    return {
        "command_id": command["command_id"], "ts": now_ms, "cluster_id": int(command["cluster_id"]),
        "status": "failed", "reason": reason, "adapter_id": None, "base_model": str(command.get("base_model", "")),
        "manifest_uri": None, "manifest_sha256": None, "method": method, "attempt": attempt, "metrics": {},
        "gate_passed": False,
    }


def registry_candidate(command: Mapping[str, Any], out: JobOutcome, now_ms: int) -> dict[str, Any]:
    cfg = out.config
    attrs = {"method": out.method, "r": str(cfg.get("r")), "alpha": str(cfg.get("alpha")),
             "target_modules": str(cfg.get("target_modules")), "base_params": str(cfg.get("base_params")),
             "command_id": str(command["command_id"]), "dataset_sha256": str(command.get("dataset_sha256", "")),
             "tokens_per_s": f"{out.metrics.get('train_tokens_per_s', 0.0):.1f}",
             "gate_passed": str(out.gate.passed).lower()}
    return {
        "model_id": out.adapter_id, "ts": now_ms, "kind": "adapter", "state": "candidate",
        "cluster_id": int(command["cluster_id"]), "base_model": out.base_model, "manifest_uri": out.manifest_uri,
        "manifest_sha256": out.manifest_sha256, "eval_scores": _finite(out.metrics), "attributes": attrs,
        "reason": out.gate.reason,
    }


def promote_shadow(command: Mapping[str, Any], out: JobOutcome, now_ms: int) -> dict[str, Any]:
    # Deterministic id: a republished outcome is recognised by serving as the same command.
    cid = "shadow-" + hashlib.sha256(f"{command['command_id']}|{out.adapter_id}".encode()).hexdigest()[:24]
    evidence = {k: v for k, v in _finite(out.metrics).items()
                if k.startswith(("adapter_", "base_")) or k.endswith("_gain")}
    return {
        "command_id": cid, "ts": now_ms, "adapter_id": out.adapter_id, "cluster_id": int(command["cluster_id"]),
        "action": "shadow", "reason": out.gate.reason, "manifest_uri": out.manifest_uri, "rollback_to": None,
        "evidence": evidence, "actor": "trainer",
    }
