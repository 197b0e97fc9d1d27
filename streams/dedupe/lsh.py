"""Banding: which stored signatures are worth comparing with a new one.

A signature of ``num_perm`` values is cut into ``bands`` bands of ``rows`` values; two texts
become candidates when any band agrees exactly, which for Jaccard similarity s happens with
probability 1 - (1 - s^rows)^bands. Every candidate is then verified on the whole signature, so
a false candidate costs only a comparison while a missed one is a missed duplicate: the bands
are chosen to keep the miss rate at the threshold small, then to keep candidates few.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .hashing import mix64, mix64_int

# Probability that a pair exactly at the threshold becomes a candidate, at least.
MIN_CANDIDATE_RATE_AT_THRESHOLD = 0.98
_BAND_SEED = 0x3C6EF372FE94F82B


def candidate_probability(s: np.ndarray | float, bands: int, rows: int) -> np.ndarray | float:
    return 1.0 - (1.0 - np.power(s, rows)) ** bands


@lru_cache(maxsize=64)
def choose_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm: among those that make a pair at the
    threshold a candidate with probability >= MIN_CANDIDATE_RATE_AT_THRESHOLD, the one with
    the fewest expected candidates below the threshold (the integral of the candidate
    probability over [0, threshold]); if none reaches the rate, the one closest to it."""
    s = np.linspace(0.0, threshold, 201)
    best, best_key = None, None
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        at_threshold = float(candidate_probability(threshold, bands, rows))
        below = float(np.trapezoid(candidate_probability(s, bands, rows), s))
        ok = at_threshold >= MIN_CANDIDATE_RATE_AT_THRESHOLD
        key = (0, below) if ok else (1, -at_threshold)
        if best_key is None or key < best_key:
            best, best_key = (bands, rows), key
    assert best is not None
    return best


@lru_cache(maxsize=64)
def _band_seeds(bands: int) -> np.ndarray:
    return np.array([mix64_int(_BAND_SEED + b) for b in range(bands)], dtype=np.uint64)


def band_keys(signatures: np.ndarray, scope_hashes: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint32 bucket keys. A band's bytes are packed into 64-bit words (8 rows of
    one-byte values per word) and mixed with the band number and the scope, so one table holds
    every scope's buckets and a key never matches across scopes or bands (up to 32-bit
    collisions, which verification rejects)."""
    n = len(signatures)
    words = -(-rows // 8)
    packed = np.zeros((n, bands, words * 8), dtype=np.uint8)
    packed[:, :, :rows] = signatures[:, :bands * rows].reshape(n, bands, rows)
    packed = packed.view("<u8")                            # (n, bands, words)
    acc = packed[:, :, 0] ^ _band_seeds(bands)
    acc ^= scope_hashes.astype(np.uint64)[:, None]
    mix64(acc)
    for w in range(1, words):
        acc ^= packed[:, :, w]
        mix64(acc)
    return (acc >> np.uint64(32)).astype(np.uint32)
