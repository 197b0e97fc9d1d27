"""Near-duplicate removal (S2 curation): MinHash-LSH over normalised word shingles, scoped per
(tenant, task hint), bounded, idempotent on event_id and checkpointable. Pure logic, no I/O.

    index = DedupeIndex(threshold=0.85, num_perm=128, max_signatures=1_000_000, max_age_s=30 * 86400)
    verdicts = index.check_batch([DedupeItem(event_id, scope_key(tenant, task_hint), text, ts_ms), ...])
    blob = index.to_bytes();  index = DedupeIndex.from_bytes(blob)

See docs/dedupe.md.
"""
from .checkpoint import CheckpointError, FORMAT_VERSION
from .index import UNIQUE, DedupeIndex, DedupeItem, DedupeVerdict, scope_key
from .minhash import SIGNATURE_SCHEME, MinHasher
from .normalise import jaccard, shingles, tokens

__all__ = ["DedupeIndex", "DedupeItem", "DedupeVerdict", "UNIQUE", "scope_key", "MinHasher",
           "CheckpointError", "FORMAT_VERSION", "SIGNATURE_SCHEME", "tokens", "shingles", "jaccard"]
