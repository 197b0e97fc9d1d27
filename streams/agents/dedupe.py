"""Dedupe agent on `redacted` (keyed by tenant+task_hint scope): MinHash-LSH near-duplicate
search per scope. Every event goes on to `deduped`, duplicates marked with the event they
duplicate. The index of each partition is checkpointed to the artifact store before the
partition's offsets may be committed, so restarts and rebalances keep catching duplicates."""
from __future__ import annotations

import logging
import faust

from distillery.settings import Topics
from streams.agents._send import send_all
from streams.context import WorkerContext
from streams.dedupe import DedupeIndex, DedupeItem, scope_key
from streams.agents._hold import CheckpointedHold
from streams.held import held_batches

log = logging.getLogger(__name__)
CHECKPOINT = "dedupe"


def dedupe_text(obs: dict) -> str:
    """What makes two calls the same training example: the prompt and the tool calls."""
    return obs["prompt"] if not obs.get("tool_calls") else f"{obs['prompt']}\n{obs['tool_calls']}"


def register(app: faust.App, ctx: WorkerContext) -> None:
    source = app.topic(Topics.REDACTED, value_serializer="raw", key_serializer="raw")
    deduped = app.topic(Topics.DEDUPED, value_serializer="raw", key_serializer="raw")
    s = ctx.settings
    indexes: dict[int, DedupeIndex] = {}
    dirty: set[int] = set()

    def new_index() -> DedupeIndex:
        return DedupeIndex(threshold=s.dedupe_threshold, num_perm=s.dedupe_num_perm,
                           max_signatures=s.dedupe_max_signatures, max_age_s=s.dedupe_max_age_days * 86400 or None)

    def index_for(partition: int) -> DedupeIndex:
        if partition not in indexes:
            blob = ctx.checkpoints.load(CHECKPOINT, partition)
            index = None
            if blob:
                # Thresholds and bounds follow the current settings; signatures made with another
                # num_perm cannot be compared, so that change starts a new index.
                index = DedupeIndex.from_bytes(blob, threshold=s.dedupe_threshold, max_signatures=s.dedupe_max_signatures,
                                               max_age_s=s.dedupe_max_age_days * 86400 or None)
                if index.num_perm != s.dedupe_num_perm:
                    log.warning("dedupe partition %d: checkpoint has num_perm=%d, settings say %d: starting a new index",
                                partition, index.num_perm, s.dedupe_num_perm)
                    index = None
            indexes[partition] = index or new_index()
            log.info("dedupe partition %d: %s", partition, "resumed from checkpoint" if index else "new index")
        return indexes[partition]

    def process(messages: list) -> list[tuple[bytes, bytes]]:
        by_partition: dict[int, list] = {}
        for m in messages:
            by_partition.setdefault(m.partition, []).append(m)
        out = []
        for partition, msgs in by_partition.items():
            records = [ctx.codec.decode(m.value, "observation-value")[0] for m in msgs]
            verdicts = index_for(partition).check_batch(
                [DedupeItem(r["event_id"], scope_key(r["tenant"], r.get("task_hint")), dedupe_text(r), r["ts"]) for r in records])
            for m, r, v in zip(msgs, records, verdicts):
                r["duplicate_of"], r["dedupe_similarity"] = v.duplicate_of, v.similarity
                out.append((m.key, ctx.codec.encode("observation-value", r)))
                if v.duplicate_of:
                    ctx.count("duplicates")
            dirty.add(partition)
        return out

    def checkpoint() -> None:
        for partition in sorted(dirty):
            ctx.checkpoints.save(CHECKPOINT, partition, indexes[partition].to_bytes())
        dirty.clear()

    hold = CheckpointedHold(lambda: ctx.cpu(checkpoint), ctx.checkpoint_every_s)

    @app.agent(source, name="distillery.dedupe")
    async def dedupe(stream):
        async for events in held_batches(stream, ctx.batch_size, ctx.batch_within):
            out = await ctx.cpu(process, [e.message for e in events])
            await send_all([(deduped, k, v) for k, v in out])
            ctx.count("deduped", len(out))
            await hold.add(events)

    @app.timer(ctx.checkpoint_every_s)
    async def dedupe_checkpoint():
        if hold.held:
            await hold.flush()
