"""Drift detection benchmark: detection delay after an injected shift, and false alarms on a
stationary stream, with the real clusterer in front of the monitor (as in the pipeline).

Scenarios (ops.workload): a new task family appears at 20% of traffic; the DNS family's
success rate falls 0.95 -> 0.6; and a stationary stream of the usual mix. Baseline in the same
run: the same stream through plain ADWIN (river defaults, no confirmation step), which shows
what the confirmation buys on the stationary stream.

    python -m bench.bench_drift [--quick]
"""
from __future__ import annotations

import argparse
import time

from river import drift

from ops.workload import generate_workload, shifted_stream
from ops.workload.traffic import DEFAULT_PRICES, price_of
from streams.clustering import ClusterItem, DriftMonitor, FeaturizerConfig, TaskClusterer

BATCH = 256


def _cost(e: dict) -> float:
    if e.get("cost_usd") is not None:
        return float(e["cost_usd"])
    return float(price_of(DEFAULT_PRICES, e["model"], e["input_tokens"], e["output_tokens"]) or 0.0)


def run_stream(events: list[dict]) -> dict:
    """Cluster, then monitor; returns records with the index of the event that raised them,
    and the same stream's alarms from unconfirmed default ADWIN on success rate (baseline)."""
    model = TaskClusterer(featurizer_config=FeaturizerConfig.hashed())
    monitor = DriftMonitor()
    plain: dict[int, drift.ADWIN] = {}
    records, plain_alarms, cluster_of = [], 0, []
    t0 = time.perf_counter()
    for start in range(0, len(events), BATCH):
        chunk = events[start:start + BATCH]
        items = [ClusterItem(e["event_id"], e["prompt"], e["response"], e["tool_calls"], e["ts"]) for e in chunk]
        assignments = model.learn_batch(items)
        monitor.observe_lineage(model.drain_lineage())
        for k, (e, a) in enumerate(zip(chunk, assignments)):
            idx = start + k
            cluster_of.append(a.cluster_id)
            for rec in monitor.update(a.cluster_id, e["outcome"] == "success", _cost(e), e["latency_ms"], a.terms, e["ts"]):
                records.append((idx, rec))
            if a.cluster_id is not None:
                det = plain.setdefault(a.cluster_id, drift.ADWIN())
                det.update(1.0 if e["outcome"] == "success" else 0.0)
                plain_alarms += int(det.drift_detected)
    return {"records": records, "plain_adwin_alarms": plain_alarms, "cluster_of": cluster_of,
            "seconds": time.perf_counter() - t0}


def _majority_cluster(cluster_of, labels, family, start, end):
    counts: dict = {}
    for c, f in zip(cluster_of[start:end], labels[start:end]):
        if f == family and c is not None:
            counts[c] = counts.get(c, 0) + 1
    return max(counts, key=counts.get) if counts else None


def _summary(runs: list[dict]) -> dict:
    delays = [r["delay_events"] for r in runs if r["delay_events"] is not None]
    return {"runs": runs, "detected": all(r["detected"] for r in runs),
            "max_delay_events": max(delays) if len(delays) == len(runs) else None,
            "mean_delay_events": round(sum(delays) / len(delays), 1) if delays else None,
            "false_alarms_before_change": sum(r["false_alarms_before_change"] for r in runs)}


def main(quick: bool = False) -> dict:
    n_before, n_after = (4_000, 1_500) if quick else (10_000, 3_000)
    n_stationary = 10_000 if quick else 50_000
    results: dict = {}

    seeds = (11,) if quick else (11, 21, 31)
    # 1. A new task family appears.
    runs = []
    for seed in seeds:
        sc = shifted_stream(n_before, n_after, seed=seed, kind="new_family")
        run = run_stream(sc.events)
        new_cluster = _majority_cluster(run["cluster_of"], sc.labels, sc.family, sc.change_at, len(sc.events))
        hits = [(i, r) for i, r in run["records"] if r.metric == "new_task" and i >= sc.change_at]
        right = [(i, r) for i, r in hits if r.cluster_id == new_cluster]
        runs.append({
            "seed": seed,
            "detected": bool(right),
            "delay_events": (right[0][0] - sc.change_at) if right else None,
            "false_alarms_before_change": sum(1 for i, _ in run["records"] if i < sc.change_at),
            "evidence": right[0][1].evidence if right else "",
        })
    results["new_task"] = _summary(runs)

    # 2. One family's success rate falls 0.95 -> 0.6.
    runs = []
    for seed in seeds:
        sc = shifted_stream(n_before, n_after, seed=seed + 1, kind="success_drop", family="dns", success_after=0.6)
        run = run_stream(sc.events)
        dns_cluster = _majority_cluster(run["cluster_of"], sc.labels, "dns", 0, sc.change_at)
        hits = [(i, r) for i, r in run["records"] if r.metric == "success_rate" and r.cluster_id == dns_cluster and i >= sc.change_at]
        runs.append({
            "seed": seed + 1,
            "detected": bool(hits),
            "delay_events": (hits[0][0] - sc.change_at) if hits else None,
            "delay_cluster_events": (sum(1 for c in run["cluster_of"][sc.change_at:hits[0][0] + 1] if c == dns_cluster)
                                     if hits else None),
            "before": round(hits[0][1].before, 3) if hits else None,
            "after": round(hits[0][1].after, 3) if hits else None,
            "false_alarms_before_change": sum(1 for i, _ in run["records"] if i < sc.change_at),
            "evidence": hits[0][1].evidence if hits else "",
        })
    results["success_drop"] = _summary(runs)

    # 3. Stationary: every record is a false alarm.
    events = generate_workload(n_stationary, seed=13).events
    run = run_stream(events)
    per_50k = 50_000 / n_stationary
    results["stationary"] = {
        "events": n_stationary,
        "false_alarms": len(run["records"]),
        "false_alarms_per_50k": round(len(run["records"]) * per_50k, 2),
        "by_metric": {m: sum(1 for _, r in run["records"] if r.metric == m) for m in
                      sorted({r.metric for _, r in run["records"]})},
        "baseline_plain_adwin_success_alarms_per_50k": round(run["plain_adwin_alarms"] * per_50k, 2),
        "events_per_s_cluster_and_monitor": round(n_stationary / run["seconds"]),
    }
    results["targets"] = {
        "new_task_within_500": results["new_task"]["detected"] and results["new_task"]["max_delay_events"] <= 500,
        "success_drop_within_500": results["success_drop"]["detected"] and results["success_drop"]["max_delay_events"] <= 500,
        "zero_false_alarms_per_50k": results["stationary"]["false_alarms"] == 0
        and results["new_task"]["false_alarms_before_change"] == 0
        and results["success_drop"]["false_alarms_before_change"] == 0,
    }
    _print(results)
    return results


def _print(results: dict) -> None:
    nt, sd, st = results["new_task"], results["success_drop"], results["stationary"]
    print("drift detection (clusterer + DriftMonitor, hashed featuriser)")
    print(f"  new task type (20% share) : detected in all runs={nt['detected']}; delay per run "
          f"{[r['delay_events'] for r in nt['runs']]} events (max {nt['max_delay_events']}); "
          f"alarms before the change={nt['false_alarms_before_change']}")
    print(f"  success 0.95 -> 0.6 (dns) : detected in all runs={sd['detected']}; delay per run "
          f"{[r['delay_events'] for r in sd['runs']]} events (cluster events {[r['delay_cluster_events'] for r in sd['runs']]}); "
          f"before/after {[(r['before'], r['after']) for r in sd['runs']]}; alarms before the change={sd['false_alarms_before_change']}")
    print(f"  stationary {st['events']} ev: false alarms={st['false_alarms']} "
          f"({st['false_alarms_per_50k']}/50k) by metric {st['by_metric']}; "
          f"baseline plain ADWIN on success: {st['baseline_plain_adwin_success_alarms_per_50k']}/50k "
          f"-> ratio confirmed/plain = {st['false_alarms_per_50k']}/{st['baseline_plain_adwin_success_alarms_per_50k']}")
    print(f"  throughput (cluster + monitor): {st['events_per_s_cluster_and_monitor']} events/s")
    print(f"  targets: {results['targets']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller streams (smoke test)")
    main(quick=parser.parse_args().quick)
