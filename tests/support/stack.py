"""Real local stack for integration tests: a Tansu broker and `distillery worker` processes,
started and stopped by PID on free loopback ports, each test with its own DISTILLERY_HOME."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import clickhouse_connect

from distillery.settings import Settings, free_port
from ops.local_stack import TansuBroker, ensure_all_topics

REPO = Path(__file__).resolve().parents[2]


def stack_env(home: Path, bootstrap: str, http_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILLERY_", "KAFKA_", "CLICKHOUSE_"))}
    env.update({
        "DISTILLERY_HOME": str(home),
        "KAFKA_BOOTSTRAP": bootstrap,
        "DISTILLERY_PROFILE": "local",
        "CLICKHOUSE_HTTP_PORT": str(http_port),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class WorkerProcess:
    """`distillery worker` as a child process; its log goes to $home/worker.log."""

    def __init__(self, env: dict[str, str], home: Path):
        self.env, self.home = env, home
        self.proc: subprocess.Popen | None = None
        self.log_path = home / "worker.log"

    def start(self) -> "WorkerProcess":
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "distillery", "worker"], env=self.env, cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Stack:
    """Broker + worker + a query client on the worker's read-only ClickHouse HTTP interface."""

    def __init__(self, home: Path, broker: TansuBroker, **extra_env: str):
        self.home = home
        self.broker = broker
        self.http_port = free_port()
        self.env = stack_env(home, broker.bootstrap, self.http_port, **extra_env)
        self.settings = Settings.from_env(self.env)
        ensure_all_topics(self.settings, broker.bootstrap)
        self.worker = WorkerProcess(self.env, home)
        self._client = None

    def start_worker(self) -> "Stack":
        self.worker.start()
        self._client = None
        return self

    def client(self, timeout: float = 90.0):
        """A clickhouse-connect HTTP client on the worker's query interface (waits for it)."""
        if self._client is not None:
            return self._client
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._client = clickhouse_connect.get_client(host="127.0.0.1", port=self.http_port)
                return self._client
            except Exception:
                if not self.worker.alive():
                    raise RuntimeError(f"worker exited:\n{self.worker.log_tail()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"ClickHouse query interface not up:\n{self.worker.log_tail()}")
                time.sleep(0.3)

    def scalar(self, sql: str):
        return self.client().query(sql).result_rows[0][0]

    def wait_for(self, sql: str, predicate: Callable, timeout: float = 120.0, what: str = ""):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.scalar(sql)
                if predicate(value):
                    return value
            except Exception:
                if not self.worker.alive():
                    raise RuntimeError(f"worker exited:\n{self.worker.log_tail()}")
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what or sql}: last value {value!r}\n{self.worker.log_tail()}")

    def stop(self) -> None:
        self.worker.stop()
