"""Cluster agent on `deduped` (one partition: one global task model). First occurrences teach
the incremental clusterer; duplicates take their original's cluster, and a replayed event (same
event_id) the cluster it got the first time, without being learnt again. Every event goes on to
`clustered` with its stable task-cluster id; births, merges and splits go to `clusters.lineage`;
the model is checkpointed (restarts resume) and published to the compacted
`clusters.snapshot` so serving assigns requests with the same code; drift goes to `drift`."""
from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import pickle
import re
import time

import faust
import numpy as np

from distillery.settings import Topics
from streams.agents._hold import CheckpointedHold
from streams.agents._send import send_all
from streams.clustering import ClusterItem, DriftMonitor, FeaturizerConfig, TaskClusterer
from streams.context import WorkerContext
from streams.held import held_batches
from streams.observation import now_ms

log = logging.getLogger(__name__)
CHECKPOINT = "cluster"
_WORD = re.compile(r"[a-z][a-z0-9_]+")


def vocabulary(prompt: str) -> set[str]:
    """Word signature of a prompt, compared between windows by the drift monitor."""
    return set(_WORD.findall(prompt.lower()))


def route_key(tenant: str, cluster_id: int | None) -> bytes:
    """`clustered` is keyed by tenant and cluster: every metric window of a key lives in one
    partition, so per-partition aggregators never write the same window twice."""
    return f"{tenant}\x1f{-1 if cluster_id is None else cluster_id}".encode()
SNAPSHOT_EVERY_S = 10.0


class _RecentClusters(collections.OrderedDict):
    """event_id -> (cluster_id, model_version) of recent first occurrences (bounded), so that a
    near-duplicate reuses its original's cluster and a replayed event (the same event_id again:
    a producer retry, a re-published batch) gets the answer it got the first time instead of
    being learnt twice and possibly moved to another cluster. Keys are 8-byte digests so the
    map is small enough to checkpoint with the model."""

    def __init__(self, cap: int = 200_000):
        super().__init__()
        self.cap = cap

    @staticmethod
    def key(event_id: str) -> bytes:
        return hashlib.blake2b(event_id.encode(), digest_size=8).digest()

    def remember(self, event_id: str, cluster_id: int | None, version: int) -> None:
        self[self.key(event_id)] = (-1 if cluster_id is None else cluster_id, version)
        if len(self) > self.cap:
            self.popitem(last=False)

    def lookup(self, event_id: str) -> tuple[int | None, int] | None:
        found = self.get(self.key(event_id))
        return None if found is None else (None if found[0] < 0 else found[0], found[1])

    def to_bytes(self) -> bytes:
        values = np.fromiter(itertools.chain.from_iterable(self.values()), dtype="<i8", count=2 * len(self))
        return len(self).to_bytes(8, "little") + b"".join(self.keys()) + values.tobytes()

    def restore(self, blob: bytes) -> "_RecentClusters":
        n = int.from_bytes(blob[:8], "little")
        keys = blob[8:8 + 8 * n]
        values = np.frombuffer(blob[8 + 8 * n:], dtype="<i8").reshape(-1, 2).tolist()
        self.update(zip((keys[i:i + 8] for i in range(0, 8 * n, 8)), map(tuple, values)))
        return self


def register(app: faust.App, ctx: WorkerContext) -> None:
    source = app.topic(Topics.DEDUPED, value_serializer="raw", key_serializer="raw")
    clustered = app.topic(Topics.CLUSTERED, value_serializer="raw", key_serializer="raw")
    lineage = app.topic(Topics.CLUSTER_LINEAGE, value_serializer="raw", key_serializer="raw")
    snapshot = app.topic(Topics.CLUSTER_SNAPSHOT, value_serializer="raw", key_serializer="raw")
    drift = app.topic(Topics.DRIFT, value_serializer="raw", key_serializer="raw")
    state: dict = {}
    recent = _RecentClusters()
    published = {"version": -1, "at": 0.0}

    def model() -> TaskClusterer:
        if "model" not in state:
            blob = ctx.checkpoints.load(CHECKPOINT, 0)
            drift_blob = ctx.checkpoints.load(CHECKPOINT + "-drift", 0)
            recent_blob = ctx.checkpoints.load(CHECKPOINT + "-recent", 0)
            if blob and recent_blob:
                recent.restore(recent_blob)
            if blob:
                state["model"] = TaskClusterer.from_bytes(blob)
                log.info("clustering resumed from checkpoint (model version %s)", state["model"].model_version)
            else:
                featurizer = FeaturizerConfig.hashed() if ctx.settings.cluster_featurizer == "hashed" else FeaturizerConfig()
                state["model"] = TaskClusterer(featurizer_config=featurizer, task_threshold=ctx.settings.cluster_threshold or None)
            # The drift detectors are river objects; they are checkpointed with pickle beside the
            # model (same code version reads them; a mismatch starts fresh detectors).
            try:
                state["drift"] = pickle.loads(drift_blob) if drift_blob else DriftMonitor()
            except Exception as exc:
                log.warning("drift checkpoint unreadable (%s): starting fresh detectors", exc)
                state["drift"] = DriftMonitor()
        return state["model"]

    def process(messages: list) -> tuple[list, list, list]:
        clusterer = model()
        monitor: DriftMonitor = state["drift"]
        records = [ctx.codec.decode(m.value, "observation-value")[0] for m in messages]
        # A first occurrence already learnt is a replay: it keeps its first answer and is not
        # learnt (nor counted as drift evidence) again.
        firsts, replays, in_batch = [], [], set()
        for r in records:
            if r.get("duplicate_of"):
                continue
            if recent.lookup(r["event_id"]) is not None or r["event_id"] in in_batch:
                replays.append(r)
            else:
                firsts.append(r)
                in_batch.add(r["event_id"])
        assignments = clusterer.learn_batch([
            ClusterItem(r["event_id"], r["prompt"], r["response"], r.get("tool_calls"), r["ts"]) for r in firsts])
        for r, a in zip(firsts, assignments):
            r["cluster_id"], r["cluster_model_version"] = a.cluster_id, a.model_version
            recent.remember(r["event_id"], a.cluster_id, a.model_version)
        for r in replays:
            r["cluster_id"], r["cluster_model_version"] = recent.lookup(r["event_id"])
        for r in records:
            if r.get("duplicate_of"):
                original = recent.lookup(r["duplicate_of"])
                cid = original[0] if original is not None else None
                if cid is None:
                    cid = clusterer.predict_one(r["prompt"], r.get("tool_calls"))
                r["cluster_id"], r["cluster_model_version"] = cid, clusterer.model_version
        lineage_records = clusterer.drain_lineage()
        monitor.observe_lineage(lineage_records)
        drift_records = []
        for r in firsts:   # a duplicate or a replay is the same task instance again: not new evidence
            drift_records.extend(monitor.update(r.get("cluster_id"), r["outcome"] == "success", r["cost_usd"],
                                                r["latency_ms"], vocabulary(r["prompt"]), r["ts"]))
        out = [(route_key(r["tenant"], r.get("cluster_id")), ctx.codec.encode("observation-value", r)) for r in records]
        lineage_out = [ctx.codec.encode("clusters.lineage-value", rec) for rec in lineage_records]
        drift_out = [ctx.codec.encode("drift-value", d.to_dict()) for d in drift_records]
        return out, lineage_out, drift_out

    def checkpoint() -> None:
        if "model" in state:
            ctx.checkpoints.save(CHECKPOINT, 0, state["model"].to_bytes())
            ctx.checkpoints.save(CHECKPOINT + "-drift", 0, pickle.dumps(state["drift"]))
            ctx.checkpoints.save(CHECKPOINT + "-recent", 0, recent.to_bytes())

    def snapshot_record() -> bytes | None:
        clusterer = model()
        if clusterer.model_version == published["version"]:
            return None
        published["version"] = clusterer.model_version
        return ctx.codec.encode("clusters.snapshot-value", clusterer.snapshot_record(now_ms()))

    hold = CheckpointedHold(lambda: ctx.cpu(checkpoint), ctx.checkpoint_every_s)

    @app.agent(source, name="distillery.cluster")
    async def cluster(stream):
        async for events in held_batches(stream, ctx.batch_size, ctx.batch_within):
            out, lineage_out, drift_out = await ctx.cpu(process, [e.message for e in events])
            sends = [(clustered, k, v) for k, v in out] + [(lineage, None, v) for v in lineage_out] + \
                    [(drift, None, v) for v in drift_out]
            if time.monotonic() - published["at"] >= SNAPSHOT_EVERY_S:
                snap = await ctx.cpu(snapshot_record)
                published["at"] = time.monotonic()
                if snap:
                    sends.append((snapshot, b"task-model", snap))
            await send_all(sends)
            ctx.count("clustered", len(out))
            ctx.count("drift_events", len(drift_out))
            await hold.add(events)

    @app.timer(ctx.checkpoint_every_s)
    async def cluster_checkpoint():
        if hold.held:
            await hold.flush()
        if "model" in state and state["model"].model_version != published["version"]:
            snap = await ctx.cpu(snapshot_record)
            if snap:
                await send_all([(snapshot, b"task-model", snap)])
                published["at"] = time.monotonic()
