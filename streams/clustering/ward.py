"""Weighted Ward agglomeration of micro-clusters (the offline "macro" step of a two-level
stream clusterer, as in CluStream/DenStream), with a stopping rule instead of a given k.

Each micro-cluster enters as ``count`` points at its mean vector. Ward merges, at every step,
the pair whose merge increases the total within-cluster sum of squares (SSE) the least:

    cost(a, b) = n_a * n_b / (n_a + n_b) * ||mean_a - mean_b||^2

and the Lance-Williams update keeps those costs exact as clusters grow. The nearest-neighbour
chain algorithm finds the same merges as the naive O(m^3) loop in O(m^2).

Stopping rule (no k): stop before the first merge whose cost exceeds ``max_cost * N`` (N = all
items). Merging while cost < lambda is the DP-means trade-off (SSE + lambda per cluster);
scaling lambda with N keeps the granularity of the result stable as the stream grows (the
cost of joining two real tasks grows with their sizes, i.e. with N), so ``max_cost`` reads as
"the mean squared distortion per item one merge may add".
"""
from __future__ import annotations

import numpy as np


def ward_groups(means: np.ndarray, counts: np.ndarray, max_cost: float, total: float | None = None) -> np.ndarray:
    """Group label (0..g-1, numbered by first member) per row of ``means``. ``total`` is the N
    of the budget (default: the sum of ``counts``; larger when some items were left out)."""
    m = len(means)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    n = counts.astype(np.float64).copy()
    x = means.astype(np.float64)
    sq = (x * x).sum(1)
    # Ward costs between all pairs (float64 where Lance-Williams accumulates; the Gram matrix in float32 is precise enough).
    gram = (means.astype(np.float32) @ means.astype(np.float32).T).astype(np.float64)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    dist = d2 * (n[:, None] * n[None, :]) / (n[:, None] + n[None, :])
    np.fill_diagonal(dist, np.inf)
    limit = max_cost * float(n.sum() if total is None else total)
    active = np.ones(m, dtype=bool)
    parent = np.arange(m)
    chain: list[int] = []
    remaining = m
    while remaining > 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        row = dist[a]
        b = int(row.argmin())
        # Prefer the previous chain element on ties, so the chain cannot cycle.
        if len(chain) > 1 and row[chain[-2]] <= row[b]:
            b = chain[-2]
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            cost = row[b]
            if cost > limit:
                # Reciprocal nearest neighbours too far apart: neither takes part in any
                # later merge under the limit (Ward costs only grow), so retire both.
                active[a] = active[b] = False
                dist[[a, b], :] = np.inf
                dist[:, [a, b]] = np.inf
                remaining -= 2
                continue
            # Merge b into a (Lance-Williams for Ward).
            na, nb = n[a], n[b]
            nk = n
            new = ((na + nk) * dist[a] + (nb + nk) * dist[b] - nk * cost) / (na + nb + nk)
            new[a] = np.inf
            new[~active] = np.inf
            new[b] = np.inf
            dist[a] = new
            dist[:, a] = new
            dist[b, :] = np.inf
            dist[:, b] = np.inf
            active[b] = False
            n[a] = na + nb
            parent[b] = a
            remaining -= 1
        else:
            if not np.isfinite(row[b]):
                # Nothing left to merge with (all others retired).
                active[a] = False
                dist[a, :] = np.inf
                dist[:, a] = np.inf
                chain.pop()
                remaining -= 1
                continue
            chain.append(b)
    # Follow parents to each row's root, then number groups by first appearance.
    root = parent.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    _, labels = np.unique(root, return_inverse=True)
    order = {}
    out = np.empty(m, dtype=np.int64)
    for i, r in enumerate(labels):
        out[i] = order.setdefault(int(r), len(order))
    return out
