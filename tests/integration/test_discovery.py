"""Task discovery on the real stack (issue 7): a Tansu broker, `distillery worker` and chDB.

Two runs, each shared by the tests that read it (one worker start per run keeps the suite short):
- restart run: the five everyday task families; the worker is killed midway and restarted.
  A restarted worker resumes its clustering model, so the families keep their cluster ids;
  and each family ends as one task cluster of its own.
- shift run: the usual mix, then a shift: a new task family (`calendar`) takes 20 % of traffic
  and the `dns` family's success rate falls from 0.95 to 0.6. An on-call consumer reading the
  `drift` topic receives a drift event for each, on the right cluster, and none before the shift.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass

import pytest

from distillery.settings import Topics
from ops import workload as wl
from ops.local_stack import TansuBroker
from tests.support.stack import Stack
from tests.support.topics import publish_events, read_topic

pytestmark = pytest.mark.integration

FAMILIES = wl.DEFAULT_FAMILIES


def assignments(stack) -> dict[str, tuple[int | None, int | None]]:
    """event_id -> (cluster_id, cluster_model_version) as the `clustered` topic carried them."""
    rows = stack.client().query("SELECT event_id, cluster_id, cluster_model_version FROM observations").result_rows
    return {eid: (cid, ver) for eid, cid, ver in rows}


def family_clusters(events: list[dict], labels: list[str], assigned: dict) -> dict[str, collections.Counter]:
    """family -> Counter(cluster id -> events of the family carrying it)."""
    out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for e, family in zip(events, labels):
        out[family][assigned[e["event_id"]][0]] += 1
    return out


def dominant(counts: collections.Counter) -> tuple[int | None, float]:
    cid, n = counts.most_common(1)[0]
    return cid, n / sum(counts.values())


# -- restart run ---------------------------------------------------------------------------------

@dataclass
class RestartRun:
    workload: wl.Workload
    half: int
    before: dict             # assignments read just before the crash
    after: dict              # assignments of every event at the end
    retired: set[int]        # cluster ids retired by a merge
    labels: dict[int, str]


@pytest.fixture(scope="module")
def restart_run(tmp_path_factory) -> RestartRun:
    now = int(time.time() * 1000)
    w = wl.generate_workload(3000, seed=71, start_ts=now - 3_000 * 200)   # ~10 minutes of traffic at 5/s
    half = 1500
    with TansuBroker() as broker:
        stack = Stack(tmp_path_factory.mktemp("restart") / "home", broker)
        try:
            stack.start_worker()
            stack.client()
            publish_events(broker.bootstrap, w.events[:half])
            stack.wait_for("SELECT count() FROM observations", lambda v: v >= half, timeout=240, what="first half stored")
            before = assignments(stack)
            stack.worker.kill9()          # a crash midway: no orderly shutdown, no final checkpoint
            stack.start_worker()
            publish_events(broker.bootstrap, w.events[half:])
            stack.wait_for("SELECT count() FROM observations", lambda v: v >= len(w.events), timeout=240,
                           what="every event stored after the restart")
            after = assignments(stack)
            client = stack.client()
            retired = {r for (related,) in client.query(
                "SELECT related_cluster_ids FROM task_cluster_lineage FINAL WHERE change = 'merged'").result_rows
                for r in related}
            labels = dict(client.query("SELECT cluster_id, label FROM cluster_labels").result_rows)
        finally:
            stack.stop()
    return RestartRun(w, half, before, after, retired, labels)


def test_a_restarted_worker_resumes_its_model_and_keeps_the_cluster_ids(restart_run):
    run = restart_run
    w, half = run.workload, run.half
    assert set(run.after) == {e["event_id"] for e in w.events}
    # The model version goes on from where it was (a model relearnt from scratch starts over,
    # and so does its id counter).
    version_before = max(v for _, v in run.before.values() if v is not None)
    versions_after = [run.after[e["event_id"]][1] for e in w.events[half:]]
    assert min(v for v in versions_after if v is not None) >= version_before
    # Each family's traffic after the restart goes to a cluster that already held a large part
    # of that family before the crash (read after the model's first few hundred events).
    tail = slice(half // 3, half)
    before = family_clusters(w.events[tail], w.labels[tail], run.before)
    after = family_clusters(w.events[half:], w.labels[half:], run.after)
    for family in FAMILIES:
        cid, _ = dominant(after[family])
        share_before = before[family][cid] / sum(before[family].values())
        assert cid is not None and share_before >= 0.25, \
            f"{family}: cluster {cid} after the restart held {share_before:.2f} of it before ({dict(before[family])})"


def test_each_task_family_ends_as_one_cluster_of_its_own(restart_run):
    run = restart_run
    w, half = run.workload, run.half
    after = family_clusters(w.events[half:], w.labels[half:], run.after)
    ids = {}
    for family in FAMILIES:
        cid, share = dominant(after[family])
        assert cid is not None and share >= 0.9, \
            f"{family}: its largest cluster {cid} holds only {share:.2f} of its events: {dict(after[family])}"
        ids[family] = cid
    assert len(set(ids.values())) == len(FAMILIES), f"families share clusters: {ids}"
    # The families' clusters are live (never retired by a merge), each with a readable label.
    assert not set(ids.values()) & run.retired, f"family clusters retired by a merge: {set(ids.values()) & run.retired}"
    for family, cid in ids.items():
        assert run.labels.get(cid), f"{family}'s cluster {cid} has no label: {run.labels}"


# -- shift run -----------------------------------------------------------------------------------

@dataclass
class ShiftRun:
    before: wl.Workload
    after: wl.Workload
    change_ts: int
    assigned: dict
    drift: list[dict]                 # every record on `drift`, as an on-call consumer reads it
    drift_rows: set[str]              # drift ids in ClickHouse


@pytest.fixture(scope="module")
def shift_run(tmp_path_factory) -> ShiftRun:
    now = int(time.time() * 1000)
    before = wl.generate_workload(1500, seed=72, start_ts=now - 2_400 * 200)
    after = wl.generate_workload(900, seed=73, start_ts=before.events[-1]["ts"],
                                 families={"dns": 0.25, "user_admin": 0.2, "file_share": 0.15, "ticket_triage": 0.2,
                                           "open_question": 0.2, "calendar": 0.25},   # calendar: 20 % of traffic
                                 success_rates={"dns": 0.6})
    n = len(before.events) + len(after.events)
    with TansuBroker() as broker:
        stack = Stack(tmp_path_factory.mktemp("shift") / "home", broker)
        try:
            stack.start_worker()
            stack.client()
            publish_events(broker.bootstrap, before.events)
            # The shift comes later in time: the usual mix has been learnt by then.
            stack.wait_for("SELECT count() FROM observations", lambda v: v >= len(before.events), timeout=240,
                           what="the usual mix stored")
            publish_events(broker.bootstrap, after.events)
            stack.wait_for("SELECT count() FROM observations", lambda v: v >= n, timeout=240,
                           what="the shifted traffic stored")
            # The cluster agent sends drift events with the clustered events they came from, so
            # every drift event is on the topic by now; the sink mirrors them to ClickHouse.
            drift = read_topic(broker.bootstrap, Topics.DRIFT)
            ids = {r["drift_id"] for r in drift}
            stack.wait_for("SELECT count() FROM drift_events FINAL", lambda v: v >= len(ids), timeout=60,
                           what="drift events mirrored to ClickHouse")
            drift_rows = {r[0] for r in stack.client().query("SELECT drift_id FROM drift_events FINAL").result_rows}
            assigned = assignments(stack)
        finally:
            stack.stop()
    return ShiftRun(before, after, after.events[0]["ts"], assigned, drift, drift_rows)


def shifted_cluster(run: ShiftRun, family: str) -> int:
    cid, share = dominant(family_clusters(run.after.events, run.after.labels, run.assigned)[family])
    assert cid is not None and share >= 0.6, f"{family} has no cluster of its own after the shift"
    return cid


def test_a_new_task_family_reaches_an_on_call_consumer_of_the_drift_topic(shift_run):
    run = shift_run
    calendar = shifted_cluster(run, "calendar")
    usual = {dominant(c)[0] for c in family_clusters(run.before.events, run.before.labels, run.assigned).values()}
    assert calendar not in usual
    found = [r for r in run.drift if r["cluster_id"] == calendar and r["metric"] == "new_task"]
    assert len(found) == 1, f"no single new_task drift event for cluster {calendar}: {run.drift}"
    event = found[0]
    assert event["ts"] >= run.change_ts and event["after"] > 0.05   # its traffic share
    assert event["evidence"] and event["suggested_action"]
    assert event["drift_id"] in run.drift_rows                      # and a ClickHouse row
    early = [r for r in run.drift if r["ts"] < run.change_ts]
    assert not early, f"false alarms while the traffic was stationary: {early}"


def test_a_falling_success_rate_reaches_an_on_call_consumer_of_the_drift_topic(shift_run):
    run = shift_run
    dns = shifted_cluster(run, "dns")
    found = [r for r in run.drift if r["cluster_id"] == dns and r["metric"] == "success_rate"]
    assert found, (f"no success_rate drift event for the dns cluster {dns}; drift events: "
                   f"{[(r['cluster_id'], r['metric']) for r in run.drift]}")
    event = found[0]
    assert event["ts"] >= run.change_ts
    assert event["before"] >= 0.85 and event["after"] <= 0.8, event
    assert event["severity"] in ("warning", "fatal") and event["evidence"] and event["suggested_action"]
    assert event["drift_id"] in run.drift_rows
