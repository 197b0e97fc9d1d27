"""The Faust application: one worker process runs every stage agent, the ClickHouse sink and,
for an embedded store, the read-only ClickHouse HTTP query interface.

    ask --ingest--> redacted --dedupe--> deduped --cluster--> clustered --sink--> ClickHouse
         \\-> ask.dlq                                          \\--metrics--> metrics --decide--> retrain
"""
from __future__ import annotations

import logging
import sys

import faust

from distillery.settings import Settings
from streams.context import WorkerContext

log = logging.getLogger(__name__)

APP_ID = "distillery"


def create_app(settings: Settings, ctx: WorkerContext | None = None) -> tuple[faust.App, WorkerContext]:
    ctx = ctx or WorkerContext.from_settings(settings)
    app = faust.App(
        APP_ID,
        broker=[f"kafka://{server}" for server in settings.broker().split(",")],
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        datadir=str(settings.home / "faust"),
        web_enabled=False,
        topic_allow_declare=False,          # topics are created explicitly (ops.local_stack.ensure_topics)
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_commit_every=10_000,
        stream_buffer_maxsize=8192,
        producer_linger=0.005,
        # Stages hand on whole batches (streams/agents/_send.py): larger record batches mean
        # fewer produce round trips; still well under the 1 MB fetch and request limits.
        producer_max_batch_size=256 * 1024,
        # Agents hold offsets until their effect is durable (streams/held.py); waiting for every
        # in-flight message on rebalance or stop would wait on those holds. Redelivery is safe.
        stream_wait_empty=False,
        **settings.faust_broker_options(),
    )
    return app, ctx


def build_worker_app(settings: Settings) -> tuple[faust.App, WorkerContext, list]:
    """The full worker: every agent registered, ClickHouse opened and migrated. Returns the app,
    its context and the things to close on exit."""
    from streams.agents import cluster, decide, dedupe, ingest, metrics, sink
    from streams.clickhouse_writer import ClickHouseWriter
    from streams.redaction import Redactor

    app, ctx = create_app(settings)
    writer = ClickHouseWriter(settings.clickhouse_url, settings.ttl_days).open()
    closers: list = []
    if settings.chdb_path is not None and settings.clickhouse_http_port:
        from clickhouse.http_interface import QueryInterface
        qi = QueryInterface(settings.clickhouse_url, settings.clickhouse_http_port).start()
        log.info("ClickHouse HTTP query interface (read-only) on http://127.0.0.1:%d", qi.port)
        closers.append(qi.stop)
    preview_redactor = Redactor(ner=False)
    closers.append(ingest.register(app, ctx))
    dedupe.register(app, ctx)
    cluster.register(app, ctx)
    metrics.register(app, ctx)
    decide.register(app, ctx, writer)
    sink.register(app, ctx, writer, preview_redactor.redact_text)
    _register_progress(app, ctx)
    return app, ctx, closers


def _register_progress(app: faust.App, ctx: WorkerContext, every_s: float = 10.0) -> None:
    previous: dict[str, int] = {}

    @app.timer(every_s)
    async def progress():
        snapshot = dict(ctx.counters)
        if snapshot != previous:
            log.info("progress %s", " ".join(f"{k}={v}" for k, v in sorted(snapshot.items())))
            previous.clear()
            previous.update(snapshot)


def run_worker(settings: Settings, loglevel: str | None = None) -> int:
    """Run the worker until SIGINT/SIGTERM (blocking)."""
    from ops.local_stack import ensure_all_topics

    created = ensure_all_topics(settings)
    if created:
        log.info("created topics: %s", ", ".join(created))
    app, ctx, closers = build_worker_app(settings)
    worker = faust.Worker(app, loglevel=(loglevel or settings.log_level).upper(), quiet=True,
                          override_logging=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        for close in closers:
            close()
    return 0
