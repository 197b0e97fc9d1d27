"""Sink agent: the one writer of ClickHouse. Consumes every topic the ledger mirrors, converts
records to wide rows (sink_rows), inserts per table in batches, and lets offsets be committed
only after ClickHouse acknowledged the batch. Rows are keyed by record id in
ReplacingMergeTree tables, so redelivery after a crash never shows twice through the views."""
from __future__ import annotations

import collections
import logging

import faust

from schemas.codec import CodecError
from streams.context import WorkerContext
from streams.clickhouse_writer import ClickHouseWriter
from streams.held import held_batches, release
from streams.observation import now_ms
from streams.sink_rows import routes

log = logging.getLogger(__name__)


def register(app: faust.App, ctx: WorkerContext, writer: ClickHouseWriter, redact_preview) -> None:
    table_routes = routes(redact_preview)
    topic = app.topic(*table_routes.keys(), value_serializer="raw", key_serializer="raw")

    def to_rows(messages: list) -> dict[str, list]:
        now = now_ms()
        by_table: dict[str, list] = collections.defaultdict(list)
        for m in messages:
            subject, targets = table_routes[m.topic]
            try:
                record, _ = ctx.codec.decode(m.value or b"", subject)
            except CodecError as exc:  # written by a service with a schema we don't know
                log.error("sink skipped %s/%d@%d: %s", m.topic, m.partition, m.offset, exc)
                ctx.count("sink_undecodable")
                continue
            for route in targets:
                by_table[route.table].extend(route.transform(record, now))
        return by_table

    def write(by_table: dict[str, list]) -> int:
        for table, rows in by_table.items():
            writer.insert(table, rows)
        return sum(len(r) for r in by_table.values())

    @app.agent(topic, name="distillery.sink")
    async def sink(stream):
        async for events in held_batches(stream, ctx.settings.sink_batch_size, ctx.settings.sink_flush_seconds):
            by_table = await ctx.cpu(to_rows, [e.message for e in events])
            written = await ctx.io(write, by_table)
            release(events)
            ctx.count("rows_written", written)
            ctx.count("observations_written", len(by_table.get("slm_observation_raw", ())))
