"""What the worker's agents share inside one process: settings, the codec, the price table, a
CPU thread (so batches of CPU work never block heartbeats and commits), stage counters."""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from distillery.settings import Settings
from schemas.codec import Codec, default_codec
from streams.checkpoints import CheckpointStore
from streams.pricing import PriceTable

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    codec: Codec
    prices: PriceTable
    checkpoints: CheckpointStore
    batch_size: int = 2000
    batch_within: float = 0.25
    checkpoint_every_s: float = 5.0
    counters: collections.Counter = field(default_factory=collections.Counter)
    _cpu: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cpu"))
    _io: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="clickhouse"))

    @classmethod
    def from_settings(cls, settings: Settings) -> "WorkerContext":
        return cls(settings=settings, codec=default_codec(settings.schema_registry_url),
                   prices=PriceTable.load(settings.price_table), checkpoints=CheckpointStore(settings.artifacts_uri))

    async def cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-bound batch work off the event loop (the GIL is released every few ms, so
        the loop keeps heartbeating and committing while a batch is hashed or clustered)."""
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn, *args)

    async def io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking store I/O on its own thread: an unreachable ClickHouse (retried with
        backoff) stalls only the sink, never the CPU stages."""
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n
