"""The one ClickHouse writer: batched Arrow inserts, retried with backoff while the store is
unreachable (the caller holds its offsets meanwhile, so nothing is lost)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from clickhouse.client import connect, describe
from clickhouse.migrate import apply_migrations
from streams.sink_rows import Row, check_identifier, to_arrow

log = logging.getLogger(__name__)


class ClickHouseWriter:
    def __init__(self, url: str, ttl_days: int = 0, max_backoff_s: float = 30.0):
        self.url = url
        self.ttl_days = ttl_days
        self.max_backoff_s = max_backoff_s
        self.client: Any = None
        self.columns: dict[str, list[tuple[str, str]]] = {}
        self.lock = threading.Lock()
        self.rows_written = 0

    def open(self) -> "ClickHouseWriter":
        """Connect and migrate, retrying until the store answers (blocking; call at start)."""
        self._retry(self._connect, "connect to ClickHouse")
        return self

    def _connect(self) -> None:
        self.client = connect(self.url)
        apply_migrations(self.client, self.ttl_days)
        self.columns = {}

    def table_columns(self, table: str) -> list[tuple[str, str]]:
        if table not in self.columns:
            rows = self.client.query(
                "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
                "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position",
                parameters={"t": table}).result_rows
            if not rows:
                raise RuntimeError(f"ClickHouse table {table} does not exist; migrations in clickhouse/ should create it")
            self.columns[table] = [(n, t) for n, t in rows]
        return self.columns[table]

    def insert(self, table: str, rows: list[Row]) -> None:
        """Insert rows; returns only once ClickHouse acknowledged them (retries forever)."""
        if not rows:
            return
        check_identifier(table)

        # Conversion errors are bugs, not outages: they raise at once instead of retrying.
        with self.lock:
            batch = to_arrow(rows, self.table_columns(table))

        def attempt() -> None:
            with self.lock:
                if self.client is None:
                    self._connect()
                self.client.insert_arrow(table, batch)
        self._retry(attempt, f"insert {len(rows)} rows into {table}")
        self.rows_written += len(rows)

    def query(self, sql: str, parameters: dict | None = None) -> list[tuple]:
        with self.lock:
            return self.client.query(sql, parameters=parameters).result_rows

    def _retry(self, fn, what: str) -> None:
        delay, attempts = 0.5, 0
        while True:
            try:
                fn()
                if attempts:
                    log.warning("ClickHouse is back after %d failed attempts: %s", attempts, what)
                return
            except Exception as exc:
                attempts += 1
                log.warning("ClickHouse at %s unavailable (%s), attempt %d to %s; retrying in %.1fs, offsets held",
                            describe(self.url), str(exc).splitlines()[0][:200], attempts, what, delay)
                if self.client is not None and not self.url.startswith("chdb://"):
                    self.client = None  # reconnect next time
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)
