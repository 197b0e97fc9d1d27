"""A stateless CPU stage run in child processes, so it gets cores of its own instead of sharing
the worker's GIL with Faust's event loop and the other stages.

The children are spawned (not forked: the worker has threads) and each builds the stage once,
`factory(*args)`; a batch is cut into contiguous chunks, one per child, and the results come back
in input order. Children ignore SIGINT/SIGTERM: the worker decides when they stop (a Ctrl-C on
the terminal reaches the whole process group), and they exit on their own within a second when
the worker dies without stopping them. A child that dies mid-batch (out of memory, killed)
breaks the pool: it is rebuilt and the batch run again (with backoff), so the caller never sees
a partial result; an exception raised by the stage reaches the caller as it would in-process.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)

_STAGE: Callable[..., Any] | None = None  # the stage object of this child process


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    """The task queue's pipe stays open in the child itself, so a worker killed with SIGKILL
    would leave it waiting forever: leave as soon as the parent is gone."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(0)


def _start_child(factory: Callable[..., Any], args: tuple, parent: int) -> None:
    global _STAGE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    _STAGE = factory(*args)


def _ready() -> bool:
    return _STAGE is not None


def _run_in_child(chunk: Sequence[Any], extra: tuple) -> Any:
    assert _STAGE is not None, "process pool child was not initialised"
    return _STAGE(chunk, *extra)


def chunks(items: Sequence[Any], n: int, min_chunk: int = 1) -> list[Sequence[Any]]:
    """At most n contiguous slices of about equal size (none smaller than min_chunk, none empty)."""
    n = max(1, min(n, len(items) // max(1, min_chunk)))
    size, rest = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (i < rest)
        if end > start:
            out.append(items[start:end])
        start = end
    return out


class StagePool:
    def __init__(self, processes: int, factory: Callable[..., Any], *args: Any, min_chunk: int = 64):
        if processes < 1:
            raise ValueError("a StagePool needs at least one process")
        self.processes = processes
        self.factory, self.args = factory, args
        self.min_chunk = min_chunk
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child, initargs=(self.factory, self.args, os.getpid()))
        return self._pool

    def start(self) -> "StagePool":
        """Spawn the children and build their stage now, not on the first batch."""
        pool = self._executor()
        for f in [pool.submit(_ready) for _ in range(self.processes)]:
            f.result()
        return self

    async def map(self, items: Sequence[Any], *extra: Any) -> list[Any]:
        """The stage's result for each chunk of `items`, in order."""
        loop = asyncio.get_running_loop()
        parts = chunks(items, self.processes, self.min_chunk)
        delay = 0.5
        while True:
            pool = self._executor()
            try:
                return list(await asyncio.gather(*(loop.run_in_executor(pool, _run_in_child, p, extra) for p in parts)))
            except BrokenProcessPool:
                log.error("a %s child process died; restarting the pool and running the batch again in %.1fs",
                          getattr(self.factory, "__name__", self.factory), delay)
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
