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

The pipeline, all numpy over many texts at once: chunks of ~64 KB of text are tokenised and
hashed (hashing.py: token hashes, then every window of ``shingle_size`` tokens of the chunk,
those that cross a document boundary sent to a spare row), their bin minima collected with
``np.minimum.at``; blocks of ~128 texts are densified together (densify.py) and cut to 8 bits.
"""
from __future__ import annotations

import numpy as np

from .densify import EMPTY as _EMPTY
from .densify import densify, densify_group_rows
from .hashing import HASH_SCHEME, batch_shingles, tokenise_offsets
from .normalise import encode_batch

SIGNATURE_SCHEME = f"oph-densified-b8/{HASH_SCHEME}"
SIGNATURE_DTYPE = np.uint8
CHANCE_AGREEMENT = 1.0 / 256          # two different minima agree in their low 8 bits
# Texts are hashed in chunks of about this many characters (and at most CHUNK_DOCS texts): the
# chunk's intermediate arrays (~10 bytes per character) then stay in the core's cache, which is
# 2x faster than one pass over a 1000-prompt batch (measured: bench/bench_dedupe.py).
CHUNK_CHARS = 64_000
CHUNK_DOCS = 1024


class MinHasher:
    """Texts in, signatures out: ``signatures(texts) -> (len(texts), num_perm) uint8``."""

    def __init__(self, num_perm: int = 128, shingle_size: int = 3):
        if num_perm < 2:
            raise ValueError("num_perm must be at least 2")
        self.num_perm = num_perm
        self.shingle_size = shingle_size

    def signatures(self, texts: list[str]) -> np.ndarray:
        n, k = len(texts), self.num_perm
        out = np.empty((n, k), dtype=SIGNATURE_DTYPE)
        # Consecutive chunks make a block of at least one densify group of texts: only the
        # block's 32-bit bin minima exist at a time.
        for block in _blocks(_chunks(texts), min_docs=densify_group_rows(k)):
            first, last = block[0][0], block[-1][1]
            m = last - first
            # The extra last row takes the shingles that cross a document boundary (cheaper
            # than filtering them out).
            mins = np.full((m + 1, k), _EMPTY, dtype=np.uint32)
            for a, b in block:
                token_hash, offsets = tokenise_offsets(encode_batch(texts[a:b]))
                sh, sh_doc = batch_shingles(token_hash, offsets, self.shingle_size, trash=m, first_doc=a - first)
                self._bin_minima(mins, sh, sh_doc)
            densify(mins[:m])
            out[first:last] = mins[:m]                # the low 8 bits
        return out

    def from_shingle_hashes(self, sh: np.ndarray, sh_doc: np.ndarray, n: int) -> np.ndarray:
        """Signatures of n documents from their shingle hashes (``sh_doc``: each one's document)."""
        mins = np.full((n, self.num_perm), _EMPTY, dtype=np.uint32)
        self._bin_minima(mins, sh, sh_doc)
        densify(mins)
        return mins.astype(SIGNATURE_DTYPE)          # the low 8 bits

    def _bin_minima(self, mins: np.ndarray, sh: np.ndarray, sh_doc: np.ndarray) -> None:
        """Each shingle hash picks a bin with its high 32 bits and competes for the bin's
        minimum with its low 31 bits."""
        k = self.num_perm
        if k & (k - 1) == 0:                # ((h >> 32) * k) >> 32, in one shift
            bins = sh >> np.uint64(64 - k.bit_length() + 1)
        else:
            bins = ((sh >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)
        flat = sh_doc * k
        flat += bins.view(np.int64)             # < 2**32: the same value as a signed integer
        values = sh.astype(np.uint32)           # the low 32 bits
        values &= np.uint32(0x7FFFFFFF)
        np.minimum.at(mins.reshape(-1), flat, values)


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
        if size >= CHUNK_CHARS or i + 1 - start >= CHUNK_DOCS:
            out.append((start, i + 1))
            start, size = i + 1, 0
    if start < len(texts):
        out.append((start, len(texts)))
    return out


def _blocks(chunks: list[tuple[int, int]], min_docs: int) -> list[list[tuple[int, int]]]:
    out: list[list[tuple[int, int]]] = []
    for a, b in chunks:
        if out and out[-1][-1][1] - out[-1][0][0] < min_docs:
            out[-1].append((a, b))
        else:
            out.append([(a, b)])
    return out
