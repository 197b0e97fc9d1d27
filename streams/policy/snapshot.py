"""Content-addressed training snapshots of one task cluster.

    info = write_snapshot(rows, artifacts_uri)     # -> SnapshotInfo(uri, sha256, n_train, n_eval)

rows are curated observations (already redacted upstream: rows still carrying an empty
redaction_version are refused). The snapshot keeps trainable rows only (not a near-duplicate,
outcome success or unknown, non-empty prompt and response, no format error), removes exact
duplicates (same prompt, response and tool_calls: the smallest event_id is kept) and sorts by
event_id, so the same examples always give the same bytes. Each line is
{"event_id", "prompt", "response", "tool_calls", "split"}.

The split is a fixed function of the event id (sha256 of the id below eval_fraction -> eval),
so an example never moves between train and eval as the cluster grows and retrains never
evaluate on what an earlier adapter trained on. One exception keeps tiny snapshots usable
(the trainer needs both splits): if every row hashed to one side, the row with the most
extreme hash moves to the other.

The file lands at <artifacts_uri>/datasets/sha256-<hex>.jsonl (a local directory or any
fsspec URI); writing is idempotent: an existing file of that name already holds these bytes.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping, NamedTuple

import fsspec

from streams.policy.stats import is_trainable

DEFAULT_EVAL_FRACTION = 0.1


class SnapshotError(ValueError):
    pass


class SnapshotInfo(NamedTuple):
    uri: str
    sha256: str
    n_train: int
    n_eval: int


def split_position(event_id: str) -> float:
    """Uniform in [0, 1), fixed for an event id."""
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big") / 2.0 ** 64


def split_of(event_id: str, eval_fraction: float = DEFAULT_EVAL_FRACTION) -> str:
    return "eval" if split_position(event_id) < eval_fraction else "train"


def select_examples(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    by_id: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if "redaction_version" in row and not row["redaction_version"]:
            raise SnapshotError(f"row {row.get('event_id')!r} has no redaction_version: only redacted rows "
                                "(slm_observation_curated / the clustered topic) may enter a dataset")
        if is_trainable(row):
            by_id.setdefault(row["event_id"], row)
    kept: dict[tuple[str, str, str | None], Mapping[str, Any]] = {}
    for eid in sorted(by_id):
        row = by_id[eid]
        kept.setdefault((row["prompt"], row["response"], row.get("tool_calls")), row)
    return sorted(kept.values(), key=lambda r: r["event_id"])


def snapshot_bytes(rows: Iterable[Mapping[str, Any]], eval_fraction: float = DEFAULT_EVAL_FRACTION) -> tuple[bytes, int, int]:
    """The snapshot's exact bytes and its (n_train, n_eval). Pure."""
    if not 0.0 < eval_fraction < 1.0:
        raise SnapshotError(f"eval_fraction={eval_fraction} must be between 0 and 1")
    examples = select_examples(rows)
    if len(examples) < 2:
        raise SnapshotError(f"{len(examples)} trainable example(s): a snapshot needs at least 2 (one per split)")
    pos = {r["event_id"]: split_position(r["event_id"]) for r in examples}
    split = {eid: ("eval" if p < eval_fraction else "train") for eid, p in pos.items()}
    values = set(split.values())
    if values == {"train"}:
        split[min(pos, key=pos.get)] = "eval"
    elif values == {"eval"}:
        split[max(pos, key=pos.get)] = "train"
    lines = [json.dumps({"event_id": r["event_id"], "prompt": r["prompt"], "response": r["response"],
                         "tool_calls": r.get("tool_calls"), "split": split[r["event_id"]]},
                        ensure_ascii=False, separators=(",", ":"))
             for r in examples]
    n_eval = sum(1 for s in split.values() if s == "eval")
    return ("\n".join(lines) + "\n").encode("utf-8"), len(examples) - n_eval, n_eval


def write_snapshot(rows: Iterable[Mapping[str, Any]], artifacts_uri: str,
                   eval_fraction: float = DEFAULT_EVAL_FRACTION) -> SnapshotInfo:
    data, n_train, n_eval = snapshot_bytes(rows, eval_fraction)
    digest = hashlib.sha256(data).hexdigest()
    uri = f"{artifacts_uri.rstrip('/')}/datasets/sha256-{digest}.jsonl"
    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.tmp-{digest[:8]}"
        with fs.open(tmp, "wb") as f:
            f.write(data)
        fs.mv(tmp, path)   # readers never see a torn file under the final name
    return SnapshotInfo(uri, digest, n_train, n_eval)
