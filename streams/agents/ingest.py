"""Ingest agent on `ask`: decode (Avro wire format or JSON), validate, price at ingest, redact
PII, hand on to `redacted`; anything unreadable goes to `ask.dlq` with its reason. This is the
only stage that ever sees unredacted text.

The CPU part (streams/ingest_batch.py) runs in DISTILLERY_INGEST_PROCESSES child processes, so
redaction, the most expensive step of the pipeline, does not share the worker's GIL with Faust
and the other stages; with 0 it runs on the worker's CPU thread."""
from __future__ import annotations

import logging
from typing import Callable

import faust

from distillery.settings import Topics
from streams.agents._send import send_all
from streams.context import WorkerContext
from streams.held import held_batches, release
from streams.ingest_batch import IngestBatch, RawMessage
from streams.observation import now_ms
from streams.process_pool import StagePool

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: WorkerContext) -> Callable[[], None]:
    """Register the agent; returns what closes its child processes."""
    ask = app.topic(Topics.ASK, value_serializer="raw", key_serializer="raw")
    redacted = app.topic(Topics.REDACTED, value_serializer="raw", key_serializer="raw")
    dlq = app.topic(Topics.ASK_DLQ, value_serializer="raw", key_serializer="raw")
    processes = ctx.settings.ingest_processes
    pool = StagePool(processes, IngestBatch, ctx.settings) if processes else None
    in_process = IngestBatch(ctx.settings) if pool is None else None

    async def process(messages: list[RawMessage]) -> tuple[list, list]:
        now = now_ms()
        if in_process is not None:
            return await ctx.cpu(in_process, messages, now)
        good, bad = [], []
        for g, b in await pool.map(messages, now):
            good += g
            bad += b
        return good, bad

    @app.agent(ask, name="distillery.ingest")
    async def ingest(stream):
        if pool is not None:
            await ctx.cpu(pool.start)  # spawn the children before the first batch waits on them
        async for events in held_batches(stream, ctx.batch_size, ctx.batch_within):
            good, bad = await process([RawMessage(m.topic, m.partition, m.offset, m.key, m.value)
                                       for m in (e.message for e in events)])
            await send_all([(redacted, k, v) for k, v in good] + [(dlq, None, v) for v in bad])
            release(events)
            ctx.count("ingested", len(good))
            ctx.count("dead_lettered", len(bad))

    return pool.close if pool is not None else (lambda: None)
