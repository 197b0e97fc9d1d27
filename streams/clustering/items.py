"""The records the clustering stage takes and gives (plain data, no behaviour)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClusterItem:
    """One curated (already redacted) event, as the cluster agent hands it over."""

    event_id: str
    prompt: str
    response: str = ""
    tool_calls: str | None = None
    ts_ms: int = 0


@dataclass(frozen=True)
class Assignment:
    """The task cluster an item was put in. cluster_id is None while the item sits in a
    provisional group that has not yet reached the minimum size of a task cluster."""

    cluster_id: int | None
    model_version: int
    is_new_cluster: bool = False
    # The prompt's content terms (skeleton words): DriftMonitor's vocabulary signature.
    terms: frozenset[str] = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class Label:
    """A human-readable name for a task cluster."""

    cluster_id: int
    label: str
    top_terms: tuple[str, ...] = ()
    example: str = ""
    size: int = 0
