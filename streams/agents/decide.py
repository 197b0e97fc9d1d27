"""Decision agent (S4): on a timer, folds what the ledger knows about each task cluster (metric
windows, curated examples, adapters in shadow or active, drift) into ClusterStats, asks the
retrain policy which clusters deserve a specialist, writes each one's content-addressed dataset
snapshot (redacted, deduplicated examples with a fixed train/eval split) to the artifact store,
and publishes a RetrainCommand on `retrain`.

It reads ClickHouse, the materialised view of every topic it needs, so its evidence is the
analysts' evidence. Command ids are deterministic (cluster, policy period, trigger, dataset
hash) and the commands already on record are passed to the policy, so restarts, replays and
several workers never train the same thing twice."""
from __future__ import annotations

import logging

import faust

from distillery.settings import Topics
from streams.agents._send import send_all
from streams.clickhouse_writer import ClickHouseWriter
from streams.context import WorkerContext
from streams.observation import now_ms
from streams.policy.candidates import load_candidates
from streams.policy.decide import PolicyThresholds, RetrainPolicy, build_command
from streams.policy.snapshot import write_snapshot
from streams.policy.stats import ClusterStatsTracker

log = logging.getLogger(__name__)

_WINDOW_COLUMNS = ("window_id", "revision", "window_start", "window_seconds", "cluster_id", "calls", "cost_usd",
                   "input_tokens", "output_tokens", "regret_cost_usd", "successes", "failures", "escalations")


class LedgerDecisions:
    """The I/O around the pure policy: read the ledger, decide, snapshot, build commands."""

    def __init__(self, ctx: WorkerContext, writer: ClickHouseWriter):
        self.ctx, self.writer = ctx, writer
        candidates = load_candidates(ctx.settings.model_candidates)
        self.policy = RetrainPolicy(PolicyThresholds.from_settings(ctx.settings), candidates)
        self.context_len = {c.model_name: c.context_len for c in candidates}
        self.unfit: set[tuple[int, str]] = set()   # (cluster, base) whose examples do not fit: said once
        self.tracker = ClusterStatsTracker()
        # newest ingest_ts (ms) folded in; re-reading rows of that same millisecond is harmless
        # because the tracker is idempotent on window revision, model state and drift id.
        self.seen = {"windows": 0, "registry": 0, "drift": 0}

    def refresh(self) -> None:
        q = self.writer.query
        cols = ", ".join(c if c != "window_start" else "toUnixTimestamp64Milli(window_start) AS window_start" for c in _WINDOW_COLUMNS)
        rows = q(f"SELECT {cols}, toUnixTimestamp64Milli(ingest_ts) FROM model_metrics_timeseries "
                 "WHERE toUnixTimestamp64Milli(ingest_ts) >= {since:Int64} ORDER BY ingest_ts", {"since": self.seen["windows"]})
        for r in rows:
            self.tracker.learn_window(dict(zip(_WINDOW_COLUMNS, r)))
            self.seen["windows"] = max(self.seen["windows"], r[-1])
        rows = q("SELECT model_id, kind, state, cluster_id, toUnixTimestamp64Milli(ts), toUnixTimestamp64Milli(ingest_ts) "
                 "FROM model_registry WHERE toUnixTimestamp64Milli(ingest_ts) >= {since:Int64} ORDER BY ts", {"since": self.seen["registry"]})
        for model_id, kind, state, cluster_id, ts, ingest in rows:
            self.tracker.learn_registry({"model_id": model_id, "kind": kind, "state": state, "cluster_id": cluster_id, "ts": ts})
            self.seen["registry"] = max(self.seen["registry"], ingest)
        rows = q("SELECT drift_id, cluster_id, toUnixTimestamp64Milli(ts), metric, severity, before, after, "
                 "toUnixTimestamp64Milli(ingest_ts) FROM drift_events WHERE toUnixTimestamp64Milli(ingest_ts) >= {since:Int64}",
                 {"since": self.seen["drift"]})
        for drift_id, cluster_id, ts, metric, severity, before, after, ingest in rows:
            self.tracker.learn_drift({"drift_id": drift_id, "cluster_id": cluster_id, "ts": ts, "metric": metric,
                                      "severity": severity, "before": before, "after": after})
            self.seen["drift"] = max(self.seen["drift"], ingest)
        for cluster_id, count in q("SELECT cluster_id, count() FROM slm_observation_curated FINAL "
                                   "WHERE cluster_id IS NOT NULL AND outcome IN ('success', 'unknown') GROUP BY cluster_id"):
            self.tracker.set_curated_count(cluster_id, count)

    def known_commands(self) -> tuple[list[dict], set[str]]:
        commands = [{"command_id": c, "cluster_id": k, "ts": ts} for c, k, ts in self.writer.query(
            "SELECT command_id, cluster_id, toUnixTimestamp64Milli(ts) FROM retrain_commands FINAL")]
        finished = {r[0] for r in self.writer.query("SELECT command_id FROM training_runs FINAL WHERE status IN ('succeeded', 'failed')")}
        return commands, finished

    def curated_rows(self, cluster_id: int) -> list[dict]:
        cols = ("event_id", "prompt", "response", "tool_calls", "outcome", "redaction_version", "cluster_id")
        rows = self.writer.query(f"SELECT {', '.join(cols)} FROM slm_observation_curated FINAL WHERE cluster_id = {{c:Int32}}",
                                 {"c": cluster_id})
        return [{**dict(zip(cols, r)), "duplicate_of": None} for r in rows]

    def fits(self, cluster_id: int, base_model: str, rows: list[dict]) -> bool:
        """S4 capability check: a base whose context cannot hold the cluster's typical example
        (p90 of prompt + answer, ~4 characters a token) would only learn truncated answers."""
        limit = self.context_len.get(base_model)
        if not limit or not rows:
            return True
        sizes = sorted((len(r["prompt"]) + len(r["response"]) + len(r.get("tool_calls") or "")) / 4 for r in rows)
        p90 = sizes[int(0.9 * (len(sizes) - 1))]
        if p90 <= limit:
            return True
        if (cluster_id, base_model) not in self.unfit:
            self.unfit.add((cluster_id, base_model))
            log.info("cluster %d stays on the LLM: its examples (p90 ~%d tokens) do not fit %s (context %d)",
                     cluster_id, p90, base_model, limit)
        return False

    def decide(self) -> list[dict]:
        """One tick: the RetrainCommands to publish now (usually none)."""
        self.refresh()
        now = now_ms()
        commands, finished = self.known_commands()
        out = []
        for decision in self.policy.decide(self.tracker.stats(now), now, commands, finished):
            rows = self.curated_rows(decision.cluster_id)
            if not self.fits(decision.cluster_id, decision.base_model, rows):
                continue
            snapshot = write_snapshot(rows, self.ctx.settings.artifacts_uri)
            if snapshot.n_train == 0 or snapshot.n_eval == 0:
                log.warning("cluster %d qualifies but its snapshot has %d train / %d eval examples: not retraining yet",
                            decision.cluster_id, snapshot.n_train, snapshot.n_eval)
                continue
            command = build_command(decision, snapshot, now)
            log.info("retrain cluster %d (%s): %s; dataset %s (%d train, %d eval)", decision.cluster_id, decision.trigger,
                     decision.reason, snapshot.uri, snapshot.n_train, snapshot.n_eval)
            out.append(command)
        return out


def register(app: faust.App, ctx: WorkerContext, writer: ClickHouseWriter) -> None:
    retrain = app.topic(Topics.RETRAIN, value_serializer="raw", key_serializer="raw")
    decisions = LedgerDecisions(ctx, writer)
    published: set[str] = set()   # ids sent but maybe not yet in the ledger

    @app.timer(ctx.settings.decide_every_seconds)
    async def decide():
        commands = await ctx.io(decisions.decide)
        fresh = [c for c in commands if c["command_id"] not in published]
        if fresh:
            await send_all([(retrain, str(c["cluster_id"]).encode(), ctx.codec.encode("retrain-value", c)) for c in fresh])
            published.update(c["command_id"] for c in fresh)
            ctx.count("retrain_commands", len(fresh))
