"""A small, pickle-free container for model state: a JSON header plus named numpy arrays,
written with numpy's npz (zip) format and read back with allow_pickle=False, so a snapshot
taken from Kafka cannot execute code when serving loads it."""
from __future__ import annotations

import io
import json

import numpy as np

MAGIC = b"DSTC1"


def pack(meta: dict, arrays: dict[str, np.ndarray], compress: bool = True) -> bytes:
    buf = io.BytesIO()
    header = np.frombuffer(json.dumps(meta, separators=(",", ":")).encode("utf-8"), dtype=np.uint8)
    save = np.savez_compressed if compress else np.savez
    save(buf, __meta__=header, **arrays)
    return MAGIC + buf.getvalue()


def unpack(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    if not data.startswith(MAGIC):
        raise ValueError("not a clustering model state (bad magic); was it written by streams.clustering?")
    with np.load(io.BytesIO(data[len(MAGIC):]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    return meta, arrays
