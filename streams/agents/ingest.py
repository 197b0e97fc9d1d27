"""Ingest agent on `ask`: decode (Avro wire format or JSON), validate, price at ingest, redact
PII, hand on to `redacted`; anything unreadable goes to `ask.dlq` with its reason. This is the
only stage that ever sees unredacted text."""
from __future__ import annotations

import logging

import faust

from distillery.settings import Topics
from schemas.codec import RejectedMessage, decode_ask
from streams.agents._send import send_all
from streams.context import WorkerContext
from streams.held import held_batches, release
from streams.dedupe import scope_key
from streams.observation import dead_letter, now_ms, observation_from_event
from streams.redaction import Redactor

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: WorkerContext) -> None:
    ask = app.topic(Topics.ASK, value_serializer="raw", key_serializer="raw")
    redacted = app.topic(Topics.REDACTED, value_serializer="raw", key_serializer="raw")
    dlq = app.topic(Topics.ASK_DLQ, value_serializer="raw", key_serializer="raw")
    redactor = Redactor(ner=ctx.settings.redaction_ner, mode=ctx.settings.redaction_mode)
    max_bytes = ctx.settings.max_prompt_bytes

    def process(messages: list) -> tuple[list, list]:
        """CPU part of a batch: decode, price, redact. Runs on the CPU thread."""
        now = now_ms()
        accepted, rejected = [], []
        for m in messages:
            try:
                event, sid = decode_ask(m.value or b"", ctx.codec, max_bytes)
            except RejectedMessage as exc:
                rejected.append(dead_letter(m.topic, m.partition, m.offset, m.key, m.value or b"", exc.reason, exc.detail, now))
                continue
            accepted.append(observation_from_event(event, sid, ctx.prices, now))
        redactor.redact_observations(accepted)
        return ([(scope_key(o["tenant"], o["task_hint"]).encode(), ctx.codec.encode("observation-value", o)) for o in accepted],
                [ctx.codec.encode("ask.dlq-value", d) for d in rejected])

    @app.agent(ask, name="distillery.ingest")
    async def ingest(stream):
        async for events in held_batches(stream, ctx.batch_size, ctx.batch_within):
            good, bad = await ctx.cpu(process, [e.message for e in events])
            await send_all([(redacted, k, v) for k, v in good] + [(dlq, None, v) for v in bad])
            release(events)
            ctx.count("ingested", len(good))
            ctx.count("dead_lettered", len(bad))
