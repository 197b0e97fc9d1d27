"""Task discovery benchmark: quality and speed of the streaming clusterer, beside offline
baselines measured in the same run.

Corpora:
- BANKING77 (/work/shared/datasets/banking77, train+test, 13,083 utterances, 77 intents, read in
  place), shuffled with a fixed seed: all-unique short free text, no tools, no responses;
- the mixed agent-traffic corpus of ops.workload (DNS / user admin / file shares -> JSON,
  ticket triage, open questions), labelled by task family.

Quality: NMI, ARI and purity against the labels for
- "emitted": the cluster id each event got when it was learnt (None counts as one group),
- "resolved": the same ids after following merge lineage (what the ledger shows later),
- "final": the finished model's assignment of every event (predict_batch),
beside scikit-learn KMeans given the true k (TF-IDF, and MiniLM or the same features).
Speed: events/s of the clustering stage *including featurisation* (learn_batch wall time).

    python -m bench.bench_clustering [--quick]
"""
from __future__ import annotations

import argparse
import collections
import csv
import os
import random
import time
from pathlib import Path

import numpy as np

from streams.clustering import ClusterItem, FeaturizerConfig, TaskClusterer
from streams.clustering.features import Featurizer

BANKING = Path("/work/shared/datasets/banking77")
BATCH = 256


# -- metrics ------------------------------------------------------------------------------
def _purity(labels, clusters) -> float:
    table: dict = collections.defaultdict(collections.Counter)
    for y, c in zip(labels, clusters):
        table[c][y] += 1
    return sum(max(v.values()) for v in table.values()) / max(len(labels), 1)


def scores(labels, clusters) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    clusters = [-1 if c is None else c for c in clusters]
    return {"nmi": round(float(normalized_mutual_info_score(labels, clusters)), 4),
            "ari": round(float(adjusted_rand_score(labels, clusters)), 4),
            "purity": round(_purity(labels, clusters), 4),
            "clusters": len(set(clusters) - {-1})}


def _resolve(ids, lineage) -> list:
    parent = {}
    for rec in lineage:
        if rec["change"] == "merged":
            for old in rec["related_cluster_ids"]:
                parent[old] = rec["cluster_id"]

    def root(c):
        seen = 0
        while c in parent and seen < 1000:
            c, seen = parent[c], seen + 1
        return c
    return [None if c is None else root(c) for c in ids]


# -- one streaming run --------------------------------------------------------------------
def stream(items: list[ClusterItem], labels: list[str], fcfg: FeaturizerConfig,
           featurizer: Featurizer | None = None) -> dict:
    model = TaskClusterer(featurizer_config=fcfg, featurizer=featurizer)
    t0 = time.perf_counter()
    out = []
    for i in range(0, len(items), BATCH):
        out += model.learn_batch(items[i:i + BATCH])
    seconds = time.perf_counter() - t0
    lineage = model.drain_lineage()
    emitted = [a.cluster_id for a in out]
    final = model.predict_batch(items)
    snapshot = model.snapshot_record()
    enc = model.featurizer.encoder
    res = {
        "featurizer": model.featurizer_name,
        "events": len(items),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(items) / seconds, 1),
        "emitted": scores(labels, emitted),
        "resolved": scores(labels, _resolve(emitted, lineage)),
        "final": scores(labels, final),
        "unassigned_emitted": round(sum(c is None for c in emitted) / len(items), 4),
        "unassigned_final": round(sum(c is None for c in final) / len(items), 4),
        "micro_clusters": model.micro.size,
        "lineage": dict(collections.Counter(r["change"] for r in lineage)),
        "checkpoint_bytes": len(model.to_bytes()),
        "snapshot_bytes": len(snapshot["state"]),
        "minilm_cache_hit_rate": (round(1 - enc.encoded / max(enc.requested, 1), 4) if enc else None),
    }
    res["_model"] = model
    res["_emitted"] = emitted
    return res


def _public(run: dict) -> dict:
    return {k: v for k, v in run.items() if not k.startswith("_")}


def serving_agreement(run: dict, items: list[ClusterItem], n: int = 2000) -> float:
    """Share of late events whose prompt alone (no response yet, as at request time) gets the
    cluster the learner emitted, through the compact snapshot serving loads."""
    model: TaskClusterer = run["_model"]
    serving = TaskClusterer.from_bytes(model.snapshot(), featurizer=model.featurizer)
    tail = list(zip(items, run["_emitted"]))[-n:]
    probe = [ClusterItem(it.event_id, it.prompt) for it, _ in tail]
    got = serving.predict_batch(probe)
    return round(sum(g == c for g, (_, c) in zip(got, tail)) / len(tail), 4)


# -- offline baselines --------------------------------------------------------------------
def kmeans_baseline(X, labels, k: int) -> dict:
    from sklearn.cluster import KMeans

    t0 = time.perf_counter()
    pred = KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(X)
    out = scores(labels, list(pred))
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def tfidf(texts):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2).fit_transform(texts)


def encoder_speed(texts: list[str]) -> dict:
    """Sentences/s of plain PyTorch MiniLM (fp32, unsorted batches of 64, max_length 256: the
    baseline) against the encoder as configured here (length-sorted, len 64, int8), same texts."""
    from streams.clustering.encoder import MiniLMEncoder

    out = {}
    for name, enc, sort in (("plain_fp32", MiniLMEncoder(max_length=256, quantize=False), False),
                            ("ours_q8_sorted_len64", MiniLMEncoder(max_length=64, quantize=True), True)):
        enc.encode(["warm up"])
        batches = [texts[i:i + 64] for i in range(0, len(texts), 64)] if not sort else [texts]
        t0 = time.perf_counter()
        for b in batches:
            if sort:
                enc.encode(b)
            else:
                enc.batch_size = 10**9
                enc._run(b)     # one unsorted batch of 64 at a time, no cache
        out[name] = round(len(texts) / (time.perf_counter() - t0), 1)
    out["speedup"] = round(out["ours_q8_sorted_len64"] / out["plain_fp32"], 2)
    return out


# -- corpora ------------------------------------------------------------------------------
def banking77(limit: int | None = None, seed: int = 0) -> tuple[list[str], list[str]]:
    rows = []
    for name in ("train.csv", "test.csv"):
        with open(BANKING / name, newline="", encoding="utf-8") as fh:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    random.Random(seed).shuffle(rows)   # the files are grouped by intent; a stream is not
    rows = rows[:limit] if limit else rows
    return [t for t, _ in rows], [c for _, c in rows]


def mixed(n: int, seed: int = 7) -> tuple[list[ClusterItem], list[str]]:
    from ops.workload import generate_labelled

    events, labels = generate_labelled(n, seed=seed)
    items = [ClusterItem(e["event_id"], e["prompt"], e["response"], e["tool_calls"], e["ts"]) for e in events]
    return items, labels


# -- main ---------------------------------------------------------------------------------
def main(quick: bool = False) -> dict:
    from threadpoolctl import threadpool_limits
    import torch

    torch.set_num_threads(2)
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}}

    # BANKING77: MiniLM (default featuriser) vs hashed-only, plus KMeans(true k) baselines.
    texts, labels = banking77(limit=3000 if quick else None)
    items = [ClusterItem(str(i), t, "", None, i) for i, t in enumerate(texts)]
    k = len(set(labels))
    fcfg = FeaturizerConfig()
    featurizer = Featurizer(fcfg)
    featurizer.transform(items[:8])     # load the model outside the timed region
    featurizer.encoder._cache.clear()
    featurizer.encoder.encoded = featurizer.encoder.requested = 0
    b_minilm = stream(items, labels, fcfg, featurizer)
    b_hashed = stream(items, labels, FeaturizerConfig.hashed())
    emb = featurizer.encoder.encode([featurizer.transform([it]).skeletons[0] for it in items])
    base_tfidf = kmeans_baseline(tfidf(texts), labels, k)
    base_minilm = kmeans_baseline(emb, labels, k)
    speed = encoder_speed(texts[:640 if quick else 1280])
    results["banking77"] = {
        "minilm_sentences_per_s_2_threads": speed,
        "utterances": len(items), "intents": k,
        "stream_minilm": _public(b_minilm), "stream_hashed": _public(b_hashed),
        "offline_kmeans_true_k_tfidf": base_tfidf, "offline_kmeans_true_k_minilm": base_minilm,
        "ratio_nmi_stream_minilm_final_vs_kmeans_minilm": round(b_minilm["final"]["nmi"] / base_minilm["nmi"], 3),
        "ratio_nmi_stream_minilm_emitted_vs_kmeans_minilm": round(b_minilm["emitted"]["nmi"] / base_minilm["nmi"], 3),
    }

    # Mixed agent traffic: hashed (default for tool/JSON traffic) on one core; MiniLM on a subset.
    m_items, m_labels = mixed(5000 if quick else 20000)
    with threadpool_limits(1):
        torch.set_num_threads(1)
        m_hashed = stream(m_items, m_labels, FeaturizerConfig.hashed())
        n_sub = 1000 if quick else 3000
        sub_feat = Featurizer(fcfg)
        sub_feat.transform(m_items[:8])
        m_minilm = stream(m_items[:n_sub], m_labels[:n_sub], fcfg, sub_feat)
    torch.set_num_threads(2)
    kf = len(set(m_labels))
    X = Featurizer(FeaturizerConfig.hashed()).transform(m_items).vectors
    results["mixed"] = {
        "events": len(m_items), "families": kf,
        "stream_hashed_1core": _public(m_hashed),
        "stream_minilm_1core_subset": _public(m_minilm),
        "serving_agreement_prompt_only": serving_agreement(m_hashed, m_items),
        "offline_kmeans_true_k_tfidf": kmeans_baseline(tfidf([it.prompt for it in m_items]), m_labels, kf),
        "offline_kmeans_true_k_same_features": kmeans_baseline(X, m_labels, kf),
    }
    results["mixed"]["ratio_nmi_stream_hashed_emitted_vs_kmeans_same_features"] = round(
        m_hashed["emitted"]["nmi"] / results["mixed"]["offline_kmeans_true_k_same_features"]["nmi"], 3)
    results["targets"] = {
        "banking77_nmi_ge_0.77 (final, minilm)": b_minilm["final"]["nmi"] >= 0.77,
        "banking77_nmi_ge_0.77 (emitted, minilm)": b_minilm["emitted"]["nmi"] >= 0.77,
        "mixed_nmi_ge_0.90 (emitted, hashed)": m_hashed["emitted"]["nmi"] >= 0.90,
        "mixed_ge_2000_events_per_s_per_core (hashed)": m_hashed["events_per_s"] >= 2000,
        "banking77_ge_1000_events_per_s_2_cores (minilm)": b_minilm["events_per_s"] >= 1000,
        "snapshot_lt_1MB": max(b_minilm["snapshot_bytes"], m_hashed["snapshot_bytes"]) < 1_000_000,
    }
    _print(results)
    return results


def _line(name: str, run: dict) -> str:
    e, r, f = run["emitted"], run["resolved"], run["final"]
    return (f"  {name:<28} NMI emitted {e['nmi']:.3f} resolved {r['nmi']:.3f} final {f['nmi']:.3f} | "
            f"ARI {e['ari']:.3f}/{f['ari']:.3f} purity {e['purity']:.3f}/{f['purity']:.3f} | "
            f"clusters {f['clusters']} | {run['events_per_s']:.0f} ev/s | unassigned {run['unassigned_emitted']:.3f} | "
            f"snapshot {run['snapshot_bytes'] / 1e3:.0f} kB")


def _print(res: dict) -> None:
    b, m = res["banking77"], res["mixed"]
    print(f"machine: {res['machine']}")
    print(f"BANKING77 ({b['utterances']} utterances, {b['intents']} intents; k not given to the stream)")
    print(_line("stream MiniLM+terms", b["stream_minilm"]))
    print(_line("stream hashed terms", b["stream_hashed"]))
    for name in ("offline_kmeans_true_k_tfidf", "offline_kmeans_true_k_minilm"):
        s = b[name]
        print(f"  {name:<28} NMI {s['nmi']:.3f} ARI {s['ari']:.3f} purity {s['purity']:.3f} ({s['seconds']} s)")
    sp = b["minilm_sentences_per_s_2_threads"]
    print(f"  MiniLM sentences/s (2 threads): plain fp32 {sp['plain_fp32']}, ours {sp['ours_q8_sorted_len64']} "
          f"-> speedup x{sp['speedup']}")
    print(f"  ratio NMI stream(final)/KMeans-MiniLM(true k) = {b['ratio_nmi_stream_minilm_final_vs_kmeans_minilm']}, "
          f"emitted/KMeans = {b['ratio_nmi_stream_minilm_emitted_vs_kmeans_minilm']}")
    print(f"mixed agent traffic ({m['events']} events, {m['families']} families)")
    print(_line("stream hashed, 1 core", m["stream_hashed_1core"]))
    print(_line("stream MiniLM, 1 core, subset", m["stream_minilm_1core_subset"]))
    for name in ("offline_kmeans_true_k_tfidf", "offline_kmeans_true_k_same_features"):
        s = m[name]
        print(f"  {name:<28} NMI {s['nmi']:.3f} ARI {s['ari']:.3f} purity {s['purity']:.3f}")
    print(f"  serving agreement (prompt only, snapshot): {m['serving_agreement_prompt_only']}")
    print(f"  ratio NMI stream(emitted)/KMeans(true k, same features) = "
          f"{m['ratio_nmi_stream_hashed_emitted_vs_kmeans_same_features']}")
    print(f"targets: {res['targets']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora (smoke test)")
    main(quick=parser.parse_args().quick)
