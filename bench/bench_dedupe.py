"""Near-duplicate removal (streams.dedupe): speed, quality and memory, measured in one run.

1. Speed: MinHash signatures/s on one core for ~1 KB prompts, as a ratio to datasketch's
   ``MinHash.bulk`` (the baseline; both from raw text, and against the bulk call alone) and,
   for reference, rensa's RMinHash and our num_perm=128; short prompts (10-60 words, where
   densifying the many empty bins dominates) against datasketch; plus the whole
   ``check_batch`` (signatures + LSH + state).
2. Quality: a generated corpus of agent prompts (20 task templates, several tenants) and
   near-copies with known word substitutions/insertions/deletions at rates 0-30%. Positives
   are pairs whose exact Jaccard similarity (same shingles) is >= the threshold.
   - pairs: every same-scope pair, predicted duplicate when LSH makes it a candidate and the
     signature estimate clears the threshold;
   - stream: the events in shuffled order through check_batch: a flagged event is right when
     its exact similarity to the event it was matched with clears the threshold; an event is a
     positive when some earlier event the index kept does.
   Also the estimator's error against exact Jaccard, beside datasketch's with the same num_perm.
3. Memory: bytes per remembered signature, measured (tracemalloc, numpy included) on 100k
   signatures (1M in the full run is extrapolated from it) and the checkpoint size.

    python -m bench dedupe [--quick]
"""
from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc

import numpy as np

from streams.dedupe import DedupeIndex, DedupeItem, MinHasher, jaccard, scope_key, shingles
from streams.dedupe.lsh import band_keys, choose_bands
from streams.dedupe.minhash import estimate

THRESHOLD = 0.85
NUM_PERM = 256  # the product default (DISTILLERY_DEDUPE_NUM_PERM); datasketch gets the same
SHINGLE = 3

# ---- a corpus of agent prompts ------------------------------------------------------------
_VOCAB = """account invoice refund charge payment card balance transfer order shipment delivery
address customer ticket issue error timeout server database query table column index schema
report summary quarter revenue forecast budget contract clause renewal policy claim premium
deductible patient appointment prescription dosage symptom flight booking hotel reservation
itinerary baggage seat upgrade loyalty points password login session token permission role
deploy release rollback pipeline build test coverage branch merge commit review function class
module variable latency throughput memory cpu disk network packet firewall certificate domain
email phone message chat reply escalate priority urgent pending resolved closed assigned team
manager engineer analyst agent supplier vendor warehouse inventory stock price discount tax fee
subscription plan tier trial cancel renew upgrade downgrade region country city currency
monday tuesday wednesday thursday friday january february march april may june july august
the a an of to in for on with by from at as is was were be been has have had will would can
could should may might must not no and or but if then else when while because so than that
this these those it its they them their we our you your he she his her which who what where
how why all any each every some many few more most other such only own same new old first last
late early quickly slowly again still already never always often please kindly note ensure
""".split()

_TEMPLATES = [
    ("classify_intent", "You are a customer support assistant for a retail bank. Classify the intent of the "
     "customer message below into exactly one of the labels: card_lost, refund_request, balance_inquiry, "
     "transfer_failed, fraud_report, other. Message from <PERSON_1> (<EMAIL_1>): \"{body}\" Respond only "
     "with JSON of the form {{\"intent\": label, \"confidence\": number between 0 and 1}}."),
    ("summarise_ticket", "Summarise the following support ticket for the on-call engineer in at most three "
     "bullet points, then list concrete next actions with an owner for each. Ticket #<ID_1> opened by "
     "<PERSON_1>: {body} Keep the summary factual and do not speculate about root causes."),
    ("extract_invoice", "Extract the fields vendor, invoice_number, issue_date, due_date, currency, "
     "total_amount and line_items from the invoice text below. Return a JSON object; use null for fields "
     "that are missing. Invoice text: {body} Dates must be ISO 8601."),
    ("sql_generation", "Given the schema: orders(order_id, customer_id, created_at, total), customers("
     "customer_id, name, region), write one ClickHouse SQL query that answers the question. Question: "
     "{body} Return only the SQL, no explanation, and never use SELECT *."),
    ("tool_plan", "You can call these tools: search_orders(customer_id, since), refund(order_id, amount), "
     "send_email(to, subject, body), escalate(ticket_id, reason). Plan the tool calls needed to handle the "
     "request and output them as a JSON list. Request from <EMAIL_1>: {body}"),
    ("code_review", "Review the following change for bugs, security problems and style issues. Point to "
     "the exact line for each finding and suggest a fix. Change description and diff: {body} Be concise "
     "and rank the findings by severity."),
    ("email_reply", "Draft a polite reply to the customer email below on behalf of the billing team. "
     "Acknowledge the problem, explain the next steps and give a realistic timeline. Sign as <PERSON_2>. "
     "Customer email: {body}"),
    ("translate", "Translate the following message into French, keeping product names, numbers and "
     "placeholders such as <PHONE_1> unchanged. Preserve the tone of the original. Message: {body}"),
    ("triage_alert", "An alert fired on the production cluster. Decide whether it needs to page someone "
     "now, can wait for business hours, or is noise. Explain the decision in one sentence. Alert payload "
     "and recent log lines: {body}"),
    ("qa_policy", "Answer the question using only the policy excerpt. If the excerpt does not contain the "
     "answer say that you do not know. Cite the clause number. Policy excerpt and question: {body}"),
]
_TENANTS = ["acme", "globex", "initech"]


def _sentence(rng: random.Random, words: int) -> str:
    s = " ".join(rng.choice(_VOCAB) for _ in range(words))
    return s[0].upper() + s[1:] + rng.choice([".", ".", "!", "?", ";"])


def _base_prompt(rng: random.Random, template: str, size: int = 1000) -> str:
    body, text = [], template.format(body="")
    while len(text) + sum(len(b) + 1 for b in body) < size:
        body.append(_sentence(rng, rng.randint(6, 16)))
    return template.format(body=" ".join(body))


def _edit(rng: random.Random, text: str, rate: float) -> str:
    """Word-level edits at ``rate`` per word (substitution, insertion or deletion), and a
    surface change (case, spacing, punctuation) that normalisation must ignore."""
    out = []
    for w in text.split():
        if rng.random() < rate:
            op = rng.choice(("sub", "ins", "del"))
            if op == "sub":
                out.append(rng.choice(_VOCAB))
            elif op == "ins":
                out += [w, rng.choice(_VOCAB)]
            # "del": the word is dropped
        else:
            out.append(w)
    edited = " ".join(out)
    surface = rng.choice(("upper", "spaces", "punct", "none"))
    if surface == "upper":
        return edited.upper()
    if surface == "spaces":
        return edited.replace(" ", "  \n", 3)
    if surface == "punct":
        return edited.replace(".", " . ").replace(",", "")
    return edited


def _edit_rate(rng: random.Random) -> float:
    """A retry or a resend (no word edited) one time in five, else uniform in [0, 0.3]."""
    return 0.0 if rng.random() < 0.2 else rng.uniform(0.0, 0.3)


def make_corpus(n_bases: int, seed: int = 11) -> list[tuple[str, str, str]]:
    """(event_id, scope, text): n_bases prompts and 0-3 near-copies of each, shuffled."""
    rng = random.Random(seed)
    docs = []
    for b in range(n_bases):
        task, template = _TEMPLATES[b % len(_TEMPLATES)]
        scope = scope_key(_TENANTS[rng.randrange(len(_TENANTS))], task)
        base = _base_prompt(rng, template, rng.randint(700, 1300))
        docs.append((f"b{b}", scope, base))
        for v in range(rng.choice((0, 1, 1, 2, 3))):
            docs.append((f"b{b}v{v}", scope, _edit(rng, base, _edit_rate(rng))))
    rng.shuffle(docs)
    return docs


# ---- 1. speed ------------------------------------------------------------------------------
def _rates(fns: dict, n: int, rounds: int) -> dict:
    """Items per CPU-second of each fn() (which handles n items): best of ``rounds``, the
    methods interleaved so that load from other processes hits them alike."""
    best = {name: float("inf") for name in fns}
    for name, fn in fns.items():
        fn()                                          # warm up (imports, caches)
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - start)
    return {name: n / t for name, t in best.items()}


def _shingle_bytes(text: str) -> list[bytes]:
    return [" ".join(s).encode() for s in shingles(text, SHINGLE)]


def bench_speed(texts: list[str], rounds: int) -> dict:
    from datasketch import MinHash
    import rensa

    n = len(texts)
    hasher = MinHasher(NUM_PERM, SHINGLE)
    batch = 1000                                       # what the dedupe agent hands over

    def ours():
        for i in range(0, n, batch):
            hasher.signatures(texts[i:i + batch])

    hasher128 = MinHasher(128, SHINGLE)

    def ours_128():
        for i in range(0, n, batch):
            hasher128.signatures(texts[i:i + batch])

    # Short prompts (10-60 words): most of their bins are empty, so densification dominates.
    rng = random.Random(17)
    short = [" ".join(rng.choice(_VOCAB) for _ in range(rng.randint(10, 60))) for _ in range(n)]

    def ours_short():
        for i in range(0, n, batch):
            hasher.signatures(short[i:i + batch])

    def datasketch_short():
        MinHash.bulk([_shingle_bytes(t) for t in short], num_perm=NUM_PERM)

    pre = [_shingle_bytes(t) for t in texts]
    pre_str = [[b.decode() for b in p] for p in pre]

    def datasketch_end_to_end():
        MinHash.bulk([_shingle_bytes(t) for t in texts], num_perm=NUM_PERM)

    def datasketch_bulk_only():
        MinHash.bulk(pre, num_perm=NUM_PERM)

    def rensa_end_to_end():
        for t in texts:
            m = rensa.RMinHash(num_perm=NUM_PERM, seed=42)
            m.update([" ".join(s) for s in shingles(t, SHINGLE)])
            m.digest()

    def rensa_core_only():
        for p in pre_str:
            m = rensa.RMinHash(num_perm=NUM_PERM, seed=42)
            m.update(p)
            m.digest()

    def check_batch():
        index = DedupeIndex(THRESHOLD, NUM_PERM, max_signatures=10 * n)
        for i in range(0, n, batch):
            index.check_batch([DedupeItem(f"e{j}", "s", texts[j], j) for j in range(i, min(n, i + batch))])

    rates = _rates({"ours_signatures_per_s": ours, "ours_128_signatures_per_s": ours_128,
                    "ours_short_per_s": ours_short, "datasketch_short_per_s": datasketch_short,
                    "datasketch_end_to_end_per_s": datasketch_end_to_end,
                    "datasketch_bulk_only_per_s": datasketch_bulk_only, "rensa_end_to_end_per_s": rensa_end_to_end,
                    "rensa_core_only_per_s": rensa_core_only, "ours_check_batch_per_s": check_batch}, n, rounds)
    r = {"docs": n, "mean_doc_bytes": round(sum(len(t.encode()) for t in texts) / n), "rounds": rounds, **rates}
    r["ratio_vs_datasketch_end_to_end"] = r["ours_signatures_per_s"] / r["datasketch_end_to_end_per_s"]
    r["ratio_vs_datasketch_bulk_only"] = r["ours_signatures_per_s"] / r["datasketch_bulk_only_per_s"]
    r["ratio_vs_rensa_end_to_end"] = r["ours_signatures_per_s"] / r["rensa_end_to_end_per_s"]
    r["short_ratio_vs_datasketch_end_to_end"] = r["ours_short_per_s"] / r["datasketch_short_per_s"]
    r["check_batch_ratio_vs_datasketch_end_to_end"] = r["ours_check_batch_per_s"] / r["datasketch_end_to_end_per_s"]
    return r


# ---- 2. quality ----------------------------------------------------------------------------
def _prf(tp: int, fp: int, fn: int) -> dict:
    return {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
            "tp": tp, "fp": fp, "fn": fn}


def bench_quality(corpus: list[tuple[str, str, str]]) -> dict:
    from datasketch import MinHash
    from streams.dedupe.index import scope_hash

    ids = [e for e, _, _ in corpus]
    scopes = [s for _, s, _ in corpus]
    texts = [t for _, _, t in corpus]
    sets = [shingles(t, SHINGLE) for t in texts]
    scope_hashes = np.array([scope_hash(s) for s in scopes], dtype=np.uint64)

    # Every same-scope pair, with its exact Jaccard similarity.
    by_scope: dict[str, list[int]] = {}
    for i, s in enumerate(scopes):
        by_scope.setdefault(s, []).append(i)
    groups = [np.array(m) for m in by_scope.values()]
    exact = [np.array([[jaccard(sets[a], sets[b]) for b in m] for a in m]) for m in groups]
    upper = [np.triu(np.ones((len(m), len(m)), dtype=bool), 1) for m in groups]
    truth = np.concatenate([(x >= THRESHOLD)[u] for x, u in zip(exact, upper)])
    exact_flat = np.concatenate([x[u] for x, u in zip(exact, upper)])

    def pair_predictions(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
        """Estimated similarity and prediction (LSH candidate and estimate >= threshold)."""
        sigs = MinHasher(num_perm, SHINGLE).signatures(texts)
        bands, rows = choose_bands(THRESHOLD, num_perm)
        keys = band_keys(sigs, scope_hashes, bands, rows)
        est, pred = [], []
        for m, u in zip(groups, upper):
            e = estimate((sigs[m][:, None, :] == sigs[m][None, :, :]).sum(axis=2), num_perm)
            cand = (keys[m][:, None, :] == keys[m][None, :, :]).any(axis=2)
            est.append(e[u])
            pred.append((cand & (e >= THRESHOLD - 1e-9))[u])
        return np.concatenate(est), np.concatenate(pred)

    def prf(pred: np.ndarray) -> dict:
        tp, fp, fn = int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())
        return _prf(tp, fp, fn)

    est, pred = pair_predictions(NUM_PERM)
    pairs = prf(pred)
    pairs["positives"] = int(truth.sum())
    pairs["same_scope_pairs"] = len(truth)
    # Where the errors are: recall and false positives by exact similarity.
    bands_of_j = {"0.80-0.85": (0.80, 0.85), "0.85-0.88": (0.85, 0.88), "0.88-0.92": (0.88, 0.92),
                  "0.92-1.00": (0.92, 1.01)}
    pairs["by_exact_jaccard"] = {
        name: {"pairs": int(((exact_flat >= lo) & (exact_flat < hi)).sum()),
               "flagged": int((pred & (exact_flat >= lo) & (exact_flat < hi)).sum())}
        for name, (lo, hi) in bands_of_j.items()}
    pairs["by_num_perm"] = {k: prf(pair_predictions(k)[1]) for k in (64, 128)}
    pairs["by_num_perm"][NUM_PERM] = {k: pairs[k] for k in ("precision", "recall", "tp", "fp", "fn")}

    # The estimator against exact Jaccard, beside datasketch's classic MinHash.
    measured = exact_flat >= 0.3
    ds = MinHash.bulk([_shingle_bytes(t) for t in texts], num_perm=NUM_PERM)
    ds_est = np.concatenate([np.array([[ds[a].jaccard(ds[b]) for b in m] for a in m])[u]
                             for m, u in zip(groups, upper)])
    x, ours_e, ds_e = exact_flat[measured], est[measured], ds_est[measured]
    near = np.abs(x - THRESHOLD) <= 0.1
    estimator = {
        "pairs_with_exact_jaccard_ge_0.3": int(measured.sum()),
        "ours_rmse": float(np.sqrt(np.mean((ours_e - x) ** 2))), "ours_bias": float(np.mean(ours_e - x)),
        "datasketch_rmse": float(np.sqrt(np.mean((ds_e - x) ** 2))), "datasketch_bias": float(np.mean(ds_e - x)),
        "ours_rmse_near_threshold": float(np.sqrt(np.mean((ours_e[near] - x[near]) ** 2))),
        "datasketch_rmse_near_threshold": float(np.sqrt(np.mean((ds_e[near] - x[near]) ** 2))),
        "theoretical_se_at_threshold": float(np.sqrt(THRESHOLD * (1 - THRESHOLD) / NUM_PERM)),
    }

    # Stream: shuffled events through check_batch.
    index = DedupeIndex(THRESHOLD, NUM_PERM, max_signatures=10 * len(corpus))
    pos = {e: i for i, e in enumerate(ids)}
    verdicts = []
    for i in range(0, len(corpus), 500):
        verdicts += index.check_batch([DedupeItem(e, s, t, k) for k, (e, s, t) in enumerate(corpus[i:i + 500], start=i)])
    kept: dict[str, list[int]] = {}
    s_tp = s_fp = s_fn = 0
    for j, v in enumerate(verdicts):
        positive = any(jaccard(sets[i], sets[j]) >= THRESHOLD for i in kept.get(scopes[j], ()))
        if v.is_duplicate:
            right = jaccard(sets[pos[v.duplicate_of]], sets[j]) >= THRESHOLD
            s_tp += right
            s_fp += not right
            s_fn += positive and not right
        else:
            s_fn += positive
            kept.setdefault(scopes[j], []).append(j)
    stream = _prf(s_tp, s_fp, s_fn)
    stream["events"] = len(corpus)
    stream["flagged"] = sum(v.is_duplicate for v in verdicts)
    return {"pairs": pairs, "stream": stream, "estimator": estimator}


# ---- 3. memory -----------------------------------------------------------------------------
def bench_memory(n: int) -> dict:
    """Bytes per remembered signature: the index filled with n unique short events (signature
    size does not depend on text length), measured by tracemalloc, numpy arrays included."""
    rng = np.random.default_rng(5)
    words = np.array([f"w{i}" for i in range(50_000)])
    batch = 5000
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    index = DedupeIndex(THRESHOLD, NUM_PERM, max_signatures=n + 1)
    for start in range(0, n, batch):
        texts = [" ".join(row) for row in words[rng.integers(0, len(words), (batch, 12))]]
        index.check_batch([DedupeItem(f"{start + i:08d}-{'x' * 27}", f"tenant-{i % 4}\x1ftask", t, start + i)
                           for i, t in enumerate(texts)])
        del texts
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = index.stats()
    blob = index.to_bytes()
    t0 = time.perf_counter()
    DedupeIndex.from_bytes(blob)
    restore_s = time.perf_counter() - t0
    per = (current - base) / stats["signatures"]
    return {
        "signatures": stats["signatures"], "bytes_per_signature": per,
        "peak_bytes_per_signature": (peak - base) / stats["signatures"],
        "numpy_array_bytes_per_signature": stats["array_bytes"] / stats["signatures"],
        "mib_per_1m_signatures": per * 1e6 / 2**20,
        "checkpoint_bytes_per_signature": len(blob) / stats["signatures"],
        "restore_seconds": restore_s, "restore_seconds_per_1m": restore_s * 1e6 / stats["signatures"],
        "event_id_chars": 36,
    }


# ---- main ----------------------------------------------------------------------------------
def main(quick: bool = False) -> dict:
    rng = random.Random(3)
    speed_docs = [_base_prompt(rng, _TEMPLATES[i % len(_TEMPLATES)][1], 1000) for i in range(1000 if quick else 4000)]
    speed = bench_speed(speed_docs, 2 if quick else 5)
    print(f"speed ({speed['docs']} docs of ~{speed['mean_doc_bytes']} B, num_perm={NUM_PERM}, per CPU-second, "
          f"best of {speed['rounds']} interleaved rounds):")
    print(f"  ours              {speed['ours_signatures_per_s']:>10,.0f} signatures/s "
          f"({speed['ours_128_signatures_per_s']:,.0f} /s with num_perm=128)")
    print(f"  datasketch bulk   {speed['datasketch_end_to_end_per_s']:>10,.0f} /s from text, "
          f"{speed['datasketch_bulk_only_per_s']:,.0f} /s bulk call alone")
    print(f"  rensa RMinHash    {speed['rensa_end_to_end_per_s']:>10,.0f} /s from text, "
          f"{speed['rensa_core_only_per_s']:,.0f} /s update+digest alone")
    print(f"  ratio vs datasketch: {speed['ratio_vs_datasketch_end_to_end']:.1f}x from text, like for like "
          f"(target >= 20x); {speed['ratio_vs_datasketch_bulk_only']:.1f}x vs its bulk call alone on shingles "
          f"tokenised beforehand (ours includes that work); "
          f"vs rensa from text {speed['ratio_vs_rensa_end_to_end']:.1f}x")
    print(f"  short prompts (10-60 words): ours {speed['ours_short_per_s']:,.0f} /s, datasketch "
          f"{speed['datasketch_short_per_s']:,.0f} /s from text = {speed['short_ratio_vs_datasketch_end_to_end']:.1f}x")
    print(f"  check_batch (signatures + LSH + state): {speed['ours_check_batch_per_s']:,.0f} events/s "
          f"= {speed['check_batch_ratio_vs_datasketch_end_to_end']:.1f}x datasketch signatures alone")

    corpus = make_corpus(300 if quick else 1500)
    quality = bench_quality(corpus)
    p, s, e = quality["pairs"], quality["stream"], quality["estimator"]
    print(f"quality (threshold {THRESHOLD}, {len(corpus)} events, {p['same_scope_pairs']:,} same-scope pairs, "
          f"{p['positives']} positive):")
    print(f"  pairs:  precision {p['precision']:.3f} recall {p['recall']:.3f} (tp {p['tp']} fp {p['fp']} fn {p['fn']})")
    print("          flagged by exact Jaccard: " + ", ".join(
        f"{k}: {v['flagged']}/{v['pairs']}" for k, v in p["by_exact_jaccard"].items()))
    print("          by num_perm: " + ", ".join(
        f"{k}: P {v['precision']:.3f} R {v['recall']:.3f}" for k, v in sorted(p["by_num_perm"].items())))
    print(f"  stream: precision {s['precision']:.3f} recall {s['recall']:.3f} (flagged {s['flagged']}, fp {s['fp']} fn {s['fn']})")
    print(f"  estimate vs exact Jaccard (pairs >= 0.3): rmse {e['ours_rmse']:.4f} bias {e['ours_bias']:+.4f}; "
          f"datasketch rmse {e['datasketch_rmse']:.4f} bias {e['datasketch_bias']:+.4f}; "
          f"near threshold ours {e['ours_rmse_near_threshold']:.4f} datasketch {e['datasketch_rmse_near_threshold']:.4f}")

    memory = bench_memory(20_000 if quick else 100_000)
    print(f"memory ({memory['signatures']:,} signatures): {memory['bytes_per_signature']:.0f} B/signature "
          f"-> {memory['mib_per_1m_signatures']:.0f} MiB per 1M (numpy arrays {memory['numpy_array_bytes_per_signature']:.0f} B, "
          f"peak {memory['peak_bytes_per_signature']:.0f} B); checkpoint {memory['checkpoint_bytes_per_signature']:.0f} B/signature, "
          f"restore {memory['restore_seconds_per_1m']:.1f} s per 1M")
    return {"speed": speed, "quality": quality, "memory": memory,
            "targets": {"speed_ratio_ge_20": speed["ratio_vs_datasketch_end_to_end"] >= 20,
                        "pair_recall_ge_0.95": p["recall"] >= 0.95, "pair_precision_ge_0.95": p["precision"] >= 0.95}}


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
