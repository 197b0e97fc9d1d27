"""The candidate registry of base models for specialists (distillery/defaults/model_candidates.json)
and its validator.

    candidates = load_candidates(path)          # raises CandidateError listing every problem
    base = select_base_model(candidates, cluster_id, min_safety_grade="B")

Every error names the file, the entry index (and model_name when known), the field, what is
expected and what was found, so a broken edit is fixed in one pass. Run
`python -m streams.policy.candidates [path]` to check a file by hand.
"""
from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

SAFETY_GRADES = ("A", "B", "C", "D")   # A is best
REQUIRED = ("model_name", "params", "context_len", "license", "tokens_per_s", "cost_per_1k",
            "supported_clusters", "safety_grade", "eval_scores")
OPTIONAL = ("path", "requires_local_dir", "hf_repo", "notes")


class CandidateError(ValueError):
    """The candidate file is invalid; .errors lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid model candidates:\n  " + "\n  ".join(errors))


@dataclass(frozen=True)
class ModelCandidate:
    model_name: str
    params: int
    context_len: int
    license: str
    tokens_per_s: float
    cost_per_1k: float
    supported_clusters: tuple[Any, ...]      # ("*",) or cluster ids
    safety_grade: str
    eval_scores: Mapping[str, float] = field(default_factory=dict)
    path: str | None = None
    requires_local_dir: bool = False
    hf_repo: str | None = None
    notes: str = ""

    def supports(self, cluster_id: int) -> bool:
        return "*" in self.supported_clusters or cluster_id in self.supported_clusters

    @property
    def available(self) -> bool:
        """Usable without a download: shipped, or an operator has set its local directory."""
        return not self.requires_local_dir or bool(self.path)

    def score_for(self, cluster_id: int) -> float | None:
        """Held-out score on this cluster when trained before, else the mean of its other
        scores, else None (unknown)."""
        own = self.eval_scores.get(f"cluster:{cluster_id}")
        if own is not None:
            return own
        general = [v for k, v in self.eval_scores.items() if not k.startswith("cluster:")]
        return sum(general) / len(general) if general else None


def grade_at_least(grade: str, minimum: str) -> bool:
    return SAFETY_GRADES.index(grade) <= SAFETY_GRADES.index(minimum)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_entry(i: int, e: Any, where: str) -> tuple[list[str], ModelCandidate | None]:
    if not isinstance(e, dict):
        return [f"{where}: candidates[{i}]: expected an object with fields {', '.join(REQUIRED)}, got {type(e).__name__}"], None
    name = e.get("model_name")
    label = f"{where}: candidates[{i}]" + (f" ({name})" if isinstance(name, str) and name else "")
    errs: list[str] = []

    def bad(fname: str, expected: str) -> None:
        got = repr(e.get(fname)) if fname in e else "missing"
        errs.append(f"{label}: field '{fname}': expected {expected}, got {got}")

    for key in e:
        if key not in REQUIRED and key not in OPTIONAL and not key.startswith("_"):
            close = difflib.get_close_matches(key, REQUIRED + OPTIONAL, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(REQUIRED + OPTIONAL)}"
            errs.append(f"{label}: unknown field '{key}'{hint}")
    if not (isinstance(name, str) and name.strip()):
        bad("model_name", "a non-empty string")
    for k in ("params", "context_len"):
        if not (isinstance(e.get(k), int) and not isinstance(e.get(k), bool) and e[k] > 0):
            bad(k, "a whole number > 0")
    if not (_is_number(e.get("tokens_per_s")) and e["tokens_per_s"] > 0):
        bad("tokens_per_s", "a number > 0 (generation throughput, tokens per second)")
    if not (_is_number(e.get("cost_per_1k")) and e["cost_per_1k"] >= 0):
        bad("cost_per_1k", "a number >= 0 (USD per 1k tokens)")
    if not (isinstance(e.get("license"), str) and e["license"].strip()):
        bad("license", "a licence name such as 'Apache-2.0'")
    sc = e.get("supported_clusters")
    if not (isinstance(sc, list) and sc and all(c == "*" or (isinstance(c, int) and not isinstance(c, bool)) for c in sc)):
        bad("supported_clusters", "a non-empty list of task-cluster ids (integers) or [\"*\"] for all")
    if e.get("safety_grade") not in SAFETY_GRADES:
        bad("safety_grade", f"one of {', '.join(SAFETY_GRADES)} (A is best)")
    scores = e.get("eval_scores")
    if not isinstance(scores, dict):
        bad("eval_scores", "an object of score name -> number between 0 and 1 ({} when not evaluated yet)")
    else:
        for k, v in scores.items():
            if not (_is_number(v) and 0.0 <= v <= 1.0):
                errs.append(f"{label}: field 'eval_scores.{k}': expected a number between 0 and 1, got {v!r}")
    rld = e.get("requires_local_dir", False)
    if not isinstance(rld, bool):
        bad("requires_local_dir", "true or false")
    path = e.get("path")
    if path is not None and not (isinstance(path, str) and path.strip()):
        bad("path", "a directory path string or null")
    if not rld and not path and "path" in e:
        bad("path", "a local directory when requires_local_dir is false (or set requires_local_dir: true)")
    for k in ("hf_repo", "notes"):
        if e.get(k) is not None and not isinstance(e.get(k), str):
            bad(k, "a string")
    if errs:
        return errs, None
    return [], ModelCandidate(
        model_name=name, params=e["params"], context_len=e["context_len"], license=e["license"],
        tokens_per_s=float(e["tokens_per_s"]), cost_per_1k=float(e["cost_per_1k"]),
        supported_clusters=tuple(sc), safety_grade=e["safety_grade"], eval_scores=dict(scores),
        path=path, requires_local_dir=rld, hf_repo=e.get("hf_repo"), notes=e.get("notes") or "")


def validate_candidates(data: Any, source: str = "<candidates>") -> list[ModelCandidate]:
    """Parsed JSON -> candidates, or CandidateError with every problem found."""
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), list):
        raise CandidateError([f"{source}: expected an object {{\"candidates\": [ ... ]}} at the top level"])
    errors: list[str] = []
    out: list[ModelCandidate] = []
    for i, entry in enumerate(data["candidates"]):
        errs, cand = _check_entry(i, entry, source)
        errors.extend(errs)
        if cand is not None:
            out.append(cand)
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["candidates"]):
        name = entry.get("model_name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            if name in seen:
                errors.append(f"{source}: candidates[{i}] ({name}): field 'model_name': expected a unique name, "
                              f"already used by candidates[{seen[name]}]")
            seen.setdefault(name, i)
    if not data["candidates"]:
        errors.append(f"{source}: 'candidates' is empty; list at least one base model")
    if errors:
        raise CandidateError(errors)
    return out


def load_candidates(path: str | Path) -> list[ModelCandidate]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise CandidateError([f"{p}: cannot read the file ({exc.strerror})"]) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CandidateError([f"{p}: not valid JSON ({exc})"]) from None
    return validate_candidates(data, str(p))


def select_base_model(candidates: Iterable[ModelCandidate], cluster_id: int, min_safety_grade: str = "D",
                      max_params: int | None = None) -> ModelCandidate | None:
    """The base a new specialist of this cluster starts from: among available candidates that
    support the cluster and meet the safety grade and size cap, the best known score on the
    cluster (unknown counts as 0), then the cheapest, then the name (deterministic)."""
    eligible = [c for c in candidates
                if c.available and c.supports(cluster_id) and grade_at_least(c.safety_grade, min_safety_grade)
                and (max_params is None or c.params <= max_params)]
    if not eligible:
        return None
    return min(eligible, key=lambda c: (-(c.score_for(cluster_id) or 0.0), c.cost_per_1k, c.model_name))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path(__file__).resolve().parents[2] / "distillery" / "defaults" / "model_candidates.json"
    try:
        cands = load_candidates(path)
    except CandidateError as exc:
        print(exc, file=sys.stderr)
        return 1
    for c in cands:
        state = "available" if c.available else "needs a local directory (set 'path')"
        print(f"{c.model_name:28s} {c.params / 1e6:9.1f}M ctx={c.context_len:<6d} {c.license:20s} "
              f"safety={c.safety_grade} ${c.cost_per_1k:.6f}/1k  {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
