"""Ledger and decisions on the real stack (issue 4): a Tansu broker, `distillery worker`, chDB.

A recorded workload is published, then published again (a replay). The per-cluster figures the
analysts read (metric windows and the views over them and over `observations`) must equal a
direct computation over the same events, priced with the same price table, and stay unchanged
by the replay. The retrain policy's thresholds are set so that exactly one task cluster (the
dominant `dns` family) crosses them: exactly one RetrainCommand for it reaches `retrain`, with a
dataset snapshot that exists and whose sha256 verifies, and the replay adds no second one.

The thresholds are chosen so that the outcome does not hang on how finely the clusterer cuts
the traffic: the dominant family has ~1,750 curated examples, the others ~220 each, and
crossing takes 900 (more than half of the dominant family), so exactly one cluster can cross.
"""
from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import math
import time
from pathlib import Path

import fsspec
import pytest

from distillery.settings import PACKAGE_DEFAULTS, Topics
from ops import workload as wl
from streams.metrics.format_errors import is_format_error
from streams.pricing import PriceTable
from tests.support.stack import Stack
from tests.support.topics import publish_events, read_topic, wait_for_records

pytestmark = pytest.mark.integration

N_EVENTS = 2400
MIN_EXAMPLES = 900          # more than half of the dominant family's curated examples
MIN_CALLS_PER_DAY = 10_000  # the rate is extrapolated from at least an hour: >= 417 calls here
FAMILY_MIX = {"dns": 0.8, "user_admin": 0.1, "ticket_triage": 0.1}
POLICY_ENV = {
    "DISTILLERY_METRICS_WINDOW_SECONDS": "10",
    "DISTILLERY_METRICS_GRACE_SECONDS": "180",      # longer than the workload's span: nothing is late
    "DISTILLERY_POLICY_MIN_EXAMPLES": str(MIN_EXAMPLES),
    "DISTILLERY_POLICY_MIN_CALLS_PER_DAY": str(MIN_CALLS_PER_DAY),
    "DISTILLERY_POLICY_MIN_REGRET_PCT": "20",
    "DISTILLERY_DECIDE_EVERY_SECONDS": "2",
}
SPECIALIST_COST_PER_1K = 0.0002   # distillery-tiny-base in distillery/defaults/model_candidates.json


@pytest.fixture
def ledger_stack(tmp_path, broker):
    s = Stack(tmp_path / "home", broker, **POLICY_ENV)
    yield s
    s.stop()


# -- the direct computation ----------------------------------------------------------------------

def day_of(ts_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.timezone.utc).date()


def exact_quantile(values: list[float], q: float) -> float:
    """The value of rank floor(q * (n - 1)): the element the ledger's sketch rule selects."""
    s = sorted(values)
    return s[int(math.floor(q * (len(s) - 1)))]


def direct_figures(events: list[dict], cluster_of: dict[str, int | None], prices: PriceTable) -> dict[tuple, dict]:
    """Per (day, tenant, cluster, model), straight from the published events."""
    groups: dict[tuple, dict] = {}
    for e in events:
        cost = e["cost_usd"] if e["cost_usd"] is not None else \
            prices.cost(e["model"], e["input_tokens"], e["output_tokens"], e["latency_ms"], None, None)[0]
        cluster = cluster_of[e["event_id"]]
        key = (day_of(e["ts"]), e["tenant"], -1 if cluster is None else cluster, e["model"])
        g = groups.setdefault(key, collections.defaultdict(float, latencies=[]))
        g["calls"] += 1
        g["input_tokens"] += e["input_tokens"]
        g["output_tokens"] += e["output_tokens"]
        g["cost_usd"] += cost
        g["successes"] += e["outcome"] == "success"
        g["failures"] += e["outcome"] == "failure"
        g["escalations"] += e["outcome"] == "escalated"
        g["format_errors"] += is_format_error(e["response"], e["tool_calls"], e["metadata"])
        g["latencies"].append(e["latency_ms"])
    return groups


def rolled_up(groups: dict[tuple, dict], key_of) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for key, g in groups.items():
        r = out.setdefault(key_of(key), collections.defaultdict(float, latencies=[]))
        for name, value in g.items():
            if name == "latencies":
                r[name].extend(value)
            else:
                r[name] += value
    return out


# -- what the ledger says ------------------------------------------------------------------------

def query(stack, sql: str) -> list[tuple]:
    return stack.client().query(sql).result_rows


def cluster_assignments(stack) -> dict[str, int | None]:
    return dict(query(stack, "SELECT event_id, cluster_id FROM observations"))


def ledger_figures(stack) -> dict[str, dict]:
    """Everything the comparison reads, keyed so two readings can be compared for equality."""
    windows = {(t, c, m): dict(zip(("calls", "input_tokens", "output_tokens", "cost_usd", "successes", "failures",
                                    "escalations", "format_errors", "regret_usd"), rest))
               for t, c, m, *rest in query(stack, """
        SELECT tenant, cluster_id, model, sum(calls), sum(input_tokens), sum(output_tokens), sum(cost_usd),
               sum(successes), sum(failures), sum(escalations), sum(format_errors), sum(regret_cost_usd)
        FROM metrics_windows GROUP BY tenant, cluster_id, model""")}
    daily = {(d, t, c, m): dict(zip(("calls", "spend_usd", "success_rate", "escalation_rate", "format_error_rate",
                                     "regret_usd", "quality_gap", "latency_p50", "latency_p95", "latency_p99"), rest))
             for d, t, c, m, *rest in query(stack, """
        SELECT day, tenant, cluster_id, model, calls, spend_usd, success_rate, escalation_rate, format_error_rate,
               regret_usd, quality_gap, latency_p50, latency_p95, latency_p99
        FROM cluster_model_daily""")}
    spend = {(d, t, c): dict(zip(("calls", "spend_usd", "input_tokens", "output_tokens", "success_rate",
                                  "escalation_rate", "unpriced_calls"), rest))
             for d, t, c, *rest in query(stack, """
        SELECT day, tenant, cluster_id, calls, spend_usd, input_tokens, output_tokens, success_rate, escalation_rate,
               unpriced_calls
        FROM spend_per_cluster_day""")}
    top = {c: {"calls": n, "spend_usd": s}
           for c, n, s in query(stack, "SELECT cluster_id, calls, spend_usd FROM top_clusters_by_spend")}
    return {"windows": windows, "daily": daily, "spend": spend, "top": top}


def assert_matches_direct(figures: dict, direct: dict[tuple, dict]) -> None:
    close = lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)   # noqa: E731

    per_window_key = rolled_up(direct, lambda k: (k[1], k[2], k[3]))
    assert set(figures["windows"]) == set(per_window_key), "metric windows cover other (tenant, cluster, model) keys"
    for key, want in per_window_key.items():
        got = figures["windows"][key]
        for name in ("calls", "input_tokens", "output_tokens", "successes", "failures", "escalations", "format_errors"):
            assert got[name] == want[name], f"{key} {name}: ledger {got[name]} != direct {want[name]}"
        assert close(got["cost_usd"], want["cost_usd"]), f"{key} cost: ledger {got['cost_usd']} != direct {want['cost_usd']}"
        # regret is extra spend over the cluster's reference model: never negative, never above the spend
        assert -1e-12 <= got["regret_usd"] <= got["cost_usd"] + 1e-9, (key, got)

    assert set(figures["daily"]) == set(direct)
    for key, want in direct.items():
        got = figures["daily"][key]
        known = want["successes"] + want["failures"] + want["escalations"]
        assert got["calls"] == want["calls"] and close(got["spend_usd"], want["cost_usd"]), (key, got)
        assert close(got["success_rate"], want["successes"] / max(known, 1)), (key, got["success_rate"])
        assert close(got["escalation_rate"], want["escalations"] / want["calls"]), key
        assert close(got["format_error_rate"], want["format_errors"] / want["calls"]), key
        assert 0.0 <= got["quality_gap"] <= 1.0
        for q, name in ((0.5, "latency_p50"), (0.95, "latency_p95"), (0.99, "latency_p99")):
            exact = exact_quantile(want["latencies"], q)
            assert math.isclose(got[name], exact, rel_tol=0.0101), f"{key} {name}: sketch {got[name]} vs exact {exact}"

    per_day_cluster = rolled_up(direct, lambda k: (k[0], k[1], k[2]))
    assert set(figures["spend"]) == set(per_day_cluster)
    for key, want in per_day_cluster.items():
        got = figures["spend"][key]
        known = want["successes"] + want["failures"] + want["escalations"]
        assert got["calls"] == want["calls"] and got["unpriced_calls"] == 0, (key, got)
        assert got["input_tokens"] == want["input_tokens"] and got["output_tokens"] == want["output_tokens"], key
        assert close(got["spend_usd"], want["cost_usd"]), (key, got["spend_usd"], want["cost_usd"])
        assert close(got["success_rate"], want["successes"] / max(known, 1)), key
        assert close(got["escalation_rate"], want["escalations"] / want["calls"]), key

    per_cluster = rolled_up(direct, lambda k: k[2])
    assert set(figures["top"]) == set(per_cluster)
    for cluster, want in per_cluster.items():
        got = figures["top"][cluster]
        assert got["calls"] == want["calls"] and close(got["spend_usd"], want["cost_usd"]), (cluster, got)


def assert_same_figures(before: dict, after: dict) -> None:
    """Equal, up to float summation order (a background merge may reorder the rows a sum reads)."""
    assert before.keys() == after.keys()
    for view in before:
        assert set(before[view]) == set(after[view]), f"{view}: keys changed"
        for key, row in before[view].items():
            for name, value in row.items():
                new = after[view][key][name]
                same = math.isclose(new, value, rel_tol=1e-9, abs_tol=1e-12) if isinstance(value, float) else new == value
                assert same, f"{view} {key} {name}: {value} before the replay, {new} after"


def wait_until_quiet(stack, quiet_s: float = 8.0, timeout: float = 120.0) -> None:
    """Until nothing new reached the ledger's windows, drift and commands for `quiet_s` (several
    window closes and decision ticks): whatever the pipeline still had to say has been said."""
    sql = ("SELECT (SELECT count() FROM model_metrics_timeseries), (SELECT max(ingest_ts) FROM model_metrics_timeseries), "
           "(SELECT count() FROM retrain_commands), (SELECT count() FROM slm_observation_raw)")
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = query(stack, sql)[0]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(1.0)
    raise AssertionError(f"the ledger kept changing for {timeout} s:\n{stack.worker.log_tail()}")


def test_replayed_workload_gives_the_direct_figures_and_exactly_one_retrain_command(ledger_stack):
    stack = ledger_stack
    now = int(time.time() * 1000)
    # One minute of recorded traffic ending a few seconds ago; dns is the dominant task family.
    w = wl.generate_workload(N_EVENTS, seed=404, families=FAMILY_MIX, rate_per_s=N_EVENTS / 60.0,
                             start_ts=now - 75_000)
    assert w.events[-1]["ts"] < now
    prices = PriceTable.load(PACKAGE_DEFAULTS / "prices.json")

    stack.start_worker()
    stack.client()
    publish_events(stack.broker.bootstrap, w.events)
    stack.wait_for("SELECT count() FROM observations", lambda v: v >= N_EVENTS, timeout=240, what="every event stored")
    stack.wait_for("SELECT sum(calls) FROM metrics_windows", lambda v: v is not None and v >= N_EVENTS, timeout=120,
                   what="every call counted in closed metric windows")

    # The one cluster over the thresholds, by a direct count over the events: curated examples
    # are first occurrences (not near-duplicates) whose outcome may train a specialist.
    cluster_of = cluster_assignments(stack)
    duplicates = {eid for (eid,) in query(stack, "SELECT event_id FROM observations WHERE duplicate_of IS NOT NULL")}
    curated = collections.Counter(cluster_of[e["event_id"]] for e in w.events
                                  if e["event_id"] not in duplicates and e["outcome"] in ("success", "unknown"))
    crossing = [c for c, n in curated.items() if c is not None and n >= MIN_EXAMPLES]
    assert len(crossing) == 1, f"curated examples per cluster: {curated}"
    target = crossing[0]

    wait_for_records(stack.broker.bootstrap, Topics.RETRAIN, lambda r: len(r) >= 1, timeout=120,
                     what="a retrain command", worker=stack.worker)
    wait_until_quiet(stack)

    # -- the figures ------------------------------------------------------------------------
    cluster_of = cluster_assignments(stack)     # re-read: nothing may have moved since
    direct = direct_figures(w.events, cluster_of, prices)
    figures = ledger_figures(stack)
    assert_matches_direct(figures, direct)
    # The same thresholds in SQL (replaceable_clusters) find the same single eligible cluster.
    eligible = [c for c, status in query(stack, f"""
        SELECT cluster_id, status FROM replaceable_clusters(min_examples = {MIN_EXAMPLES},
               min_calls_per_day = {MIN_CALLS_PER_DAY}, min_regret_pct = 20,
               specialist_cost_per_1k = {SPECIALIST_COST_PER_1K})""") if status == "eligible"]
    assert eligible == [target], eligible

    # -- exactly one command, for that cluster, with a dataset that verifies ------------------
    commands = read_topic(stack.broker.bootstrap, Topics.RETRAIN)
    assert len(commands) == 1, [(c["cluster_id"], c["command_id"]) for c in commands]
    cmd = commands[0]
    assert cmd["cluster_id"] == target and cmd["trigger"] == "thresholds"
    assert cmd["base_model"] == "distillery-tiny-base"
    assert cmd["evidence"]["curated_examples"] >= MIN_EXAMPLES and cmd["evidence"]["regret_pct"] >= 20
    assert cmd["evidence"]["calls_per_day"] >= MIN_CALLS_PER_DAY
    assert query(stack, "SELECT command_id, cluster_id FROM retrain_commands FINAL") == [(cmd["command_id"], target)]

    fs, path = fsspec.core.url_to_fs(cmd["dataset_uri"])
    assert fs.exists(path), cmd["dataset_uri"]
    with fs.open(path, "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == cmd["dataset_sha256"]
    assert Path(path).name == f"sha256-{cmd['dataset_sha256']}.jsonl"
    lines = [json.loads(line) for line in data.decode().splitlines()]
    splits = collections.Counter(line["split"] for line in lines)
    assert splits == {"train": cmd["train_examples"], "eval": cmd["eval_examples"]}
    assert cmd["eval_examples"] >= 1 and cmd["train_examples"] >= cmd["eval_examples"]
    by_id = {e["event_id"]: (e, family) for e, family in zip(w.events, w.labels)}
    for line in lines:
        event, _ = by_id[line["event_id"]]
        assert cluster_of[line["event_id"]] == target
        assert event["outcome"] in ("success", "unknown") and line["event_id"] not in duplicates
    # ... which is the dns family's (a cold model puts its very first events in the only cluster it has)
    families = collections.Counter(by_id[line["event_id"]][1] for line in lines)
    assert families["dns"] >= 0.95 * len(lines), families
    text = data.decode()
    leaked = [c for c in w.canaries if c in text]
    assert not leaked, f"unredacted PII in the training snapshot: {leaked[:5]}"

    # -- the replay --------------------------------------------------------------------------
    replay_started = int(time.time() * 1000)
    time.sleep(0.01)
    publish_events(stack.broker.bootstrap, w.events)
    stack.wait_for(f"SELECT count() FROM observations WHERE toUnixTimestamp64Milli(ingest_ts) > {replay_started}",
                   lambda v: v >= N_EVENTS, timeout=240, what="every replayed event stored")
    wait_until_quiet(stack)

    assert cluster_assignments(stack) == cluster_of, "the replay moved events to other clusters"
    assert_same_figures(figures, ledger_figures(stack))
    commands_after = read_topic(stack.broker.bootstrap, Topics.RETRAIN)
    assert [c["command_id"] for c in commands_after] == [cmd["command_id"]], "the replay emitted another retrain command"
