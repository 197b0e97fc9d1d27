"""Optimal densification of one-permutation MinHash bins (Shrivastava 2017).

A bin that no shingle of a document fell into takes the value of the first bin along its own
fixed probe order that one did. ``probe_order`` fixes that order (it is part of the signature
format); ``densify`` fills the empty bins of a batch in place, with two exact methods chosen
per document by how many of its bins are filled (both give the first filled bin in the order,
so the choice never changes a value):

- most documents (more than ``num_perm / 8`` filled bins) probe, all their empty bins at once:
  while more than 30% of a group's bins are empty, every bin takes its next probe's value
  with whole-array operations (no index arrays); then only the empty bins, one order position
  at a time, while more than 64 are left; then the next 16 positions at once;
- documents with few filled bins (short texts: a bin then needs ~num_perm/filled probes)
  take, for every bin, the filled bin of lowest rank in that bin's order at once: a precomputed
  ``(bin i, bin j) -> rank of i in j's order`` table, gathered for the filled bins and reduced
  with ``min``.

Documents are densified in groups of ~128 (at num_perm=256) whose arrays stay in the core's
cache.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .hashing import mix64

EMPTY = np.uint32(0xFFFFFFFF)       # bin values are 31-bit, so this never is one
_PROBE_SEED = 0x632BE59BD9B4E019
# Bins densified together: the group and its index arrays stay in the core's cache (about
# 128 documents at num_perm=256; measured fastest between 64 and 256 in bench/bench_dedupe.py).
_GROUP_BINS = 1 << 15
_FULL_ROUNDS_ABOVE = 0.3   # probe every bin of the group at once while more than this fraction is empty
_ROUNDS_UNTIL = 64       # probe one order position at a time while more empty bins than this are left
_BLOCK = 16              # then this many positions at once
_RANK_ELEMENTS = 1 << 18   # rank-table gathers done at once (documents with few filled bins)


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


@lru_cache(maxsize=8)
def _probe_steps(num_perm: int) -> np.ndarray:
    """Row r, column j: the r-th bin of j's order minus j, so that for a flat index e of bin j
    of some document, ``e + steps[r, j]`` is the flat index of the bin it probes in round r."""
    order = probe_order(num_perm)
    return np.ascontiguousarray((order - np.arange(num_perm)[:, None]).T)


@lru_cache(maxsize=8)
def _probe_columns(num_perm: int) -> np.ndarray:
    """Row r: the r-th bin of every bin's order."""
    return np.ascontiguousarray(probe_order(num_perm).T)


@lru_cache(maxsize=8)
def _rank_keys(num_perm: int) -> np.ndarray:
    """Row i, column j: ``rank of i in j's order * num_perm + i``, so the minimum over a
    document's filled bins i names the first of them in j's order (row num_perm: a pad that
    never wins). The rank of j in its own order is num_perm - 1: j is never filled when it is
    looked up."""
    k = num_perm
    order = probe_order(k)
    if (order == np.arange(k)[:, None]).any():       # a bin never copies itself (mix64 keys)
        raise AssertionError("probe order lists a bin in its own order")
    rank = np.full((k, k), k - 1, dtype=np.int64)     # rank[j, i]
    rank[np.arange(k)[:, None], order] = np.arange(k - 1)[None, :]
    dtype = np.uint16 if k * k <= 0xFFFF else np.uint32
    keys = np.full((k + 1, k), np.iinfo(dtype).max, dtype=dtype)
    keys[:k] = rank.T * k + np.arange(k)[:, None]
    return keys


def densify_group_rows(num_perm: int) -> int:
    """How many documents are densified together."""
    return max(1, _GROUP_BINS // num_perm)


def densify(mins: np.ndarray) -> None:
    """Fill the empty bins (``EMPTY``) of a C-contiguous ``(documents, num_perm)`` uint32
    array in place. Every document must have at least one filled bin."""
    if mins.dtype != np.uint32 or not mins.flags.c_contiguous:
        raise ValueError("densify works in place on a C-contiguous uint32 array")
    n, k = mins.shape
    groups = -(-n // densify_group_rows(k))
    step = -(-n // groups) if n else 1                 # equal groups: no small last one
    for a in range(0, n, step):
        _densify_group(mins[a:a + step])


def _densify_group(mins: np.ndarray) -> None:
    n, k = mins.shape
    is_empty = mins == EMPTY
    n_empty = _count_per_row(is_empty)
    total = int(n_empty.sum())
    if not total:
        return
    sparse = n_empty >= k - k // 8
    if sparse.any():
        rows = np.flatnonzero(sparse)
        _rank_fill(mins, is_empty, rows)
        total -= int(n_empty[rows].sum())
    if total:
        _probe_fill(mins, total)


def _count_per_row(is_empty: np.ndarray) -> np.ndarray:
    n, k = is_empty.shape
    if k % 8:
        return np.count_nonzero(is_empty, axis=1)
    # Eight booleans per 64-bit word: a popcount per word, summed per row (2x count_nonzero).
    return np.bitwise_count(is_empty.view(np.uint64)).sum(axis=1)


def _probe_fill(mins: np.ndarray, n_empty: int) -> None:
    """Bin by bin along the probe orders, for the ``n_empty`` empty bins of ``mins``."""
    n, k = mins.shape
    orig = mins.copy()                   # probes must see only the bins the shingles filled
    flat = mins.reshape(-1)
    steps = _probe_steps(k)
    r = 0
    columns = _probe_columns(k)
    while n_empty > _FULL_ROUNDS_ABOVE * n * k and r < k - 1:
        # Many empty bins (texts of fewer than ~num_perm/2 shingles): probe r of every bin at
        # once, with no index arrays. A branch-free select: a filled value has the top bit
        # clear, so ``keep`` is all ones where a bin is filled and 0 where it is EMPTY.
        probed = orig.take(columns[r], axis=1)
        keep = mins.view(np.int32) >> 31
        np.invert(keep, out=keep)
        probed |= keep.view(np.uint32)
        np.minimum(mins, probed, out=mins)
        r += 1
        n_empty = int(np.count_nonzero(mins == EMPTY))
    empty = np.flatnonzero(flat == EMPTY)
    orig = orig.reshape(-1)
    pow2 = k & (k - 1) == 0
    while len(empty) > _ROUNDS_UNTIL and r < k - 1:
        src = steps[r].take(empty & (k - 1) if pow2 else empty % k)
        src += empty
        values = orig.take(src)
        flat[empty] = values
        # take(flatnonzero) rather than a boolean index: 2x faster on a random mask.
        empty = empty.take(np.flatnonzero(values == EMPTY))
        r += 1
    while len(empty):
        stop = min(r + _BLOCK, k - 1)
        src = steps[r:stop][:, empty % k]                 # (positions, bins)
        src += empty
        hit = orig.take(src) != EMPTY
        first = hit.argmax(axis=0)
        column = np.arange(len(empty))
        found = hit[first, column]
        flat[empty[found]] = orig[src[first[found], column[found]]]
        empty = empty[~found]
        r = stop


def _rank_fill(mins: np.ndarray, is_empty: np.ndarray, rows: np.ndarray) -> None:
    """All empty bins of the given rows (documents with few filled bins) at once: each takes
    the filled bin with the lowest rank in its order."""
    k = mins.shape[1]
    keys = _rank_keys(k)
    filled = ~is_empty[rows]
    per_row = np.count_nonzero(filled, axis=1)
    # Rows by their filled count, so that a block pads its rows to a similar width.
    by_width = np.argsort(per_row, kind="stable")
    per_block = max(1, _RANK_ELEMENTS // (int(per_row.max()) * k))
    for start in range(0, len(rows), per_block):
        block = by_width[start:start + per_block]
        width = int(per_row[block[-1]])
        # (rows, width): the filled bins of each row, padded with the never-winning row k.
        r_idx, bins = np.nonzero(filled[block])
        slot = np.arange(len(r_idx)) - (np.cumsum(per_row[block]) - per_row[block])[r_idx]
        table = np.full((len(block), width), k, dtype=np.int64)
        table[r_idx, slot] = bins
        winner = (keys[table].min(axis=1) % k).astype(np.int64)     # (rows, k)
        doc_rows = rows[block]
        sub = mins[doc_rows]
        np.copyto(sub, np.take_along_axis(sub, winner, axis=1), where=is_empty[doc_rows])
        mins[doc_rows] = sub
