"""The checkpoint of a DedupeIndex: our own versioned binary format, not a pickle.

Layout (all integers little-endian):
    b"DDUPIDX\\n"  magic
    u32 version    FORMAT_VERSION
    u32 n          length of the JSON header
    header         UTF-8 JSON: settings, signature scheme, counters, scopes, section sizes
    sections       raw arrays in header order: signatures (u8, n x num_perm), ts (i8),
                   serial (i8), scope (i4), event ids (u32 lengths + UTF-8), then the remembered
                   duplicate verdicts: event ids, duplicate_of ids, ts (i8), similarity (f8)
    u32 crc32      of everything before it

Only the remembered signatures are written (in insertion order), never the LSH buckets: they are
rebuilt from the signatures on load, so a checkpoint survives a change of band layout or
threshold. A checkpoint written under another signature scheme (another hash, num_perm or
shingle size) cannot be reused, and loading it says so.
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from .minhash import SIGNATURE_SCHEME

if TYPE_CHECKING:
    from .index import DedupeIndex

MAGIC = b"DDUPIDX\n"
FORMAT_VERSION = 1
OVERRIDABLE = ("threshold", "max_signatures", "max_age_s", "max_candidates", "max_bucket_scan")


class CheckpointError(ValueError):
    """The bytes are not a dedupe checkpoint this code can restore."""


def _strings(values: list[str]) -> tuple[bytes, bytes]:
    encoded = [v.encode("utf-8") for v in values]
    return np.array([len(e) for e in encoded], dtype="<u4").tobytes(), b"".join(encoded)


def _unstrings(lengths: np.ndarray, blob: bytes) -> list[str]:
    ends = np.cumsum(lengths, dtype=np.int64).tolist()
    starts = [0] + ends[:-1]
    return [blob[a:b].decode("utf-8") for a, b in zip(starts, ends)]


def encode(index: "DedupeIndex") -> bytes:
    store = index._store
    slots = store.in_serial_order()
    used, scope_ids = np.unique(store.scope[slots], return_inverse=True)
    verdicts = list(index._verdicts.items())
    sections: list[tuple[str, bytes]] = [
        ("sig", store.sig[slots].astype("u1").tobytes()),
        ("ts", store.ts[slots].astype("<i8").tobytes()),
        ("serial", store.serial[slots].astype("<i8").tobytes()),
        ("scope", scope_ids.astype("<i4").tobytes()),
    ]
    lengths, blob = _strings([store.event_id[s] for s in slots.tolist()])
    sections += [("event_id_len", lengths), ("event_id", blob)]
    lengths, blob = _strings([e for e, _ in verdicts])
    sections += [("verdict_id_len", lengths), ("verdict_id", blob)]
    lengths, blob = _strings([v.duplicate_of for _, (_, v) in verdicts])
    sections += [("verdict_of_len", lengths), ("verdict_of", blob),
                 ("verdict_ts", np.array([t for _, (t, _) in verdicts], dtype="<i8").tobytes()),
                 ("verdict_sim", np.array([v.similarity for _, (_, v) in verdicts], dtype="<f8").tobytes())]
    header = {
        "signature_scheme": SIGNATURE_SCHEME, "num_perm": index.num_perm,
        "shingle_size": index.shingle_size, "threshold": index.threshold,
        "max_signatures": index.max_signatures, "max_age_s": index.max_age_s,
        "max_candidates": index.max_candidates, "max_bucket_scan": index.max_bucket_scan,
        "watermark_ms": index._watermark_ms, "next_serial": index._next_serial,
        "counters": index.counters, "scopes": [index._scopes[i] for i in used.tolist()],
        "signatures": len(slots), "verdicts": len(verdicts),
        "sections": [[name, len(data)] for name, data in sections],
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    body = b"".join([MAGIC, struct.pack("<II", FORMAT_VERSION, len(head)), head] + [d for _, d in sections])
    return body + struct.pack("<I", zlib.crc32(body))


def read_header(data: bytes) -> dict[str, Any]:
    """The checkpoint's JSON header (validates magic, version and checksum)."""
    if len(data) < len(MAGIC) + 12 or data[:len(MAGIC)] != MAGIC:
        raise CheckpointError("not a dedupe index checkpoint (bad magic)")
    version, head_len = struct.unpack_from("<II", data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise CheckpointError(f"dedupe checkpoint format {version} is not supported (this code reads {FORMAT_VERSION})")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise CheckpointError("dedupe checkpoint is corrupt (checksum mismatch)")
    start = len(MAGIC) + 8
    header = json.loads(data[start:start + head_len].decode("utf-8"))
    header["_body_offset"] = start + head_len
    return header


def decode(cls: type["DedupeIndex"], data: bytes, overrides: dict[str, Any]) -> "DedupeIndex":
    header = read_header(data)
    if header["signature_scheme"] != SIGNATURE_SCHEME:
        raise CheckpointError(
            f"dedupe checkpoint uses signature scheme {header['signature_scheme']!r}, this code "
            f"computes {SIGNATURE_SCHEME!r}: its signatures cannot be compared with new ones; "
            "start a new index (delete the checkpoint)")
    unknown = set(overrides) - set(OVERRIDABLE)
    if unknown:
        raise ValueError(f"cannot override {sorted(unknown)} when restoring (only {', '.join(OVERRIDABLE)})")
    sections: dict[str, bytes] = {}
    pos = header["_body_offset"]
    for name, size in header["sections"]:
        sections[name] = data[pos:pos + size]
        pos += size
    if pos != len(data) - 4:
        raise CheckpointError("dedupe checkpoint is truncated or has trailing bytes")
    settings = {k: header[k] for k in OVERRIDABLE}
    settings.update(overrides)
    index = cls(num_perm=header["num_perm"], shingle_size=header["shingle_size"], **settings)
    n, k = header["signatures"], header["num_perm"]
    sigs = np.frombuffer(sections["sig"], dtype="u1").reshape(n, k).copy()
    event_ids = _unstrings(np.frombuffer(sections["event_id_len"], dtype="<u4"), sections["event_id"])
    verdicts = zip(_unstrings(np.frombuffer(sections["verdict_id_len"], dtype="<u4"), sections["verdict_id"]),
                   np.frombuffer(sections["verdict_ts"], dtype="<i8").tolist(),
                   _unstrings(np.frombuffer(sections["verdict_of_len"], dtype="<u4"), sections["verdict_of"]),
                   np.frombuffer(sections["verdict_sim"], dtype="<f8").tolist())
    index._restore(header["scopes"], sigs,
                   np.frombuffer(sections["ts"], dtype="<i8").astype(np.int64),
                   np.frombuffer(sections["serial"], dtype="<i8").astype(np.int64),
                   np.frombuffer(sections["scope"], dtype="<i4").astype(np.int32),
                   event_ids, verdicts, header["watermark_ms"], header["next_serial"], header["counters"])
    return index
