"""LSH buckets as a multimap from uint32 bucket key to uint32 slot, in sorted numpy runs.

A Python dict of lists costs ~100 bytes per (key, slot) entry and 16 entries per signature; a
sorted pair of arrays costs 8. New entries arrive as a small sorted run; runs of similar size
are merged (a log-structured merge: each entry is rewritten O(log n) times), so there are
O(log n) runs to search with ``np.searchsorted``, all vectorised over a batch of keys.
Removal marks an entry dead in place; merges drop dead entries.
"""
from __future__ import annotations

import numpy as np

DEAD = np.uint32(0xFFFFFFFF)


def expand_ranges(lo: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [lo[i], lo[i] + counts[i]): (range number, position) of every element."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(lo)), counts)
    first = np.cumsum(counts) - counts
    pos = np.arange(total) - first[owner] + lo[owner]
    return owner, pos


def sort_pairs(keys: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keys, slots) in ascending (key, slot) order, as uint32 arrays: one sort of 64-bit
    words (key in the high half) is faster than an argsort and two gathers."""
    pairs = keys.astype(np.uint64) << np.uint64(32)
    pairs |= slots.astype(np.uint32)
    pairs.sort()
    return (pairs >> np.uint64(32)).astype(np.uint32), pairs.astype(np.uint32)


class BucketRuns:
    def __init__(self) -> None:
        self._keys: list[np.ndarray] = []
        self._slots: list[np.ndarray] = []
        self._dead = 0

    def __len__(self) -> int:
        """Live entries."""
        return sum(len(k) for k in self._keys) - self._dead

    @property
    def runs(self) -> int:
        return len(self._keys)

    def nbytes(self) -> int:
        return sum(k.nbytes + s.nbytes for k, s in zip(self._keys, self._slots))

    def add(self, keys: np.ndarray, slots: np.ndarray, presorted: bool = False) -> None:
        """Add entries (keys[i], slots[i]); ``presorted``: keys are already in ascending order."""
        if not len(keys):
            return
        if presorted:
            keys = np.ascontiguousarray(keys, dtype=np.uint32)
            slots = np.ascontiguousarray(slots, dtype=np.uint32)
        else:
            keys, slots = sort_pairs(keys, slots)
        self._keys.append(keys)
        self._slots.append(slots)
        # Merge while the newest run is at least half the size of the one before it.
        while len(self._keys) >= 2 and 2 * len(self._keys[-1]) >= len(self._keys[-2]):
            self._merge_last_two()

    def _merge_last_two(self) -> None:
        keys = np.concatenate(self._keys[-2:])
        slots = np.concatenate(self._slots[-2:])
        live = slots != DEAD
        self._dead -= int((~live).sum())
        keys, slots = keys[live], slots[live]
        order = np.argsort(keys, kind="stable")     # timsort: a linear merge of two sorted runs
        del self._keys[-2:], self._slots[-2:]
        self._keys.append(keys[order])
        self._slots.append(slots[order])

    def compact(self) -> None:
        while len(self._keys) >= 2:
            self._merge_last_two()
        if self._keys and self._dead:
            live = self._slots[0] != DEAD
            self._keys[0], self._slots[0] = self._keys[0][live], self._slots[0][live]
            self._dead = 0

    def lookup(self, keys: np.ndarray, max_per_key: int) -> tuple[np.ndarray, np.ndarray]:
        """(query index, slot) for every live entry whose key equals a query key, at most
        ``max_per_key`` entries per query key per run. Sorted query keys are searched about
        3x faster (the binary searches then walk the run in order)."""
        owners, found = [], []
        for run_keys, run_slots in zip(self._keys, self._slots):
            if not len(run_keys):
                continue
            lo = np.searchsorted(run_keys, keys, side="left")
            # Most query keys are in no run: look for the end of a key's entries only where
            # the key is there at all.
            present = np.flatnonzero(run_keys[np.minimum(lo, len(run_keys) - 1)] == keys)
            if not len(present):
                continue
            lo = lo[present]
            hi = np.searchsorted(run_keys, keys[present], side="right")
            owner, pos = expand_ranges(lo, np.minimum(hi - lo, max_per_key))
            slots = run_slots[pos]
            live = slots != DEAD
            owners.append(present[owner[live]])
            found.append(slots[live])
        if not owners:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint32)
        return np.concatenate(owners), np.concatenate(found)

    def remove(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Mark the entries (keys[i], slots[i]) dead; compact when half the entries are dead."""
        if not len(keys):
            return
        slots = slots.astype(np.uint32)
        for run_keys, run_slots in zip(self._keys, self._slots):
            lo = np.searchsorted(run_keys, keys, side="left")
            hi = np.searchsorted(run_keys, keys, side="right")
            owner, pos = expand_ranges(lo, hi - lo)
            hit = np.unique(pos[run_slots[pos] == slots[owner]])
            run_slots[hit] = DEAD
            self._dead += len(hit)
        if self._dead * 2 > len(self) + self._dead:
            self.compact()
