"""Applies the numbered .sql files of this folder, idempotently, at the start of every service
that writes or reads the ledger. One DDL set serves chDB and a ClickHouse server."""
from __future__ import annotations

import logging
import re
from pathlib import Path

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
_NUMBERED = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_SEPARATOR = re.compile(r"^\s*;\s*$", re.MULTILINE)

# Event tables whose rows expire after DISTILLERY_TTL_DAYS (0 = never); state tables never expire.
TTL_TABLES = ("slm_observation_raw", "slm_observation_curated", "dead_letters", "model_metrics_timeseries",
              "shadow_results", "drift_events", "demotion_events", "promotion_audit_log")
_TTL_COLUMN = {"model_metrics_timeseries": "window_start"}


def migration_files() -> list[Path]:
    files = sorted(p for p in HERE.iterdir() if _NUMBERED.match(p.name))
    numbers = [p.name[:3] for p in files]
    dupes = {n for n in numbers if numbers.count(n) > 1}
    if dupes:
        raise RuntimeError(f"two migrations share a number: {sorted(dupes)} in {HERE}")
    return files


def statements(path: Path) -> list[str]:
    """Split a migration on lines holding only ';' (SQL bodies may contain ';' in strings)."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("--"))
    return [s.strip().rstrip(";").strip() for s in _SEPARATOR.split(text) if s.strip().rstrip(";").strip()]


def apply_migrations(client: Client, ttl_days: int = 0) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS distillery_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM distillery_migrations").result_rows}
    applied = []
    for path in migration_files():
        version = int(path.name[:3])
        if version in done:
            continue
        for sql in statements(path):
            client.command(sql)
        client.insert("distillery_migrations", [[version, path.name]], column_names=["version", "name"])
        applied.append(path.name)
        log.info("applied migration %s", path.name)
    apply_ttl(client, ttl_days)
    return applied


def apply_ttl(client: Client, ttl_days: int) -> None:
    """Bring row TTLs in line with the setting (TTL applies at insert: old rows vanish)."""
    rows = client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": list(TTL_TABLES)},
    ).result_rows
    for name, ddl in rows:
        column = _TTL_COLUMN.get(name, "ts")
        wanted = f"toDateTime({column}) + toIntervalDay({ttl_days})" if ttl_days > 0 else None
        has_ttl = " TTL " in ddl
        if wanted and (not has_ttl or f"toIntervalDay({ttl_days})" not in ddl):
            client.command(f"ALTER TABLE {name} MODIFY TTL toDateTime({column}) + INTERVAL {ttl_days} DAY")
        elif not wanted and has_ttl:
            client.command(f"ALTER TABLE {name} REMOVE TTL")
