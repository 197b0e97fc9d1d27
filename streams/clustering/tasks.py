"""Task clusters on top of micro-clusters, with stable ids and lineage.

A task cluster is a group of micro-clusters whose centroids lie within cosine similarity
``threshold`` of the group's (count-weighted) centroid: the DP-means rule, so the number of
task clusters follows from the data and the threshold, never from a given k.

Online, a new micro-cluster joins the nearest task cluster when it is close enough; otherwise
it waits, unassigned, until its micro-cluster (or, at the next reorganisation, a group of
nearby unassigned micro-clusters) holds ``min_size`` items, and then founds a task cluster.
Every ``reorganise_every`` items a few warm-started DP-means passes over the micro-clusters
refine the grouping, close task clusters merge, and an over-wide one can shed a part.

Two regrouping methods (``method``):
- "ward" (free text; TaskClusterer's "auto" picks it there): weighted Ward agglomeration of all micro-clusters
  (`ward.ward_groups`), stopped by a per-item distortion budget ``max_cost`` instead of a given
  k; between regroupings a new micro-cluster joins the nearest task (no online births once a
  task exists: Ward decides what is a task);
- "dpmeans": warm-started DP-means passes, births of far micro-clusters, merges of centroids
  within ``merge_threshold`` (tool/JSON agent traffic, where it is measured best).

Stable ids: task ids are ints >= 1 from a counter that only goes up, so an id is never
reused. The warm start carries each surviving cluster's id over; the lineage (born, merged,
split) is read off the weight that moved between the old and new grouping.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .micro import MicroClusters
from .ward import ward_groups

UNASSIGNED = 0


@dataclass
class LineageChange:
    """One structural change, before labels and timestamps are attached."""

    cluster_id: int
    change: str                     # born | merged | split
    related: tuple[int, ...] = ()


def group_sum(rows: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Sum of ``values`` per group id in [0, k) (rows < 0 are skipped): bincount for counts,
    a sparse one-hot product for vectors (np.add.at is ~50x slower on wide rows, a dense
    one-hot product wastes k times the work)."""
    from scipy.sparse import csr_matrix

    keep = np.flatnonzero(rows >= 0)
    if values.ndim == 1:
        return np.bincount(rows[keep], weights=values[keep], minlength=k)[:k].astype(values.dtype)
    onehot = csr_matrix((np.ones(len(keep), dtype=values.dtype), (rows[keep], keep)), shape=(k, len(rows)))
    return np.asarray(onehot @ values, dtype=values.dtype)


def _normalise(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


class TaskLayer:
    def __init__(self, threshold: float = 0.6, merge_threshold: float = 0.8, min_size: int = 5,
                 iterations: int = 3, max_candidates: int = 3000, assign_all: bool = True,
                 method: str = "dpmeans", max_cost: float = 0.001):
        if method not in ("dpmeans", "ward"):
            raise ValueError(f"unknown regrouping method {method!r} (dpmeans | ward)")
        self.method = method
        self.max_cost = max_cost
        self.assign_all = assign_all
        self.max_candidates = max_candidates
        self.threshold = threshold
        self.merge_threshold = merge_threshold
        self.min_size = min_size
        self.iterations = iterations
        self.micro_task = np.zeros(64, dtype=np.int64)     # micro slot -> task id (0: none)
        self.ids: list[int] = []                            # live task ids, in creation order
        self.sums: dict[int, np.ndarray] = {}               # task id -> sum of member vectors
        self.sizes: dict[int, int] = {}                     # task id -> items it holds
        self.extra: dict[int, int] = {}                     # items of recycled micro-clusters
        self.next_id = 1
        self._centroids: np.ndarray | None = None           # cache, rows aligned with ids

    # -- helpers ---------------------------------------------------------------------------
    def _fit(self, n_slots: int) -> None:
        if len(self.micro_task) < n_slots:
            grown = np.zeros(max(n_slots, 2 * len(self.micro_task)), dtype=np.int64)
            grown[: len(self.micro_task)] = self.micro_task
            self.micro_task = grown

    def centroids(self) -> np.ndarray:
        if self._centroids is None:
            dim = next(iter(self.sums.values())).shape[0] if self.sums else 0
            self._centroids = (_normalise(np.stack([self.sums[i] for i in self.ids]))
                               if self.ids else np.zeros((0, dim), dtype=np.float32))
        return self._centroids

    def nearest(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(task id, similarity) of the nearest task centroid per row; id 0 when none."""
        if not self.ids:
            return np.zeros(len(vectors), dtype=np.int64), np.full(len(vectors), -np.inf)
        sims = vectors @ self.centroids().T
        j = sims.argmax(axis=1)
        return np.asarray(self.ids, dtype=np.int64)[j], sims[np.arange(len(vectors)), j]

    def _new_id(self) -> int:
        task_id = self.next_id
        self.next_id += 1
        return task_id

    # -- online path -----------------------------------------------------------------------
    def forget_micro(self, slot: int, count: int) -> None:
        """A recycled micro slot starts over unassigned; its past items stay counted."""
        self._fit(slot + 1)
        task = int(self.micro_task[slot])
        if task:
            self.extra[task] = self.extra.get(task, 0) + int(count)
        self.micro_task[slot] = UNASSIGNED

    def observe(self, slot: int, micro: MicroClusters) -> tuple[int, LineageChange | None]:
        """Task id for an item that joined micro-cluster ``slot`` (0: not yet a task), and
        the birth it caused, if any. Centroids are refreshed per batch (`refresh`)."""
        self._fit(micro.size)
        task = int(self.micro_task[slot])
        if task:
            return task, None
        change = None
        near, sim = self.nearest(micro.centroids[slot][None, :])
        if near[0] and sim[0] >= self.threshold:
            task = int(near[0])
        elif self.method == "ward" and self.ids:
            # Ward decides what is a task at the next regrouping; meanwhile the nearest task.
            return (int(near[0]) if self.assign_all else UNASSIGNED), None
        elif micro.counts[slot] < self.min_size:
            # Too small to found a task: the item goes to the nearest task (assign_all), but the
            # micro-cluster stays free so it can still found its own task when it grows.
            return (int(near[0]) if self.assign_all else UNASSIGNED), None
        else:
            task = self._new_id()
            self.ids.append(task)
            self.sums[task] = micro.sums[slot].copy()
            self._centroids = None
            change = LineageChange(task, "born")
        if task:
            self.micro_task[slot] = task
        return task, change

    def refresh(self, micro: MicroClusters) -> None:
        """Recompute task centroids and sizes from their micro-clusters."""
        n = micro.size
        self._fit(n)
        mapping = self.micro_task[:n]
        index = {t: k for k, t in enumerate(self.ids)}
        rows = np.array([index.get(int(t), -1) for t in mapping], dtype=np.int64) if n else np.zeros(0, np.int64)
        sums = group_sum(rows, micro.sums[:n], len(self.ids))
        counts = group_sum(rows, micro.counts[:n], len(self.ids))
        self.sums = {t: sums[k] for k, t in enumerate(self.ids)}
        self.sizes = {t: int(counts[k]) + self.extra.get(t, 0) for k, t in enumerate(self.ids)}
        self._centroids = None

    # -- periodic reorganisation ------------------------------------------------------------
    def reorganise(self, micro: MicroClusters) -> list[LineageChange]:
        """Regroup micro-clusters into tasks (Ward or DP-means); returns the lineage."""
        if micro.size == 0:
            return []
        if self.method == "ward":
            return self._reorganise_ward(micro)
        return self._reorganise_dpmeans(micro)

    def _reorganise_ward(self, micro: MicroClusters) -> list[LineageChange]:
        """Ward over all micro-clusters, then carry ids over by the weight groups share with
        the old tasks (largest overlaps first, one id per group and one group per id)."""
        n = micro.size
        self._fit(n)
        weights = micro.counts[:n].astype(np.float64)
        means = micro.sums[:n] / np.maximum(weights, 1.0)[:, None]
        # Ward runs over micro-clusters a second item confirmed (DenStream's "potential" vs
        # "outlier" micro-clusters); singletons, often most of them on free text, then join the
        # nearest group mean. Same quality on BANKING77, ~5x less work (docs/clustering.md).
        heavy = weights >= 2
        if heavy.sum() < 2:
            heavy[:] = True
        groups = np.empty(n, dtype=np.int64)
        groups[heavy] = ward_groups(means[heavy], weights[heavy], self.max_cost, total=float(weights.sum()))
        n_groups = int(groups[heavy].max()) + 1
        # Singletons join the nearest group mean (of the confirmed micro-clusters); then one
        # k-means pass moves every micro-cluster to its nearest group mean (Ward's greedy merges
        # leave some on the wrong side: +0.003-0.005 NMI on BANKING77).
        light = ~heavy
        if light.any():
            groups[light] = self._group_distances(groups, heavy, means, micro, weights, n_groups, light).argmin(axis=1)
        everyone = np.ones(n, dtype=bool)
        groups = self._group_distances(groups, everyone, means, micro, weights, n_groups, everyone).argmin(axis=1)
        _, groups = np.unique(groups, return_inverse=True)     # a group may have emptied
        groups = groups.ravel()
        n_groups = int(groups.max()) + 1
        group_weight = np.bincount(groups, weights=weights, minlength=n_groups)
        # Ids carry over by shared weight: (group, old task) pairs, largest overlap first, one id
        # per group and one group per id.
        old = self.micro_task[:n].copy()
        had = old != UNASSIGNED
        pairs, inverse = np.unique(np.stack([groups[had], old[had]], axis=1), axis=0, return_inverse=True)
        shared = np.bincount(inverse.ravel(), weights=weights[had], minlength=len(pairs))
        id_of: dict[int, int] = {}
        taken: set[int] = set()
        for k in np.lexsort((pairs[:, 1], pairs[:, 0], -shared)):
            g, t = int(pairs[k, 0]), int(pairs[k, 1])
            if g not in id_of and t not in taken:
                id_of[g] = t
                taken.add(t)
        born: set[int] = set()
        for g in range(n_groups):
            # A new group lighter than min_size is not a task yet: its micro-clusters stay
            # unassigned (their items go to the nearest task) until it grows.
            if g not in id_of and group_weight[g] >= self.min_size:
                id_of[g] = self._new_id()
                born.add(id_of[g])
        lookup = np.full(n_groups, UNASSIGNED, dtype=np.int64)
        for g, task in id_of.items():
            lookup[g] = task
        assign = lookup[groups]
        ids = sorted(set(id_of.values()))
        return self._commit(assign, ids, old, weights, born, {}, micro)

    @staticmethod
    def _group_distances(groups, members, means, micro, weights, n_groups, rows) -> np.ndarray:
        """Squared Euclidean distance (up to a per-row constant: |x|^2) from the micro-clusters
        ``rows`` to the mean of each group's ``members`` (Ward's geometry)."""
        n = len(groups)
        g_sum = group_sum(np.where(members, groups, -1), micro.sums[:n], n_groups)
        g_mean = g_sum / np.maximum(group_sum(np.where(members, groups, -1), weights, n_groups), 1.0)[:, None]
        return (g_mean * g_mean).sum(1)[None, :] - 2.0 * (means[rows] @ g_mean.T)

    def _reorganise_dpmeans(self, micro: MicroClusters) -> list[LineageChange]:
        """Warm-started DP-means over micro-clusters, then merges; returns the lineage."""
        n = micro.size
        self._fit(n)
        cents = micro.centroids[:n]
        weights = micro.counts[:n].astype(np.float64)
        old = self.micro_task[:n].copy()
        ids = list(self.ids)
        centres = self.centroids().copy() if ids else np.zeros((0, cents.shape[1]), dtype=np.float32)
        born: set[int] = set()
        assign = old.copy()
        for _ in range(self.iterations):
            # Births: unassigned micro-clusters far from every centre, grouped greedily
            # (heaviest first) into candidates; a candidate of min_size items founds a task.
            sims = cents @ centres.T if len(ids) else np.full((n, 0), -np.inf)
            best = sims.max(axis=1) if len(ids) else np.full(n, -np.inf)
            far = np.nonzero(best < self.threshold)[0]
            far = far[np.argsort(-weights[far], kind="stable")][: self.max_candidates]
            cand_members = self._group(cents[far], far)
            new_rows = []
            for members in cand_members:
                if weights[members].sum() >= self.min_size:
                    task = self._new_id()
                    ids.append(task)
                    born.add(task)
                    new_rows.append(_normalise((cents[members] * weights[members, None]).sum(0)))
            if new_rows:
                centres = np.vstack([centres, np.stack(new_rows)]).astype(np.float32)
            if not ids:
                break
            # Assignment and update steps.
            sims = cents @ centres.T
            j = sims.argmax(axis=1)
            ok = sims[np.arange(n), j] >= self.threshold
            if self.assign_all:
                ok[:] = True
            id_arr = np.asarray(ids, dtype=np.int64)
            assign = np.where(ok, id_arr[j], UNASSIGNED)
            keep = []
            for k, task in enumerate(ids):
                members = assign == task
                if members.any():
                    keep.append(k)
                    centres[k] = _normalise((cents[members] * weights[members, None]).sum(0))
            ids = [ids[k] for k in keep]
            centres = centres[keep]
        # Merges: centres closer than merge_threshold fold into the heavier one.
        mass = {t: float(weights[assign == t].sum()) for t in ids}
        merged_into: dict[int, int] = {}
        while len(ids) > 1:
            s = centres @ centres.T
            np.fill_diagonal(s, -np.inf)
            a, b = np.unravel_index(int(s.argmax()), s.shape)
            if s[a, b] < self.merge_threshold:
                break
            keep_k, drop_k = (a, b) if (mass[ids[a]], -ids[a]) >= (mass[ids[b]], -ids[b]) else (b, a)
            keeper, dropped = ids[keep_k], ids[drop_k]
            assign[assign == dropped] = keeper
            merged_into[dropped] = keeper
            mass[keeper] += mass.pop(dropped)
            members = assign == keeper
            centres[keep_k] = _normalise((cents[members] * weights[members, None]).sum(0))
            centres = np.delete(centres, drop_k, axis=0)
            ids.pop(drop_k)
        return self._commit(assign, ids, old, weights, born, merged_into, micro)

    def _group(self, vecs: np.ndarray, slots: np.ndarray) -> list[list[int]]:
        """Greedy leader grouping (rows in the given order): each row joins the most similar
        earlier leader within the threshold, or leads a new group. One similarity matrix."""
        if len(vecs) == 0:
            return []
        sims = vecs @ vecs.T
        leaders: list[int] = []
        groups: list[list[int]] = []
        for i in range(len(vecs)):
            if leaders:
                row = sims[i, leaders]
                j = int(row.argmax())
                if row[j] >= self.threshold:
                    groups[j].append(int(slots[i]))
                    continue
            leaders.append(i)
            groups.append([int(slots[i])])
        return groups

    def _commit(self, assign, ids, old, weights, born, merged_into, micro) -> list[LineageChange]:
        n = len(assign)
        changes: list[LineageChange] = []
        old_ids = set(self.ids)
        live = set(ids)
        # Where did each old task's weight go?
        flows: dict[int, dict[int, float]] = {}
        for s in range(n):
            if old[s]:
                flows.setdefault(int(old[s]), {}).setdefault(int(assign[s]), 0.0)
                flows[int(old[s])][int(assign[s])] += weights[s]
        # New tasks: born from unassigned weight, or split off one old task.
        for task in ids:
            if task not in born:
                continue
            members = assign == task
            sources: dict[int, float] = {}
            for src, w in zip(old[members], weights[members]):
                sources[int(src)] = sources.get(int(src), 0.0) + float(w)
            total = sum(sources.values())
            parent, w_parent = max(((k, v) for k, v in sources.items() if k), key=lambda kv: kv[1], default=(0, 0.0))
            if parent and w_parent >= 0.5 * total and parent in live:
                changes.append(LineageChange(task, "split", (parent,)))
            else:
                changes.append(LineageChange(task, "born"))
        # Old tasks that disappeared: merged (explicitly, or their micro-clusters moved away).
        absorbed: dict[int, list[int]] = {}
        for task in sorted(old_ids - live):
            target = merged_into.get(task)
            while target in merged_into:
                target = merged_into[target]
            if target is None:
                dest = {k: v for k, v in flows.get(task, {}).items() if k in live}
                if dest:
                    target = max(dest, key=dest.get)
                elif task in self.sums and ids:
                    target, _ = self._nearest_in(self.sums[task], ids, assign, micro)
            if target:
                absorbed.setdefault(target, []).append(task)
        for target, tasks in sorted(absorbed.items()):
            changes.append(LineageChange(target, "merged", tuple(sorted(tasks))))
        # Install the new grouping; items of absorbed tasks' recycled micro-clusters follow.
        for target, tasks in absorbed.items():
            for t in tasks:
                self.extra[target] = self.extra.get(target, 0) + self.extra.pop(t, 0)
        for task in old_ids - live:
            self.extra.pop(task, None)
        self.micro_task[:n] = assign
        self.ids = list(ids)
        self.refresh(micro)
        return changes

    def _nearest_in(self, vec, ids, assign, micro) -> tuple[int, float]:
        if not ids:
            return 0, -np.inf
        sims = self.centroids_for(ids, assign, micro) @ _normalise(vec)
        k = int(sims.argmax())
        return ids[k], float(sims[k])

    @staticmethod
    def centroids_for(ids, assign, micro) -> np.ndarray:
        n = len(assign)
        return _normalise(np.stack([micro.sums[:n][assign == t].sum(axis=0) for t in ids]))

    # -- state -----------------------------------------------------------------------------
    def state(self, n_micro: int) -> dict[str, np.ndarray]:
        return {
            "task_ids": np.asarray(self.ids, dtype=np.int64),
            "task_extra": np.asarray([self.extra.get(i, 0) for i in self.ids], dtype=np.int64),
            "micro_task": self.micro_task[:n_micro].copy(),
        }

    @classmethod
    def from_state(cls, params: dict, next_id: int, arrays: dict[str, np.ndarray],
                   micro: MicroClusters) -> "TaskLayer":
        layer = cls(**params)
        layer.next_id = next_id
        layer.ids = [int(i) for i in arrays["task_ids"]]
        layer.extra = {i: int(arrays["task_extra"][k]) for k, i in enumerate(layer.ids) if arrays["task_extra"][k]}
        micro_task = arrays["micro_task"].astype(np.int64)
        layer.micro_task = np.zeros(max(64, len(micro_task)), dtype=np.int64)
        layer.micro_task[: len(micro_task)] = micro_task
        layer.refresh(micro)
        return layer
