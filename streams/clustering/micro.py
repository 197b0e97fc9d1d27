"""Micro-clusters: a fine-grained, single-pass summary of the stream (river-style estimator).

Each micro-cluster keeps the sum of its (unit) vectors and a count; its centroid direction is
the normalised sum. A vector joins the most similar micro-cluster when the cosine similarity
reaches ``threshold``, otherwise it opens a new one (leader clustering / online DP-means).
Micro-clusters never merge or move, so their ids are stable inside one model; the coarser,
relabelling-prone grouping into task clusters lives in `tasks.TaskLayer`.

When ``max_micro`` is reached the least recently used micro-cluster with the fewest members
is recycled, which bounds memory and snapshot size on endless streams.
"""
from __future__ import annotations

import numpy as np
from river import base


class MicroClusters(base.Clusterer):
    """learn_one/predict_one on feature dicts ({dimension index: value}), plus vectorised
    `learn_many`/`nearest` on unit-norm numpy rows used by the batch path."""

    def __init__(self, dim: int, threshold: float = 0.7, max_micro: int = 4000):
        self.dim = dim
        self.threshold = threshold
        self.max_micro = max_micro
        self._capacity = 64
        self.sums = np.zeros((self._capacity, dim), dtype=np.float32)
        self.centroids = np.zeros((self._capacity, dim), dtype=np.float32)
        self.counts = np.zeros(self._capacity, dtype=np.int64)
        self.last_seen = np.zeros(self._capacity, dtype=np.int64)
        self.size = 0            # slots in use
        self.clock = 0           # items learnt
        self.recycled: list[tuple[int, int]] = []   # (slot, items it held), since last drained

    # -- river interface -------------------------------------------------------------------
    def _vector(self, x: dict) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for k, val in x.items():
            v[int(k)] = val
        n = np.linalg.norm(v)
        return v / n if n > 0 else v

    def learn_one(self, x: dict) -> None:
        self.learn_many(self._vector(x)[None, :])

    def predict_one(self, x: dict) -> int:
        """Index of the nearest micro-cluster, or -1 when none is within the threshold."""
        idx, sim = self.nearest(self._vector(x)[None, :])
        return int(idx[0]) if sim[0] >= self.threshold else -1

    # -- vectorised core -------------------------------------------------------------------
    def nearest(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.size == 0:
            return np.full(len(vectors), -1), np.full(len(vectors), -np.inf, dtype=np.float32)
        sims = vectors @ self.centroids[: self.size].T
        idx = sims.argmax(axis=1)
        return idx, sims[np.arange(len(vectors)), idx]

    def _grow(self) -> None:
        cap = self._capacity * 2
        for name in ("sums", "centroids", "counts", "last_seen"):
            old = getattr(self, name)
            new = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
            new[: self._capacity] = old
            setattr(self, name, new)
        self._capacity = cap

    def _open(self, vector: np.ndarray) -> int:
        if self.size >= self.max_micro:
            # Recycle the stalest of the smallest: old singletons are noise, not tasks.
            live = self.counts[: self.size]
            small = live <= np.percentile(live, 25)
            candidates = np.nonzero(small)[0]
            slot = int(candidates[self.last_seen[candidates].argmin()])
            self.recycled.append((slot, int(self.counts[slot])))
        else:
            if self.size == self._capacity:
                self._grow()
            slot = self.size
            self.size += 1
        self.sums[slot] = 0.0            # learn_many adds the opening vector itself
        self.centroids[slot] = vector
        self.counts[slot] = 0
        return slot

    def learn_many(self, vectors: np.ndarray) -> np.ndarray:
        """Assign each row (in order) to a micro-cluster, opening new ones as needed.
        Returns the slot of each row. One matrix product for the rows that fit an existing
        micro-cluster; only the rest is handled one by one (against the few opened here)."""
        slots = np.empty(len(vectors), dtype=np.int64)
        idx, sim = self.nearest(vectors)
        opened: list[int] = []
        for r, v in enumerate(vectors):
            best, best_sim = int(idx[r]), float(sim[r])
            if opened:
                fresh = self.centroids[opened] @ v
                j = int(fresh.argmax())
                if fresh[j] > best_sim:
                    best, best_sim = opened[j], float(fresh[j])
            if best < 0 or best_sim < self.threshold:
                best = self._open(v)
                opened.append(best)
            self.clock += 1
            self.sums[best] += v
            self.counts[best] += 1
            self.last_seen[best] = self.clock
            norm = np.linalg.norm(self.sums[best])
            self.centroids[best] = self.sums[best] / max(norm, 1e-12)
            slots[r] = best
        return slots

    # -- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        n = self.size
        return {"micro_sums": self.sums[:n].copy(), "micro_counts": self.counts[:n].copy(),
                "micro_last_seen": self.last_seen[:n].copy()}

    @classmethod
    def from_state(cls, dim: int, threshold: float, max_micro: int, clock: int,
                   arrays: dict[str, np.ndarray]) -> "MicroClusters":
        m = cls(dim, threshold, max_micro)
        n = len(arrays["micro_counts"])
        while m._capacity < max(n, 1):
            m._grow()
        m.size = n
        m.sums[:n] = arrays["micro_sums"]
        m.counts[:n] = arrays["micro_counts"]
        m.last_seen[:n] = arrays["micro_last_seen"]
        norms = np.linalg.norm(m.sums[:n], axis=1, keepdims=True)
        m.centroids[:n] = m.sums[:n] / np.maximum(norms, 1e-12)
        m.clock = clock
        return m
