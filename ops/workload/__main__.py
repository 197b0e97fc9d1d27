"""python -m ops.workload --n 5000 --seed 1 --out events.jsonl"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from . import FAMILIES, generate_workload, shifted_stream, write_jsonl


def _families(text: str | None):
    if not text:
        return None
    return [f.strip() for f in text.split(",") if f.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.workload",
                                description="Write realistic agent LLM traffic (InferenceEvent JSON lines) "
                                            "for `distillery publish FILE.jsonl`.")
    p.add_argument("--n", type=int, default=1000, help="number of events (default 1000)")
    p.add_argument("--seed", default="0", help="seed; the same seed gives the same events (default 0)")
    p.add_argument("--out", required=True, help="output .jsonl path ('-' for stdout)")
    p.add_argument("--families", help=f"comma-separated families (default: the everyday five; all: {','.join(FAMILIES)})")
    p.add_argument("--pii-rate", type=float, default=0.1, help="share of prompts with planted PII (default 0.1)")
    p.add_argument("--duplicate-rate", type=float, default=0.05, help="share of near-duplicate events (default 0.05)")
    p.add_argument("--frontier-model", default="gpt-4o", help="main model the services call (default gpt-4o)")
    p.add_argument("--start-ts", help="epoch ms of the first event, or 'now' (default: a fixed date, 2026-01-05)")
    p.add_argument("--rate", type=float, default=5.0, help="mean events per second of simulated time (default 5)")
    p.add_argument("--drift", choices=("new_family", "success_drop"),
                   help="after --n/2 events, add the calendar family or drop dns success to 0.6")
    p.add_argument("--canaries", help="also write the planted PII strings to this file (one per line)")
    p.add_argument("--labels", help="also write event_id<TAB>family lines to this file (ground truth)")
    args = p.parse_args(argv)

    start = None
    if args.start_ts == "now":
        start = int(time.time() * 1000)
    elif args.start_ts:
        start = int(args.start_ts)
    common = dict(pii_rate=args.pii_rate, duplicate_rate=args.duplicate_rate, start_ts=start,
                  frontier_model=args.frontier_model, rate_per_s=args.rate)
    try:
        if args.drift:
            half = args.n // 2
            w = shifted_stream(half, args.n - half, seed=args.seed, kind=args.drift,
                               families=_families(args.families), **common).workload
        else:
            w = generate_workload(args.n, args.seed, families=_families(args.families), **common)
    except ValueError as exc:
        p.error(str(exc))
    if args.out == "-":
        for e in w.events:
            sys.stdout.write(json.dumps(e, separators=(",", ":")) + "\n")
    else:
        write_jsonl(w.events, args.out)
    if args.canaries:
        with open(args.canaries, "w", encoding="utf-8") as fh:
            fh.writelines(c + "\n" for c in w.canaries)
    if args.labels:
        with open(args.labels, "w", encoding="utf-8") as fh:
            fh.writelines(f"{e['event_id']}\t{f}\n" for e, f in zip(w.events, w.labels))
    mix = ", ".join(f"{k}={v}" for k, v in sorted(Counter(w.labels).items()))
    print(f"wrote {len(w.events)} events ({mix}; {len(w.canaries)} PII canaries, "
          f"{sum(d is not None for d in w.duplicate_of)} near-duplicates) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
