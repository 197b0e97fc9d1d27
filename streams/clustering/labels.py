"""Readable names for task clusters: distinctive top terms and a representative example.

Term statistics are bounded counters (class-based TF-IDF): a term ranks high for a cluster
when it is frequent there and rare elsewhere. Counters are pruned to their most frequent
``max_terms`` entries so memory stays bounded on endless streams.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable


def _prune(counter: Counter, keep: int) -> None:
    if len(counter) > 2 * keep:
        for term, _ in counter.most_common()[keep:]:
            del counter[term]


class ClusterTerms:
    def __init__(self, max_terms: int = 200):
        self.max_terms = max_terms
        self.per_cluster: dict[int, Counter] = {}
        self.docs: Counter = Counter()            # in how many items a term appeared
        self.n_docs = 0

    def learn_one(self, cluster_id: int, terms: Iterable[str]) -> None:
        unique = set(terms)
        self.n_docs += 1
        self.docs.update(unique)
        self.per_cluster.setdefault(cluster_id, Counter()).update(unique)
        _prune(self.per_cluster[cluster_id], self.max_terms)
        _prune(self.docs, 20 * self.max_terms)

    def merge(self, keeper: int, absorbed: Iterable[int]) -> None:
        into = self.per_cluster.setdefault(keeper, Counter())
        for cid in absorbed:
            into.update(self.per_cluster.pop(cid, Counter()))
        _prune(into, self.max_terms)

    def top_terms(self, cluster_id: int, k: int = 8) -> list[str]:
        counts = self.per_cluster.get(cluster_id)
        if not counts:
            return []
        total = sum(counts.values()) or 1
        scored = []
        for term, c in counts.items():
            idf = math.log((1 + self.n_docs) / (1 + self.docs.get(term, 0))) + 1.0
            # Markers such as <HOST> describe shape, not topic: rank them after words.
            penalty = 0.5 if term.startswith("<") else 1.0
            scored.append((c / total * idf * penalty, term))
        scored.sort(key=lambda x: (-x[0], x[1]))
        return [t for _, t in scored[:k]]

    def state(self) -> dict:
        return {"n_docs": self.n_docs, "docs": dict(self.docs),
                "per_cluster": {str(k): dict(v) for k, v in self.per_cluster.items()},
                "max_terms": self.max_terms}

    @classmethod
    def from_state(cls, data: dict) -> "ClusterTerms":
        obj = cls(int(data.get("max_terms", 200)))
        obj.n_docs = int(data.get("n_docs", 0))
        obj.docs = Counter(data.get("docs", {}))
        obj.per_cluster = {int(k): Counter(v) for k, v in data.get("per_cluster", {}).items()}
        return obj


def label_text(top_terms: list[str], k: int = 3) -> str:
    words = [t for t in top_terms if not t.startswith("<")][:k] or top_terms[:k]
    return " / ".join(words) if words else "(unlabelled)"
