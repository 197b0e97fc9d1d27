"""TaskClusterer: featurise -> micro-clusters -> task clusters with stable ids, labels,
lineage and checkpoints. Pure logic: no I/O, no clocks (timestamps come with the items).

Batch API for the cluster agent (CPU work is taken from the stream in batches):

    model = TaskClusterer()
    assignments = model.learn_batch(items)        # one Assignment per ClusterItem
    lineage = model.drain_lineage()               # dicts shaped like ClusterLineage v1
    state = model.to_bytes()                      # checkpoint; TaskClusterer.from_bytes(state)
    snap = model.snapshot_record(ts_ms)           # ClusterSnapshot v1 for serving

Serving loads ``TaskClusterer.from_bytes(snapshot["state"])`` and calls ``predict_one``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .features import Featurizer, FeaturizerConfig
from .items import Assignment, ClusterItem, Label
from .labels import ClusterTerms, label_text
from .micro import MicroClusters
from .serialize import pack, unpack
from .tasks import UNASSIGNED, LineageChange, TaskLayer

STATE_VERSION = 1


@dataclass(frozen=True)
class ClustererConfig:
    """Thresholds are cosine similarities of featurised events (docs/clustering.md says how
    they were chosen). ``task_threshold`` is the one knob of granularity: lower gives fewer,
    broader task clusters; k is never given."""

    micro_threshold: float = 0.7
    task_threshold: float = 0.0      # 0: the measured default for the featuriser (see below)
    merge_threshold: float = 0.85
    # How micro-clusters are regrouped into tasks: "ward", "dpmeans", or "auto" (Ward while
    # most items are free text, DP-means once most carry structure: tools, JSON, responses);
    # "": the measured default for the featuriser. ward_cost is Ward's granularity: the mean
    # squared distortion per item one merge may add (0: the default below; lower gives more,
    # finer task clusters).
    method: str = ""
    ward_cost: float = 0.0
    min_size: int = 5
    assign_all: bool = True          # outliers join the nearest task instead of staying unassigned
    # A request has no response yet, so serving compares its prompt with the prompt part of
    # the centroids; a centroid averages many prompts, so similarities run lower there.
    serve_threshold: float = 0.1
    reorganise_every: int = 1000
    max_micro: int = 4000
    example_chars: int = 240
    top_terms: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ClustererConfig":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# Measured defaults (docs/clustering.md): similarities run differently in the two feature
# spaces. With MiniLM 0.65 suits both free text and agent traffic; hashed-only features need
# 0.6 or one family of agent traffic splits in two.
DEFAULT_TASK_THRESHOLD = {"minilm": 0.65, "none": 0.6}
# Measured (docs/clustering.md): on free text (BANKING77, MiniLM) Ward beats DP-means; on tool/JSON
# agent traffic Ward splits task families into their sub-templates (NMI 0.71) where DP-means
# keeps them (0.95). MiniLM serves both kinds of traffic, so it picks by the traffic it sees.
DEFAULT_METHOD = {"minilm": "auto", "none": "dpmeans"}
DEFAULT_WARD_COST = 0.001


def _pending_key(slot: int) -> int:
    """Term counters of a not-yet-assigned micro-cluster live under a negative key."""
    return -(int(slot) + 1)


class TaskClusterer:
    def __init__(self, config: ClustererConfig | None = None,
                 featurizer_config: FeaturizerConfig | None = None,
                 featurizer: Featurizer | None = None, task_threshold: float | None = None):
        cfg = config or ClustererConfig()
        self.featurizer = featurizer or Featurizer(featurizer_config)
        if task_threshold:   # DISTILLERY_CLUSTER_THRESHOLD (0 = model default)
            cfg = ClustererConfig.from_dict({**cfg.to_dict(), "task_threshold": task_threshold})
        if not cfg.task_threshold:
            cfg = ClustererConfig.from_dict({**cfg.to_dict(),
                                             "task_threshold": DEFAULT_TASK_THRESHOLD[self.featurizer.config.text]})
        if not cfg.method or not cfg.ward_cost:
            cfg = ClustererConfig.from_dict({**cfg.to_dict(),
                                             "method": cfg.method or DEFAULT_METHOD[self.featurizer.config.text],
                                             "ward_cost": cfg.ward_cost or DEFAULT_WARD_COST})
        self.config = cfg
        dim = self.featurizer.config.dim
        self.micro = MicroClusters(dim, cfg.micro_threshold, cfg.max_micro)
        self.tasks = TaskLayer(**self._task_params(cfg))
        self.terms = ClusterTerms()
        self.examples: list[str] = []          # first prompt of each micro slot
        self.model_version = 0
        self.items_seen = 0
        self.items_structured = 0      # items with tools / a response: "auto" picks the method by it
        self.last_ts = 0
        self._lineage_seq = 0
        self._pending: list[tuple[LineageChange, int, int]] = []   # change, ts, version
        self._published_labels: dict[int, str] = {}
        self.read_only = False
        self._last_reorganised = 0
        # Per task, the sum of its items' prompt-only vectors: serving sees no response, so it
        # assigns requests by these prompt centroids (consistent with what it can featurise).
        self.prompt_sums: dict[int, np.ndarray] = {}
        self._prompt_cache: np.ndarray | None = None      # set on serving snapshots only

    @staticmethod
    def _task_params(cfg: ClustererConfig) -> dict:
        # "auto" starts as Ward (a cold model has seen no traffic) and is re-resolved per regrouping.
        return dict(threshold=cfg.task_threshold, merge_threshold=cfg.merge_threshold, min_size=cfg.min_size,
                    assign_all=cfg.assign_all, method="ward" if cfg.method == "auto" else cfg.method,
                    max_cost=cfg.ward_cost)

    # -- learning ------------------------------------------------------------------------------
    @property
    def featurizer_name(self) -> str:
        return self.featurizer.config.name

    def learn_batch(self, items: Sequence[ClusterItem]) -> list[Assignment]:
        if not items:
            return []
        if self.read_only:
            raise RuntimeError("this model was loaded from a serving snapshot; learn on a checkpoint (to_bytes) instead")
        feats = self.featurizer.transform(items)
        sd = self.featurizer.config.struct_dim
        self.items_structured += int(np.count_nonzero(np.any(feats.vectors[:, :sd] != 0, axis=1)))
        feats.vectors = self._impute_structure(feats.vectors)
        self.tasks.method = self._method_for(self.items_seen + len(items))
        slots = self.micro.learn_many(feats.vectors)
        for slot, count in self.micro.recycled:
            self.tasks.forget_micro(slot, count)
            self.terms.per_cluster.pop(_pending_key(slot), None)
            self.examples[slot] = ""
        self.micro.recycled.clear()
        out: list[Assignment] = []
        for r, item in enumerate(items):
            slot = int(slots[r])
            while len(self.examples) <= slot:
                self.examples.append("")
            if not self.examples[slot]:
                self.examples[slot] = item.prompt[: self.config.example_chars]
            before = int(self.tasks.micro_task[slot]) if slot < len(self.tasks.micro_task) else 0
            task, change = self.tasks.observe(slot, self.micro)
            if task and not before:
                self.terms.merge(task, [_pending_key(slot)])
            if change is not None:
                self.model_version += 1
                self._pending.append((change, item.ts_ms, self.model_version))
            self.terms.learn_one(task if task else _pending_key(slot), feats.terms[r])
            out.append(Assignment(task or None, self.model_version, change is not None, frozenset(feats.terms[r])))
            self.last_ts = max(self.last_ts, int(item.ts_ms))
        prompt_vecs = self._prompt_view(feats.vectors)
        for r, a in enumerate(out):
            if a.cluster_id is not None:
                acc = self.prompt_sums.get(a.cluster_id)
                self.prompt_sums[a.cluster_id] = prompt_vecs[r].copy() if acc is None else acc + prompt_vecs[r]
        self.items_seen += len(items)
        self.tasks.refresh(self.micro)
        # Reorganise often while the model is young (every 20% of what it has seen, at least
        # 100 items apart), then every `reorganise_every` items.
        every = self.config.reorganise_every
        due = min(every, max(100, self.items_seen // 5)) if every else 0
        if due and self.items_seen - self._last_reorganised >= due:
            self.reorganise()
        return out

    @property
    def method(self) -> str:
        """The regrouping method in force ("auto" resolved by the traffic seen so far)."""
        return self._method_for(self.items_seen)

    def _method_for(self, seen: int) -> str:
        if self.config.method != "auto":
            return self.config.method
        return "dpmeans" if 2 * self.items_structured > seen else "ward"

    def reorganise(self) -> None:
        """Refine the grouping of micro-clusters into task clusters (also run periodically)."""
        self._last_reorganised = self.items_seen
        self.tasks.method = self.method
        before = self.tasks.micro_task[: self.micro.size].copy()
        changes = self.tasks.reorganise(self.micro)
        after = self.tasks.micro_task[: self.micro.size]
        for slot in np.nonzero((before == UNASSIGNED) & (after != UNASSIGNED))[0]:
            self.terms.merge(int(after[slot]), [_pending_key(slot)])
        for ch in changes:
            if ch.change == "merged":
                self.terms.merge(ch.cluster_id, ch.related)
                for t in ch.related:
                    gone = self.prompt_sums.pop(t, None)
                    if gone is not None:
                        self.prompt_sums[ch.cluster_id] = self.prompt_sums.get(ch.cluster_id, 0) + gone
                for t in ch.related:
                    self._published_labels.pop(t, None)
        live = set(self.tasks.ids)
        for t in [t for t in self.prompt_sums if t not in live]:
            del self.prompt_sums[t]
        if changes:
            self.model_version += 1
            for ch in changes:
                self._pending.append((ch, self.last_ts, self.model_version))
        # A label whose words changed is lineage too, so dashboards follow the new name.
        queued = {c.cluster_id for c, _, _ in self._pending}
        for task in self.tasks.ids:
            old = self._published_labels.get(task)
            text = label_text(self.terms.top_terms(task, self.config.top_terms))
            if old is not None and task not in queued and set(old.split(" / ")) != set(text.split(" / ")):
                self._pending.append((LineageChange(task, "label"), self.last_ts, self.model_version))

    # -- prediction ------------------------------------------------------------------------
    def _impute_structure(self, rows: np.ndarray) -> np.ndarray:
        """Rows without a structure block (a request not answered yet, an error or escalation
        reply, prose) take the structure of the task their prompt is nearest to: a missing
        block is unknown, not different, so the same ask lands in the same task whether or
        not (and however) it was answered. Featurisers before v3 mixed outcome into the block
        and are left as they were."""
        cfg = self.featurizer.config
        sd = cfg.struct_dim
        if cfg.version < 3 or not sd or not self.tasks.ids:
            return rows
        missing = np.flatnonzero(~np.any(rows[:, :sd] != 0, axis=1))
        if not len(missing):
            return rows
        sims = rows[missing] @ self.prompt_centroids().T
        best = sims.argmax(axis=1)
        struct = self.tasks.centroids()[:, :sd]
        norms = np.linalg.norm(struct, axis=1)
        # The prompt part of a row has unit norm after the featuriser's normalisation; put the
        # imputed block back at the weight it has against the prompt blocks.
        prompt_weight = np.sqrt(cfg.w_terms ** 2 + (cfg.w_text ** 2 if cfg.text == "minilm" else 0.0))
        out = rows.copy()
        for k, r in enumerate(missing):
            j = int(best[k])
            if sims[k, j] < self.config.serve_threshold or norms[j] < 0.05:
                continue        # no task close enough, or the nearest has no structure either
            out[r, :sd] = struct[j] / norms[j] * (cfg.w_struct / prompt_weight)
            out[r] /= np.linalg.norm(out[r])
        return out

    def _prompt_view(self, rows: np.ndarray) -> np.ndarray:
        """Rows with the structure block zeroed and renormalised: at request time a prompt has
        no response yet, so it is compared with centroids on the prompt blocks only."""
        view = rows.copy()
        view[:, : self.featurizer.config.struct_dim] = 0.0
        return view / np.maximum(np.linalg.norm(view, axis=1, keepdims=True), 1e-12)

    def prompt_centroids(self) -> np.ndarray:
        """Rows aligned with task ids: the mean prompt-only vector of each task's items
        (a task without any yet falls back to the prompt part of its centroid)."""
        if self._prompt_cache is not None:
            return self._prompt_cache
        fallback = self._prompt_view(self.tasks.centroids()) if self.tasks.ids else None
        rows = [self.prompt_sums[t] if t in self.prompt_sums else fallback[k] for k, t in enumerate(self.tasks.ids)]
        dim = self.featurizer.config.dim
        mat = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
        return mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)

    def predict_batch(self, items: Sequence[ClusterItem]) -> list[int | None]:
        """Task cluster per item. Items with a response/tools are placed like the learner
        does (nearest micro-cluster, else nearest task within task_threshold); prompt-only
        items (requests at serving time) by the nearest prompt centroid within serve_threshold."""
        if not items or not self.tasks.ids:
            return [None] * len(items)
        vecs = self._impute_structure(self.featurizer.transform(items).vectors)
        sd = self.featurizer.config.struct_dim
        no_struct = ~np.any(vecs[:, :sd] != 0, axis=1)
        n = self.micro.size
        mapping = self.tasks.micro_task[:n]
        ids = np.asarray(self.tasks.ids, dtype=np.int64)
        out: list[int | None] = [None] * len(items)
        rows = np.nonzero(~no_struct)[0]
        if len(rows):
            ms = vecs[rows] @ self.micro.centroids[:n].T
            ts = vecs[rows] @ self.tasks.centroids().T
            for k, r in enumerate(rows):
                j = int(ms[k].argmax()) if n else -1
                if j >= 0 and ms[k, j] >= self.config.micro_threshold and mapping[j]:
                    out[r] = int(mapping[j])
                    continue
                t = int(ts[k].argmax())
                out[r] = int(ids[t]) if ts[k, t] >= self.config.task_threshold else None
        rows = np.nonzero(no_struct)[0]
        if len(rows):
            # Free-text traffic was learnt without structure too: its micro-clusters match a
            # bare prompt directly. Otherwise fall back to the prompt centroids.
            ms = vecs[rows] @ self.micro.centroids[:n].T
            ps = vecs[rows] @ self.prompt_centroids().T
            best = ps.argmax(axis=1)
            for k, r in enumerate(rows):
                j = int(ms[k].argmax()) if n else -1
                if j >= 0 and ms[k, j] >= self.config.micro_threshold and mapping[j]:
                    out[r] = int(mapping[j])
                else:
                    out[r] = int(ids[best[k]]) if ps[k, best[k]] >= self.config.serve_threshold else None
        return out

    def predict_one(self, prompt: str, tool_calls: str | None = None, response: str = "") -> int | None:
        """The task cluster of a request (None: no task cluster is close enough)."""
        return self.predict_batch([ClusterItem("", prompt, response, tool_calls)])[0]

    # -- labels and lineage ----------------------------------------------------------------
    def _example(self, task: int) -> str:
        n = self.micro.size
        members = np.nonzero(self.tasks.micro_task[:n] == task)[0]
        if len(members) == 0 or not self.examples:
            return ""
        best = members[int(self.micro.counts[members].argmax())]
        return self.examples[best] if best < len(self.examples) else ""

    def labels(self) -> dict[int, Label]:
        out = {}
        for task in self.tasks.ids:
            top = self.terms.top_terms(task, self.config.top_terms)
            out[task] = Label(task, label_text(top), tuple(top), self._example(task), self.tasks.sizes.get(task, 0))
        return out

    def drain_lineage(self) -> list[dict]:
        """Lineage records since the last call, shaped like schemas/cluster_lineage.v1.avsc."""
        records = []
        for ch, ts, version in self._pending:
            self._lineage_seq += 1
            top = self.terms.top_terms(ch.cluster_id, self.config.top_terms)
            text = label_text(top)
            self._published_labels[ch.cluster_id] = text
            records.append({
                "lineage_id": f"v{version}-{self._lineage_seq}-{ch.change}-{ch.cluster_id}",
                "ts": int(ts),
                "cluster_id": int(ch.cluster_id),
                "change": ch.change,
                "related_cluster_ids": [int(i) for i in ch.related],
                "label": text,
                "top_terms": top,
                "example": self._example(ch.cluster_id),
                "size": int(self.tasks.sizes.get(ch.cluster_id, 0)),
                "model_version": int(version),
            })
        self._pending.clear()
        return records

    @property
    def cluster_ids(self) -> list[int]:
        return list(self.tasks.ids)

    # -- checkpoints -----------------------------------------------------------------------
    def _meta(self, compact: bool) -> dict:
        return {
            "state_version": STATE_VERSION,
            "compact": compact,
            "config": self.config.to_dict(),
            "featurizer": self.featurizer.config.to_dict(),
            "model_version": self.model_version,
            "items_seen": self.items_seen,
            "items_structured": self.items_structured,
            "last_reorganised": self._last_reorganised,
            "last_ts": self.last_ts,
            "next_id": self.tasks.next_id,
            "lineage_seq": self._lineage_seq,
            "micro_clock": self.micro.clock,
        }

    def to_bytes(self) -> bytes:
        """The whole model (resume after a restart: ids, counts, labels, pending lineage)."""
        meta = self._meta(compact=False)
        meta["terms"] = self.terms.state()
        meta["examples"] = self.examples[: self.micro.size]
        meta["published_labels"] = {str(k): v for k, v in self._published_labels.items()}
        meta["pending"] = [[c.cluster_id, c.change, list(c.related), ts, v] for c, ts, v in self._pending]
        arrays = {**self.micro.state(), **self.tasks.state(self.micro.size)}
        arrays["micro_sums"] = arrays["micro_sums"].astype(np.float32)
        keys = sorted(self.prompt_sums)
        arrays["prompt_ids"] = np.asarray(keys, dtype=np.int64)
        arrays["prompt_sums"] = (np.stack([self.prompt_sums[k] for k in keys]).astype(np.float32) if keys
                                 else np.zeros((0, self.featurizer.config.dim), dtype=np.float32))
        return pack(meta, arrays)

    def snapshot(self, max_bytes: int = 900_000) -> bytes:
        """What serving needs to assign requests: assigned micro-clusters (heaviest first,
        float16 directions) and task ids; no labels, examples or lineage. Fewer micro-clusters
        are kept until the packed size fits ``max_bytes``."""
        n = self.micro.size
        mapping = self.tasks.micro_task[:n]
        order = np.nonzero(mapping != UNASSIGNED)[0]
        order = order[np.argsort(-self.micro.counts[order], kind="stable")]
        keep = len(order)
        while True:
            sel = np.sort(order[:keep])
            arrays = {
                "micro_sums": self.micro.centroids[sel].astype(np.float16),
                "micro_counts": self.micro.counts[sel],
                "micro_last_seen": self.micro.last_seen[sel],
                "micro_task": mapping[sel],
                "task_ids": np.asarray(self.tasks.ids, dtype=np.int64),
                "task_extra": np.zeros(len(self.tasks.ids), dtype=np.int64),
                "task_centroids": self.tasks.centroids().astype(np.float16),
                "prompt_centroids": self.prompt_centroids().astype(np.float16),
            }
            data = pack(self._meta(compact=True), arrays)
            if len(data) <= max_bytes or keep <= 1:
                return data
            keep = int(keep * 0.8)

    def snapshot_record(self, ts_ms: int | None = None, max_bytes: int = 900_000) -> dict:
        """A ClusterSnapshot v1 record (schemas/cluster_snapshot.v1.avsc)."""
        return {"model_version": int(self.model_version), "ts": int(self.last_ts if ts_ms is None else ts_ms),
                "featurizer": self.featurizer_name, "state": self.snapshot(max_bytes)}

    @classmethod
    def from_bytes(cls, data: bytes, featurizer: Featurizer | None = None) -> "TaskClusterer":
        """Restore a checkpoint or a snapshot. Pass ``featurizer`` to share a loaded MiniLM;
        its config must match the one the state was built with."""
        meta, arrays = unpack(data)
        if meta.get("state_version") != STATE_VERSION:
            raise ValueError(f"clustering state version {meta.get('state_version')} is not {STATE_VERSION}")
        fcfg = FeaturizerConfig.from_dict(meta["featurizer"])
        if featurizer is not None and featurizer.config != fcfg:
            raise ValueError(f"featurizer {featurizer.config.name} does not match the state's {fcfg.name}")
        stored = dict(meta["config"])
        # States from before `method` existed were grouped by DP-means: they keep it.
        stored.setdefault("method", "dpmeans")
        model = cls(ClustererConfig.from_dict(stored), fcfg, featurizer)
        cfg = model.config
        arrays["micro_sums"] = arrays["micro_sums"].astype(np.float32)
        model.micro = MicroClusters.from_state(fcfg.dim, cfg.micro_threshold, cfg.max_micro,
                                               int(meta["micro_clock"]), arrays)
        model.tasks = TaskLayer.from_state(model._task_params(cfg), int(meta["next_id"]), arrays, model.micro)
        if meta.get("compact"):
            # Serving keeps the learner's task centroids (its micro-clusters are a subset).
            model.tasks._centroids = arrays["task_centroids"].astype(np.float32)
            model._prompt_cache = arrays["prompt_centroids"].astype(np.float32)
            model.read_only = True
        else:
            model.prompt_sums = {int(k): arrays["prompt_sums"][i].astype(np.float32)
                                 for i, k in enumerate(arrays["prompt_ids"])}
        model.model_version = int(meta["model_version"])
        model.items_seen = int(meta["items_seen"])
        model.items_structured = int(meta.get("items_structured", 0))
        model.tasks.method = model.method
        model._last_reorganised = int(meta.get("last_reorganised", model.items_seen))
        model.last_ts = int(meta["last_ts"])
        model._lineage_seq = int(meta["lineage_seq"])
        if "terms" in meta:
            model.terms = ClusterTerms.from_state(meta["terms"])
        model.examples = list(meta.get("examples", []))
        model._published_labels = {int(k): v for k, v in meta.get("published_labels", {}).items()}
        model._pending = [(LineageChange(int(c), ch, tuple(rel)), int(ts), int(v))
                          for c, ch, rel, ts, v in meta.get("pending", [])]
        return model
