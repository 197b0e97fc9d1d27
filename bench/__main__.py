"""Run the benchmarks: `python -m bench [NAME ...] [--quick]`. Results also go to
bench/results/latest.json."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ORDER = ["ingest", "redaction", "dedupe", "clustering", "drift", "metrics", "views", "trainer", "serving"]


def available() -> list[str]:
    here = Path(__file__).parent
    return [n for n in ORDER if (here / f"bench_{n}.py").exists()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available())})")
    p.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    args = p.parse_args(argv)
    names = args.names or available()
    results, failed = {}, []
    for name in names:
        print(f"\n=== bench {name} {'(quick)' if args.quick else ''} ===", flush=True)
        start = time.time()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            results[name] = module.main(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            results[name] = {"error": traceback.format_exc(limit=3)}
        print(f"--- {name}: {time.time() - start:.1f}s", flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    # merge, so running one benchmark keeps the others' latest figures (each stamped with its run)
    path = out / ("latest-quick.json" if args.quick else "latest.json")
    try:
        merged = json.loads(path.read_text())
    except (OSError, ValueError):
        merged = {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for name, result in results.items():
        merged[name] = {**result, "_measured_at": stamp} if isinstance(result, dict) else result
    path.write_text(json.dumps(merged, indent=2, default=str))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
