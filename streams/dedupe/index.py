"""Near-duplicate search over a stream of prompts, one batch at a time.

``DedupeIndex.check_batch(items)`` answers, for each item in input order, "is this a
near-duplicate (estimated Jaccard >= threshold over word shingles) of an earlier event of the
same scope that the index still remembers?", and remembers the items that are not. An answer
is the same as processing the items one by one, with two batch-level simplifications: the
age cut-off is taken from the newest timestamp of the batch, and the size bound is enforced
after the batch.

Guarantees the stream relies on:
- Scoped: only items with the same ``scope`` string (tenant + task hint) are compared.
- Idempotent on event_id: a replayed event gets the answer it got the first time: a remembered
  event matches itself and is reported unique, a duplicate's verdict is remembered (for as long
  as the index would remember an event) and returned again; a replay changes no state.
- Bounded: at most ``max_signatures`` signatures (the oldest by event time go first, 1% at a
  time) and none older than ``max_age_s`` behind the newest event time seen.
- Durable: ``to_bytes()`` / ``DedupeIndex.from_bytes()`` (see checkpoint.py); the restored
  index answers exactly as the original would have.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .buckets import BucketRuns, sort_pairs
from .lsh import band_keys, choose_bands
from .minhash import MinHasher, estimate, min_agreeing
from .store import SignatureStore


@dataclass(frozen=True, slots=True)
class DedupeItem:
    event_id: str
    scope: str          # scope_key(tenant, task_hint): duplicates are searched within one scope
    text: str
    ts_ms: int          # event time: ages and evicts signatures


@dataclass(frozen=True, slots=True)
class DedupeVerdict:
    duplicate_of: str | None = None     # event_id of the remembered event this one duplicates
    similarity: float | None = None     # estimated Jaccard similarity to it

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


UNIQUE = DedupeVerdict()


def scope_key(tenant: str, task_hint: str | None) -> str:
    """The scope of an event: its tenant and task hint (unit separator between them)."""
    return f"{tenant}\x1f{task_hint or ''}"


def scope_hash(scope: str) -> int:
    """A fixed 64-bit hash of a scope string (part of every bucket key, so part of the format)."""
    return int.from_bytes(hashlib.blake2b(scope.encode("utf-8"), digest_size=8).digest(), "little")


class DedupeIndex:
    """MinHash-LSH near-duplicate index of one stream partition (all its scopes).

    threshold: Jaccard similarity (of the texts' sets of ``shingle_size``-word shingles) at
        which an item is a duplicate. num_perm: signature length, one byte each (precision of
        the estimate: standard error ~sqrt(s(1-s)/num_perm), 0.032 at s=0.85 with 128, 0.022
        with 256).
    max_signatures: size bound. max_age_s: age bound in event time (None or 0: none).
    max_candidates: per item, at most this many stored signatures are verified, those sharing
        the most bands first. max_bucket_scan: a guard against pathological buckets.
    """

    def __init__(self, threshold: float = 0.85, num_perm: int = 128, max_signatures: int = 1_000_000,
                 max_age_s: float | None = None, *, shingle_size: int = 3, max_candidates: int = 64,
                 max_bucket_scan: int = 1024):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        if num_perm < 16:
            raise ValueError(f"num_perm must be at least 16, not {num_perm}")
        if max_signatures < 1:
            raise ValueError(f"max_signatures must be at least 1, not {max_signatures}")
        if max_age_s is not None and max_age_s < 0:
            raise ValueError(f"max_age_s must be >= 0 or None, not {max_age_s}")
        self.threshold = float(threshold)
        self.num_perm = int(num_perm)
        self.shingle_size = int(shingle_size)
        self.max_signatures = int(max_signatures)
        self.max_age_s = float(max_age_s) if max_age_s else None
        self.max_candidates = int(max_candidates)
        self.max_bucket_scan = int(max_bucket_scan)
        self.bands, self.rows = choose_bands(self.threshold, self.num_perm)
        # A pair is a duplicate when at least this many of num_perm values agree.
        self._min_matches = min_agreeing(self.threshold, self.num_perm)
        self._hasher = MinHasher(self.num_perm, self.shingle_size)
        self._store = SignatureStore(self.num_perm, capacity=min(1024, self.max_signatures),
                                     growth_limit=self.max_signatures)
        self._buckets = BucketRuns()
        self._scopes: list[str] = []
        self._scope_ids: dict[str, int] = {}
        self._scope_hashes = np.zeros(0, dtype=np.uint64)
        self._verdicts: dict[str, tuple[int, DedupeVerdict]] = {}   # duplicates, oldest first
        self._watermark_ms: int | None = None
        self._min_live_ts: int | None = None
        self._next_serial = 0
        self._lock = threading.Lock()
        self.counters = {"checked": 0, "duplicates": 0, "replays": 0,
                         "evicted_by_age": 0, "evicted_by_size": 0}

    # ---- public API -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._store)

    def check_one(self, item: DedupeItem) -> DedupeVerdict:
        return self.check_batch([item])[0]

    def check_batch(self, items: list[DedupeItem]) -> list[DedupeVerdict]:
        """One verdict per item, in order; remembers the unique ones."""
        with self._lock:
            return self._check_batch(list(items))

    def stats(self) -> dict:
        with self._lock:
            return {"signatures": len(self._store), "scopes": len(self._scopes),
                    "remembered_duplicates": len(self._verdicts), "watermark_ms": self._watermark_ms,
                    "bucket_entries": len(self._buckets), "bucket_runs": self._buckets.runs,
                    "array_bytes": self._store.nbytes() + self._buckets.nbytes(),
                    "bands": self.bands, "rows": self.rows, **self.counters}

    def to_bytes(self) -> bytes:
        from .checkpoint import encode
        with self._lock:
            return encode(self)

    @classmethod
    def from_bytes(cls, data: bytes, **overrides) -> "DedupeIndex":
        """Restore a checkpoint. ``overrides`` may change threshold, max_signatures, max_age_s,
        max_candidates or max_bucket_scan (not num_perm or shingle_size: signatures depend on
        them); bounds are applied on the next batch."""
        from .checkpoint import decode
        return decode(cls, data, overrides)

    # ---- the batch ------------------------------------------------------------------------
    def _check_batch(self, items: list[DedupeItem]) -> list[DedupeVerdict]:
        verdicts: list[DedupeVerdict | None] = [None] * len(items)
        fresh: list[int] = []
        first_seen: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []
        for i, item in enumerate(items):
            remembered = self._verdicts.get(item.event_id)
            if remembered is not None:
                verdicts[i] = remembered[1]
                self.counters["replays"] += 1
            elif item.event_id in first_seen:
                repeats.append((i, first_seen[item.event_id]))
            else:
                first_seen[item.event_id] = i
                fresh.append(i)
        if items:
            newest = max(int(it.ts_ms) for it in items)
            if self._watermark_ms is None or newest > self._watermark_ms:
                self._watermark_ms = newest
            self._evict_by_age()
        if fresh:
            for i, verdict in zip(fresh, self._decide([items[i] for i in fresh])):
                verdicts[i] = verdict
        for i, first in repeats:
            verdicts[i] = verdicts[first]
            self.counters["replays"] += 1
        self._evict_by_size()
        return verdicts  # type: ignore[return-value]

    def _decide(self, items: list[DedupeItem]) -> list[DedupeVerdict]:
        n = len(items)
        sigs = self._hasher.signatures([it.text for it in items])
        scope_ids = np.array([self._scope_id(it.scope) for it in items], dtype=np.int32)
        keys = band_keys(sigs, self._scope_hashes[scope_ids], self.bands, self.rows)
        # The batch's bucket keys sorted once, each with its position in keys.ravel(): the
        # index lookup (sorted queries search the runs faster), the in-batch grouping and
        # the new bucket run all use this order.
        skeys, spos = sort_pairs(keys.ravel(), np.arange(keys.size))
        item_of = spos.astype(np.int64) // self.bands
        from_index = self._index_matches(items, sigs, scope_ids, skeys, item_of)
        in_batch = self._batch_matches(sigs, scope_ids, skeys, item_of)

        verdicts: list[DedupeVerdict] = []
        kept = np.zeros(n, dtype=bool)
        for j, item in enumerate(items):
            match = from_index.get(j)
            if match == "self":               # a replay of an event the index remembers
                verdicts.append(UNIQUE)
                continue
            best_sim, best_id = (match[0], match[1]) if match else (-1.0, None)
            for i, sim in in_batch.get(j, ()):
                if kept[i] and sim > best_sim:
                    best_sim, best_id = sim, items[i].event_id
            if best_id is None:
                kept[j] = True
                verdicts.append(UNIQUE)
            else:
                verdict = DedupeVerdict(best_id, best_sim)
                self._verdicts[item.event_id] = (int(item.ts_ms), verdict)
                self.counters["duplicates"] += 1
                verdicts.append(verdict)
        self.counters["checked"] += n
        keep = np.flatnonzero(kept)
        ts = np.array([int(items[j].ts_ms) for j in keep], dtype=np.int64)
        slots = self._remember([items[j].event_id for j in keep], ts, sigs[keep], scope_ids[keep])
        if len(keep):
            slot_of = np.zeros(n, dtype=np.int64)
            slot_of[keep] = slots
            entry = np.flatnonzero(kept[item_of])            # still in key order
            self._buckets.add(skeys[entry], slot_of[item_of[entry]], presorted=True)
        return verdicts

    def _index_matches(self, items, sigs, scope_ids, skeys, item_of) -> dict:
        """Per batch item j: "self" when the index holds the same event_id with a matching
        signature, else (similarity, event_id) of the best remembered duplicate, or absent.
        ``skeys``: the batch's bucket keys in ascending order, ``item_of``: the item of each."""
        if not len(self._store):
            return {}
        owner, slots = self._buckets.lookup(skeys, self.max_bucket_scan)
        q = item_of[owner]
        same_scope = self._store.scope[slots] == scope_ids[q]
        q, slots = q[same_scope], slots[same_scope].astype(np.int64)
        if not len(q):
            return {}
        pair, hits = np.unique(q * (1 << 32) + slots, return_counts=True)
        q, slots = pair >> 32, pair & 0xFFFFFFFF
        q, slots = self._most_promising(q, slots, hits)
        matches = (sigs[q] == self._store.sig[slots]).sum(axis=1)
        ok = matches >= self._min_matches
        out: dict = {}
        serial = self._store.serial
        for j, slot, m in zip(q[ok].tolist(), slots[ok].tolist(), matches[ok].tolist()):
            if out.get(j) == "self":
                continue
            event_id = self._store.event_id[slot]
            if event_id == items[j].event_id:
                out[j] = "self"
                continue
            sim = estimate(m, self.num_perm)
            best = out.get(j)
            if best is None or sim > best[0] or (sim == best[0] and serial[slot] < best[2]):
                out[j] = (sim, event_id, int(serial[slot]))
        return out

    def _most_promising(self, q: np.ndarray, slots: np.ndarray, hits: np.ndarray):
        """At most max_candidates per query: most shared bands first, then oldest."""
        per_query = np.bincount(q)
        if per_query.max() <= self.max_candidates:
            return q, slots
        order = np.lexsort((self._store.serial[slots], -hits, q))
        q, slots = q[order], slots[order]
        rank = np.arange(len(q)) - (np.cumsum(per_query) - per_query)[q]
        keep = rank < self.max_candidates
        return q[keep], slots[keep]

    def _batch_matches(self, sigs, scope_ids, skeys, item_of) -> dict[int, list[tuple[int, float]]]:
        """Per batch item j: [(i, similarity)] for earlier items i < j of the batch that are
        duplicates of it by signature. Pairs come from shared buckets: each item is paired with
        the first item of each bucket it shares and with the 8 items before it there.
        ``skeys`` (ascending) and ``item_of``: as for _index_matches, so items sharing a key
        are adjacent and in item order."""
        n = len(sigs)
        if n < 2:
            return {}
        k, it = skeys, item_of
        group_start = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        start_of = np.repeat(group_start, np.diff(np.r_[group_start, len(k)]))
        pos = np.arange(len(k))
        firsts, seconds = [it[start_of]], [it]
        for d in range(1, 9):
            ok = pos - d >= start_of
            firsts.append(it[pos[ok] - d])
            seconds.append(it[ok])
        i, j = np.concatenate(firsts), np.concatenate(seconds)
        ok = (i < j) & (scope_ids[i] == scope_ids[j])
        if not ok.any():
            return {}
        pair = np.unique(i[ok].astype(np.int64) * n + j[ok])
        i, j = pair // n, pair % n
        matches = (sigs[i] == sigs[j]).sum(axis=1)
        dup = matches >= self._min_matches
        out: dict[int, list[tuple[int, float]]] = {}
        for a, b, m in zip(i[dup].tolist(), j[dup].tolist(), matches[dup].tolist()):
            out.setdefault(b, []).append((a, estimate(m, self.num_perm)))
        return out

    # ---- state ----------------------------------------------------------------------------
    def _scope_id(self, scope: str) -> int:
        sid = self._scope_ids.get(scope)
        if sid is None:
            sid = len(self._scopes)
            self._scopes.append(scope)
            self._scope_ids[scope] = sid
            self._scope_hashes = np.append(self._scope_hashes, np.uint64(scope_hash(scope)))
        return sid

    def _insert(self, event_ids: list[str], ts: np.ndarray, sigs, scope_ids, keys, serials=None) -> None:
        slots = self._remember(event_ids, ts, sigs, scope_ids, serials)
        if len(slots):
            self._buckets.add(keys.ravel(), np.repeat(slots, self.bands))

    def _remember(self, event_ids: list[str], ts: np.ndarray, sigs, scope_ids, serials=None) -> np.ndarray:
        """Store the signatures (not yet their buckets); returns their slots."""
        if not event_ids:
            return np.zeros(0, dtype=np.int64)
        if serials is None:
            serials = np.arange(self._next_serial, self._next_serial + len(event_ids), dtype=np.int64)
            self._next_serial += len(event_ids)
        slots = self._store.add(sigs, ts, serials, scope_ids, event_ids)
        low = int(ts.min())
        self._min_live_ts = low if self._min_live_ts is None else min(self._min_live_ts, low)
        return slots

    def _remove(self, slots: np.ndarray) -> None:
        if not len(slots):
            return
        store = self._store
        keys = band_keys(store.sig[slots], self._scope_hashes[store.scope[slots]], self.bands, self.rows)
        self._buckets.remove(keys.ravel(), np.repeat(slots, self.bands))
        store.remove(slots)
        live = store.live_slots()
        self._min_live_ts = int(store.ts[live].min()) if len(live) else None

    def _evict_by_age(self) -> None:
        if self.max_age_s is None or self._watermark_ms is None:
            return
        cutoff = self._watermark_ms - int(self.max_age_s * 1000)
        if self._min_live_ts is not None and self._min_live_ts < cutoff:
            live = self._store.live_slots()
            old = live[self._store.ts[live] < cutoff]
            self._remove(old)
            self.counters["evicted_by_age"] += len(old)
        # Remembered verdicts are in arrival order, close to event-time order.
        while self._verdicts:
            first = next(iter(self._verdicts))
            if self._verdicts[first][0] >= cutoff:
                break
            del self._verdicts[first]

    def _evict_by_size(self) -> None:
        excess = len(self._store) - self.max_signatures
        if excess > 0:
            # Evict 1% more than needed, so a full index sorts out its oldest once per 1% of
            # its size instead of on every batch.
            victims = self._store.oldest(excess + self.max_signatures // 100)
            self._remove(victims)
            self.counters["evicted_by_size"] += len(victims)
        while len(self._verdicts) > self.max_signatures:
            del self._verdicts[next(iter(self._verdicts))]

    # ---- used by checkpoint.py ------------------------------------------------------------
    def _restore(self, scopes: list[str], sigs: np.ndarray, ts: np.ndarray, serials: np.ndarray,
                 scope_ids: np.ndarray, event_ids: list[str],
                 verdicts: Iterable[tuple[str, int, str, float]], watermark_ms: int | None,
                 next_serial: int, counters: dict) -> None:
        for s in scopes:
            self._scope_id(s)
        keys = band_keys(sigs, self._scope_hashes[scope_ids], self.bands, self.rows)
        self._insert(event_ids, ts, sigs, scope_ids, keys, serials)
        self._buckets.compact()
        for event_id, t, dup_of, sim in verdicts:
            self._verdicts[event_id] = (t, DedupeVerdict(dup_of, sim))
        self._watermark_ms = watermark_ms
        self._next_serial = next_serial
        self.counters.update({k: v for k, v in counters.items() if k in self.counters})
