"""`distillery`: the one command line. Every subcommand reads its configuration from the
environment (see `distillery config`), validated before anything starts."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from distillery.settings import ENV_DOC, Settings, SettingsError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger("distillery")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


# ---- up / worker ---------------------------------------------------------------------------
def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Start the local stack: a Tansu broker (unless KAFKA_BOOTSTRAP is set) and the worker."""
    from ops.local_stack import TansuBroker
    from streams.app import run_worker

    settings.home.mkdir(parents=True, exist_ok=True)
    running = settings.read_stack()
    if running:
        print(f"a local stack is already running under {settings.home} (pid {running['pid']}, "
              f"broker {running['kafka_bootstrap']}); stop it first (Ctrl-C in its terminal)", file=sys.stderr)
        return 1
    broker = None
    if settings.kafka_bootstrap is None:
        (settings.home / "logs").mkdir(exist_ok=True)
        broker = TansuBroker(port=args.kafka_port, log_path=settings.home / "logs" / "tansu.log").start()
        settings = settings.with_overrides(kafka_bootstrap=broker.bootstrap)
        log.info("Tansu broker (local profile, memory-only) on %s, pid %d", broker.bootstrap, broker.pid)
    stack = {"pid": os.getpid(), "kafka_bootstrap": settings.kafka_bootstrap,
             "broker_pid": broker.pid if broker else None,
             "clickhouse_http": f"http://127.0.0.1:{settings.clickhouse_http_port}" if settings.chdb_path and settings.clickhouse_http_port else None,
             "started": int(time.time())}
    settings.stack_file.write_text(json.dumps(stack, indent=2))
    print(f"Distillery local stack: Kafka {settings.kafka_bootstrap}; ClickHouse {settings.clickhouse_url}"
          + (f" (query it at {stack['clickhouse_http']} or with `distillery sql`)" if stack["clickhouse_http"] else "")
          + ". Ctrl-C stops it.", flush=True)
    try:
        return run_worker(settings)
    finally:
        settings.stack_file.unlink(missing_ok=True)
        if broker:
            broker.stop()
            log.info("Tansu broker stopped")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.app import run_worker

    settings.broker()  # fail early with the how-to-fix message
    return run_worker(settings)


# ---- publish -------------------------------------------------------------------------------
def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from distillery.publisher import AskPublisher, PublishError

    path = Path(args.file)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    total = sum(1 for _ in path.open("rb"))
    publisher = AskPublisher(settings, avro=args.avro)
    sent, invalid = 0, []
    with path.open("rb") as f, tqdm(total=total, unit="ev", desc=f"publish {path.name}", disable=args.quiet) as bar:
        for lineno, line in enumerate(f, 1):
            bar.update(1)
            if not line.strip():
                continue
            if args.no_validate:
                publisher.send_raw(None, line.rstrip(b"\r\n"))
                sent += 1
                continue
            try:
                event = publisher.event(**json.loads(line))
            except (ValueError, TypeError, PublishError) as exc:
                invalid.append((lineno, str(exc)))
                continue
            publisher.send_raw(event["event_id"].encode(), publisher.encode(event))
            sent += 1
    try:
        publisher.flush()
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"published {sent} events to `ask` on {settings.broker()} ({'Avro' if args.avro else 'JSON'}); "
          f"{len(invalid)} invalid lines skipped")
    for lineno, why in invalid[:10]:
        print(f"  line {lineno}: {why}")
    if len(invalid) > 10:
        print(f"  ... and {len(invalid) - 10} more")
    return 0 if not invalid else 3


# ---- sql -----------------------------------------------------------------------------------
def query_client(settings: Settings):
    """A client for reading: the running stack's HTTP interface when it owns the embedded
    store, else a direct connection."""
    import clickhouse_connect

    from clickhouse.client import connect

    stack = settings.read_stack()
    if settings.chdb_path is not None and stack and stack.get("clickhouse_http"):
        from urllib.parse import urlparse
        u = urlparse(stack["clickhouse_http"])
        return clickhouse_connect.get_client(host=u.hostname, port=u.port)
    return connect(settings.clickhouse_url, readonly=True)


def cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    query = args.query if args.query != "-" else sys.stdin.read()
    try:
        client = query_client(settings)
        result = client.query(query)
    except Exception as exc:
        print(f"error: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}", file=sys.stderr)
        return 1
    print_table(result.column_names, result.result_rows, args.format)
    return 0


def print_table(columns, rows, fmt: str = "table") -> None:
    if fmt == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, row)), default=str, ensure_ascii=False))
        return
    if fmt in ("csv", "tsv"):
        import csv
        w = csv.writer(sys.stdout, delimiter="," if fmt == "csv" else "\t")
        w.writerow(columns)
        w.writerows(rows)
        return
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print(line)
    for r in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(r, widths)))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "..."


# ---- misc ----------------------------------------------------------------------------------
def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    print("Distillery configuration (environment variables; values after validation):\n")
    resolved = {
        "DISTILLERY_HOME": settings.home, "KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "(unset: local Tansu)",
        "DISTILLERY_PROFILE": settings.profile, "CLICKHOUSE_URL": settings.clickhouse_url,
    }
    for name, default, meaning in ENV_DOC:
        current = resolved.get(name, os.environ.get(name, ""))
        print(f"  {name:34} {str(current or default):44} {meaning}")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from clickhouse.client import connect, describe
    from clickhouse.migrate import apply_migrations

    applied = apply_migrations(connect(settings.clickhouse_url), settings.ttl_days)
    print(f"{describe(settings.clickhouse_url)}: applied {len(applied)} migration(s) {' '.join(applied)}")
    return 0


def cmd_trainer(settings: Settings, args: argparse.Namespace) -> int:
    from trainers.service import run_trainer

    settings.broker()
    return run_trainer(settings) or 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from serving.app import run_server

    settings.broker()
    return run_server(settings) or 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from ops.demo import run_demo

    return run_demo(settings, quick=args.quick) or 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="distillery",
        description="Turn your LLM traffic into small specialist models, continuously. "
                    "Configuration comes from environment variables: see `distillery config`.",
        epilog="Typical local session: `distillery up` in one terminal, then `distillery publish events.jsonl` "
               "and `distillery sql \"SELECT count() FROM observations\"` in another. `make demo` runs the whole loop.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("up", help="start the local stack (Kafka broker + worker + ClickHouse query interface); Ctrl-C stops it",
                       description="Starts the Tansu broker shipped with the project on a free loopback port (unless KAFKA_BOOTSTRAP is set), "
                                   "creates the topics, and runs the worker, which owns the embedded ClickHouse store and serves its "
                                   "read-only HTTP query interface on CLICKHOUSE_HTTP_PORT.")
    s.add_argument("--kafka-port", type=int, default=0, help="broker port (default: a free one)")
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("worker", help="run the stream worker (ingest, redact, dedupe, cluster, metrics, decide, ClickHouse sink)")
    s.set_defaults(func=cmd_worker)

    s = sub.add_parser("publish", help="send InferenceEvents from a JSONL file to `ask`, with progress and a summary")
    s.add_argument("file", help="JSON Lines file, one InferenceEvent object per line")
    s.add_argument("--avro", action="store_true", help="send in the Avro Confluent wire format instead of JSON")
    s.add_argument("--no-validate", action="store_true", help="send lines as they are (bad ones end in ask.dlq)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("sql", help="run a read-only query on the ledger and print a table",
                       description="Queries whichever ClickHouse is configured: the running local stack's query interface, "
                                   "the embedded store directly, or a server. Use - to read the query from stdin.")
    s.add_argument("query")
    s.add_argument("--format", choices=("table", "csv", "tsv", "json"), default="table")
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("config", help="show every setting, its current value and what it does")
    s.set_defaults(func=cmd_config)

    s = sub.add_parser("migrate", help="apply ClickHouse migrations (services also do this at start)")
    s.set_defaults(func=cmd_migrate)

    s = sub.add_parser("trainer", help="run the trainer service (consumes `retrain`, trains LoRA/QLoRA adapters)")
    s.set_defaults(func=cmd_trainer)

    s = sub.add_parser("serve", help="run the OpenAI-compatible serving tier (routing, specialists, shadow evaluation)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("demo", help="run the whole loop on the embedded default stack and print a report")
    s.add_argument("--quick", action="store_true", help="a smaller workload (for smoke tests)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    try:
        return args.func(settings, args) or 0
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
