"""Dataset snapshots: JSONL rows {"prompt", "response", "split": "train"|"eval", ...} at a path
or any fsspec URI, checked against the sha256 the retrain command carries before anything
reads a row."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import fsspec

SPLITS = ("train", "eval")


class DatasetError(ValueError):
    """The snapshot cannot be used; the message says which row and why. Never worth a retry."""


@dataclass(frozen=True)
class Example:
    prompt: str
    response: str
    split: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    uri: str
    sha256: str
    train: list[Example]
    eval: list[Example]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(uri: str) -> bytes:
    try:
        with fsspec.open(uri, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DatasetError(f"dataset snapshot {uri} does not exist") from None


def parse_rows(data: bytes, uri: str = "<bytes>") -> tuple[list[Example], list[Example]]:
    """(train, eval) examples; raises DatasetError naming the first bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{uri}: not UTF-8 (byte {exc.start})") from None
    train: list[Example] = []
    held: list[Example] = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{uri} line {no}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{uri} line {no}: a row must be a JSON object, got {type(row).__name__}")
        tool_calls = row.get("tool_calls")
        if not (isinstance(row.get("response"), str) and row["response"].strip()) and isinstance(tool_calls, str) \
                and tool_calls.strip():
            # An agent call answered by tool calls alone: learn the calls, spelled the way
            # serving judges such answers (serving.quality.answer_text).
            row = {**row, "response": '{"tool_calls":' + tool_calls.strip() + "}"}
        for key in ("prompt", "response"):
            value = row.get(key)
            if not isinstance(value, str):
                raise DatasetError(f"{uri} line {no}: {key!r} must be a string, got {type(value).__name__}")
            if not value.strip():
                raise DatasetError(f"{uri} line {no}: {key!r} is empty")
        split = row.get("split")
        if split not in SPLITS:
            raise DatasetError(f"{uri} line {no}: 'split' must be 'train' or 'eval', got {split!r}")
        meta = {k: v for k, v in row.items() if k not in ("prompt", "response", "split")}
        (train if split == "train" else held).append(Example(row["prompt"], row["response"], split, meta))
    if not train and not held:
        raise DatasetError(f"{uri}: the snapshot has no rows")
    if not train:
        raise DatasetError(f"{uri}: no rows with split 'train' ({len(held)} eval rows)")
    if not held:
        raise DatasetError(f"{uri}: no rows with split 'eval': the adapter could not be evaluated")
    return train, held


def load_snapshot(uri: str, expected_sha256: str | None) -> Snapshot:
    """Read, verify the sha256 of the exact bytes, then parse. A None/empty expected hash is
    refused: an unverifiable snapshot must not train an adapter we sign."""
    data = read_bytes(uri)
    actual = sha256_bytes(data)
    if not expected_sha256:
        raise DatasetError(f"{uri}: no dataset_sha256 given; refusing an unverified snapshot (actual {actual})")
    if actual != expected_sha256.strip().lower():
        raise DatasetError(f"{uri}: sha256 mismatch: the command says {expected_sha256}, the bytes hash to {actual}")
    train, held = parse_rows(data, uri)
    return Snapshot(uri, actual, train, held)


def write_snapshot(uri: str, rows: list[dict[str, Any]]) -> str:
    """Write rows as JSONL and return the sha256 of the bytes written (for tests, the bench
    and the demo)."""
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")
    with fsspec.open(uri, "wb") as f:
        f.write(data)
    return sha256_bytes(data)
