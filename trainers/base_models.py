"""Finding a base model on local disk (never on a hub) and fingerprinting its weights."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from trainers.fixture import TINY_BASE_DIR, TINY_BASE_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


class BaseModelError(ValueError):
    """The base model cannot be found or read. Never worth a retry."""


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def resolve_base(name: str, candidates_file: Path | None = None, default: Path | None = None) -> Path:
    """A command's base_model -> a local Hugging Face directory.

    Tried in order: a directory path; a model_name in the candidate registry
    (DISTILLERY_MODEL_CANDIDATES, relative paths from the repository root); the shipped tiny
    fixture by its name; DISTILLERY_BASE_MODEL when the command names none."""
    name = (name or "").strip()
    if name:
        direct = Path(name).expanduser()
        if _is_model_dir(direct):
            return direct.resolve()
        if candidates_file is not None and candidates_file.is_file():
            for entry in json.loads(candidates_file.read_text()).get("candidates", []):
                if entry.get("model_name") == name and entry.get("path"):
                    path = Path(entry["path"]).expanduser()
                    for root in ((path,) if path.is_absolute() else (REPO_ROOT / path, Path.cwd() / path)):
                        if _is_model_dir(root):
                            return root.resolve()
        if name in (TINY_BASE_NAME, "tiny-base") and _is_model_dir(TINY_BASE_DIR):
            return TINY_BASE_DIR
        raise BaseModelError(
            f"base model {name!r} is neither a local model directory (with config.json) nor a candidate "
            f"with a local path in {candidates_file}; nothing is downloaded at run time, so copy the model "
            "to this node and name its directory")
    if default is not None and _is_model_dir(default):
        return default.resolve()
    if _is_model_dir(TINY_BASE_DIR):
        return TINY_BASE_DIR
    raise BaseModelError("the command names no base model and DISTILLERY_BASE_MODEL is unset")


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def weights_sha256(model_dir: Path) -> str:
    """One hash over every weight file (name and content), so a changed shard changes it."""
    files = sorted(p for p in Path(model_dir).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise BaseModelError(f"{model_dir} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.relative_to(model_dir).as_posix()}:{_file_sha256(p)}\n".encode())
    return h.hexdigest()


def count_params(model_dir: Path) -> int:
    """Parameter count from the safetensors headers, without loading any weights."""
    import struct

    total = 0
    for p in sorted(Path(model_dir).glob("*.safetensors")):
        with open(p, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header: dict[str, Any] = json.loads(f.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                count = 1
                for dim in v["shape"]:
                    count *= dim
                total += count
    if total == 0:
        raise BaseModelError(f"{model_dir}: no safetensors weights to size the model from")
    return total
