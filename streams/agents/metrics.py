"""Metrics agent on `clustered` (keyed by tenant and cluster, so every window of a key lives in
one partition): tumbling windows per (tenant, cluster, model) with mergeable latency sketches
and regret, emitted to `metrics` when they close and re-emitted with a higher revision when a
late event (within grace) updates them. Aggregators are checkpointed per partition before the
input offsets may be committed; replays are recognised by event id."""
from __future__ import annotations

import logging
import time

import faust

from distillery.settings import Topics
from streams.agents._hold import CheckpointedHold
from streams.agents._send import send_all
from streams.context import WorkerContext
from streams.held import held_batches
from streams.metrics.windows import WindowAggregator

log = logging.getLogger(__name__)
CHECKPOINT = "metrics"


class _Watermark:
    """Event time, advanced by wall-clock time while a partition is idle, so the last windows
    of a burst close even when no later event arrives."""

    def __init__(self) -> None:
        self.max_ts = None
        self.wall_at_max = 0.0

    def see(self, ts_ms: int) -> None:
        if self.max_ts is None or ts_ms > self.max_ts:
            self.max_ts, self.wall_at_max = ts_ms, time.monotonic()

    def now(self) -> int | None:
        if self.max_ts is None:
            return None
        return self.max_ts + int((time.monotonic() - self.wall_at_max) * 1000)


def register(app: faust.App, ctx: WorkerContext) -> None:
    source = app.topic(Topics.CLUSTERED, value_serializer="raw", key_serializer="raw")
    metrics = app.topic(Topics.METRICS, value_serializer="raw", key_serializer="raw")
    s = ctx.settings
    aggregators: dict[int, WindowAggregator] = {}
    watermarks: dict[int, _Watermark] = {}
    dirty: set[int] = set()

    def aggregator(partition: int) -> WindowAggregator:
        if partition not in aggregators:
            blob = ctx.checkpoints.load(CHECKPOINT, partition)
            aggregators[partition] = (WindowAggregator.from_bytes(blob, s.metrics_window_seconds, s.metrics_grace_seconds)
                                      if blob else WindowAggregator.from_settings(s))
            watermarks[partition] = _Watermark()
        return aggregators[partition]

    def flush(partitions) -> list[tuple[bytes, bytes]]:
        out = []
        for p in partitions:
            wm = watermarks[p].now()
            if wm is None:
                continue
            for window in aggregators[p].flush(wm):
                out.append((window["window_id"].encode(), ctx.codec.encode("metrics-value", window)))
        return out

    def process(messages: list) -> list[tuple[bytes, bytes]]:
        touched = set()
        for m in messages:
            record = ctx.codec.decode(m.value, "observation-value")[0]
            aggregator(m.partition).add(record)
            watermarks[m.partition].see(record["ts"])
            touched.add(m.partition)
        dirty.update(touched)
        return flush(touched)

    def checkpoint() -> None:
        for p in sorted(dirty):
            ctx.checkpoints.save(CHECKPOINT, p, aggregators[p].to_bytes())
        dirty.clear()

    hold = CheckpointedHold(lambda: ctx.cpu(checkpoint), ctx.checkpoint_every_s)

    @app.agent(source, name="distillery.metrics")
    async def aggregate(stream):
        async for events in held_batches(stream, ctx.batch_size, ctx.batch_within):
            out = await ctx.cpu(process, [e.message for e in events])
            await send_all([(metrics, k, v) for k, v in out])
            ctx.count("metric_windows", len(out))
            await hold.add(events)

    @app.timer(max(1.0, s.metrics_window_seconds / 4))
    async def close_idle_windows():
        out = await ctx.cpu(lambda: flush(list(aggregators)))
        if out:
            await send_all([(metrics, k, v) for k, v in out])
            ctx.count("metric_windows", len(out))
            dirty.update(aggregators)
        if hold.held or dirty:
            await hold.flush()
