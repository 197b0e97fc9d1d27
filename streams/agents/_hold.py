"""Release events only once the state they changed is checkpointed: the committed offset of a
stateful agent never runs ahead of its checkpoint (replays past it are idempotent on event id)."""
from __future__ import annotations

import time
from typing import Awaitable, Callable

from streams.held import release


class CheckpointedHold:
    def __init__(self, save: Callable[[], Awaitable[None]], every_s: float, max_held: int = 50_000):
        self.save = save
        self.every_s = every_s
        self.max_held = max_held
        self.held: list = []
        self.last = time.monotonic()

    async def add(self, events) -> None:
        self.held.extend(events)
        if time.monotonic() - self.last >= self.every_s or len(self.held) >= self.max_held:
            await self.flush()

    async def flush(self) -> None:
        """Checkpoint, then let the held offsets be committed. Also called from a timer so an
        idle stream still commits."""
        events, self.held = self.held, []
        await self.save()
        release(events)
        self.last = time.monotonic()
