"""MinHash signatures of a batch of texts, computed with numpy in one pass.

The scheme is one-permutation MinHash with optimal densification (Li, Owen & Zhang 2012;
Shrivastava 2017): each shingle's 64-bit hash picks one of ``num_perm`` bins with its high 32
bits and competes for that bin's minimum with its low 31 bits. A bin no shingle fell into takes
the value of the first non-empty bin along a fixed pseudo-random probe order of its own. For two
texts a bin agrees with probability equal to the Jaccard similarity of their shingle sets, as
with ``num_perm`` independent permutations, at the cost of hashing each shingle once instead of
``num_perm`` times (the classic scheme costs as much per document as datasketch does).

A signature keeps only the low 8 bits of each bin's minimum (b-bit minwise hashing, Li & König
2010): two different minima then agree with probability 1/256, so a bin agrees with probability
P = J + (1 - J)/256 and ``estimate`` inverts that. At J = 0.85 this costs 0.3% of standard error
against full 32-bit values and takes a quarter of the memory: for a fixed state size, more bins
of 8 bits estimate better than fewer bins of 32 (256 bins x 8 bits have 30% less error than
128 x 16).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .hashing import HASH_SCHEME, mix64, shingle_hashes, tokenise
from .normalise import encode_batch

SIGNATURE_SCHEME = f"oph-densified-b8/{HASH_SCHEME}"
SIGNATURE_DTYPE = np.uint8
CHANCE_AGREEMENT = 1.0 / 256          # two different minima agree in their low 8 bits
_EMPTY = np.uint32(0xFFFFFFFF)     # bin values are 31-bit, so this never is one
_PROBE_SEED = 0x632BE59BD9B4E019
_SCAN_ELEMENTS = 1 << 14
# Texts are hashed in chunks of about this many characters: the chunk's intermediate arrays
# (~10 bytes per character) then stay in the core's cache, which is 2x faster than one pass
# over a 1000-prompt batch (measured: bench/bench_dedupe.py).
CHUNK_CHARS = 64_000


@lru_cache(maxsize=8)
def probe_order(num_perm: int) -> np.ndarray:
    """Row j: the order in which an empty bin j looks for a non-empty bin to copy. Fixed by the
    constants here (never by a library's random generator), so it is part of the format."""
    j = np.arange(num_perm, dtype=np.uint64)[:, None]
    i = np.arange(num_perm, dtype=np.uint64)[None, :]
    keys = mix64((j << np.uint64(32)) ^ i ^ np.uint64(_PROBE_SEED))
    keys[np.arange(num_perm), np.arange(num_perm)] = np.uint64(0)    # a bin never copies itself
    order = np.argsort(keys, axis=1, kind="stable")[:, 1:]
    return np.ascontiguousarray(order.astype(np.int64))


class MinHasher:
    """Texts in, signatures out: ``signatures(texts) -> (len(texts), num_perm) uint8``."""

    def __init__(self, num_perm: int = 128, shingle_size: int = 3):
        if num_perm < 2:
            raise ValueError("num_perm must be at least 2")
        self.num_perm = num_perm
        self.shingle_size = shingle_size

    def signatures(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.num_perm), dtype=SIGNATURE_DTYPE)
        chunks = _chunks(texts)
        if len(chunks) == 1:
            return self._signatures(texts)
        return np.concatenate([self._signatures(texts[a:b]) for a, b in chunks])

    def _signatures(self, texts: list[str]) -> np.ndarray:
        n = len(texts)
        token_hash, doc = tokenise(encode_batch(texts))
        sh, sh_doc = shingle_hashes(token_hash, doc, n, self.shingle_size)
        return self.from_shingle_hashes(sh, sh_doc, n)

    def from_shingle_hashes(self, sh: np.ndarray, sh_doc: np.ndarray, n: int) -> np.ndarray:
        k = self.num_perm
        bins = ((sh >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)
        flat = sh_doc * k
        flat += bins.astype(np.int64)
        values = (sh & np.uint64(0x7FFFFFFF)).astype(np.uint32)
        mins = np.full(n * k, _EMPTY, dtype=np.uint32)
        np.minimum.at(mins, flat, values)
        mins = mins.reshape(n, k)
        densify(mins, probe_order(k))
        return mins.astype(SIGNATURE_DTYPE)          # the low 8 bits


def estimate(agreeing: np.ndarray | int, num_perm: int) -> np.ndarray | float:
    """Jaccard similarity estimated from the number of agreeing bins."""
    p = np.asarray(agreeing, dtype=np.float64) / num_perm
    est = np.clip((p - CHANCE_AGREEMENT) / (1.0 - CHANCE_AGREEMENT), 0.0, 1.0)
    return float(est) if est.ndim == 0 else est


def min_agreeing(threshold: float, num_perm: int) -> int:
    """The fewest agreeing bins whose estimate reaches ``threshold``."""
    need = int(np.ceil((threshold * (1.0 - CHANCE_AGREEMENT) + CHANCE_AGREEMENT) * num_perm - 1e-9))
    while need > 0 and estimate(need - 1, num_perm) >= threshold:
        need -= 1
    while estimate(need, num_perm) < threshold and need < num_perm:
        need += 1
    return need


def _chunks(texts: list[str]) -> list[tuple[int, int]]:
    out, start, size = [], 0, 0
    for i, t in enumerate(texts):
        size += len(t)
        if size >= CHUNK_CHARS:
            out.append((start, i + 1))
            start, size = i + 1, 0
    if start < len(texts):
        out.append((start, len(texts)))
    return out


def densify(mins: np.ndarray, order: np.ndarray) -> None:
    """Fill empty bins in place: bin j of a document copies the first bin in ``order[j]`` that
    the document's own shingles filled. Every document has at least one shingle."""
    k = mins.shape[1]
    flat = mins.reshape(-1)
    filled = flat != _EMPTY
    empty = np.flatnonzero(~filled)
    if not len(empty):
        return
    row_start = empty - empty % k
    bins = empty - row_start
    # Most empty bins find a filled one within a few probes: probe one round at a time (flat
    # indices, one contiguous column of the order per round) while many are left, then scan the
    # whole order for the few that remain (documents with very few shingles).
    columns = _order_columns(k)
    for r in range(k - 1):
        if len(empty) * k <= _SCAN_ELEMENTS:
            break
        src = row_start + columns[r][bins]
        hit = filled[src]
        flat[empty[hit]] = flat[src[hit]]
        miss = ~hit
        empty, row_start, bins = empty[miss], row_start[miss], bins[miss]
    if not len(empty):
        return
    candidates = row_start[:, None] + order[bins]          # (remaining, k - 1) flat indices
    first = filled[candidates].argmax(axis=1)
    flat[empty] = flat[candidates[np.arange(len(empty)), first]]


@lru_cache(maxsize=8)
def _order_columns(num_perm: int) -> np.ndarray:
    return np.ascontiguousarray(probe_order(num_perm).T)
