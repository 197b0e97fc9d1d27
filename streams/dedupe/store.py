"""The signatures the index remembers, one slot each, in preallocated numpy arrays that grow
by doubling. Freed slots are reused; ``serial`` (insertion order) survives checkpoints, so
"oldest first" never depends on which slot an entry happens to occupy."""
from __future__ import annotations

import numpy as np

from .minhash import SIGNATURE_DTYPE


class SignatureStore:
    def __init__(self, num_perm: int, capacity: int = 1024, growth_limit: int | None = None):
        self.num_perm = num_perm
        self.growth_limit = growth_limit      # doubling stops here (the index's size bound)
        self.sig = np.zeros((capacity, num_perm), dtype=SIGNATURE_DTYPE)
        self.ts = np.zeros(capacity, dtype=np.int64)
        self.serial = np.zeros(capacity, dtype=np.int64)
        self.scope = np.zeros(capacity, dtype=np.int32)
        self.live = np.zeros(capacity, dtype=bool)
        self.event_id: list[str | None] = [None] * capacity
        # Free slots as a stack (top at the end), low slots on top so a young store stays dense.
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
        self._nfree = capacity
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        return len(self.ts)

    def nbytes(self) -> int:
        return self.sig.nbytes + self.ts.nbytes + self.serial.nbytes + self.scope.nbytes + self.live.nbytes

    def _grow(self, needed: int) -> None:
        old = self.capacity
        new = max(2 * old, 1024)
        if self.growth_limit is not None:
            new = min(new, self.growth_limit)
        new = max(new, old + needed)
        self.sig = np.concatenate([self.sig, np.zeros((new - old, self.num_perm), dtype=SIGNATURE_DTYPE)])
        for name in ("ts", "serial", "scope", "live"):
            arr = getattr(self, name)
            setattr(self, name, np.concatenate([arr, np.zeros(new - old, dtype=arr.dtype)]))
        self.event_id.extend([None] * (new - old))
        free = np.empty(new, dtype=np.int64)
        fresh = new - old
        free[:fresh] = np.arange(new - 1, old - 1, -1)
        free[fresh:fresh + self._nfree] = self._free[:self._nfree]
        self._free, self._nfree = free, fresh + self._nfree

    def add(self, sig: np.ndarray, ts: np.ndarray, serial: np.ndarray, scope: np.ndarray,
            event_ids: list[str]) -> np.ndarray:
        n = len(event_ids)
        if n > self._nfree:
            self._grow(n - self._nfree)
        slots = self._free[self._nfree - n:self._nfree][::-1].copy()
        self._nfree -= n
        self.sig[slots] = sig
        self.ts[slots] = ts
        self.serial[slots] = serial
        self.scope[slots] = scope
        self.live[slots] = True
        for s, e in zip(slots.tolist(), event_ids):
            self.event_id[s] = e
        self._count += n
        return slots

    def remove(self, slots: np.ndarray) -> None:
        self.live[slots] = False
        for s in slots.tolist():
            self.event_id[s] = None
        self._free[self._nfree:self._nfree + len(slots)] = slots[::-1]
        self._nfree += len(slots)
        self._count -= len(slots)

    def live_slots(self) -> np.ndarray:
        return np.flatnonzero(self.live)

    def in_serial_order(self) -> np.ndarray:
        live = self.live_slots()
        return live[np.argsort(self.serial[live], kind="stable")]

    def oldest(self, n: int) -> np.ndarray:
        """The n live slots with the smallest (ts, serial), in O(live) time."""
        live = self.live_slots()
        if n >= len(live):
            return live
        ts = self.ts[live]
        cut = np.partition(ts, n - 1)[n - 1]
        below = live[ts < cut]
        tied = live[ts == cut]
        tied = tied[np.argsort(self.serial[tied], kind="stable")][:n - len(below)]
        return np.concatenate([below, tied])
