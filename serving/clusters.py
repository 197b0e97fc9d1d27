"""Task-cluster assignment at request time, with the clustering model the stream publishes on
the compacted topic `clusters.snapshot` (schema cluster_snapshot.v1): the same code the
stream uses (streams/clustering), so a request lands in the cluster its logged event will.

The newest snapshot wins; older or equal model versions are ignored (a compacted topic may
replay them). Until the first snapshot arrives every request is "unclustered" (None) and goes
to the upstream LLM.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

# (featurizer, state bytes) -> a predictor with predict_one(prompt: str) -> int | None
Loader = Callable[[str, bytes], Any]


def clustering_loader() -> Loader | None:
    """streams.clustering's TaskClusterer.from_bytes, reusing the loaded featurizer (and its
    MiniLM encoder) across snapshots while its config does not change."""
    try:
        from streams.clustering import TaskClusterer
    except ImportError:
        return None
    cache: dict[str, Any] = {}

    def load(featurizer: str, state: bytes) -> Any:
        previous = cache.get("model")
        shared = previous.featurizer if previous is not None and getattr(previous, "featurizer_name", None) == featurizer else None
        try:
            model = TaskClusterer.from_bytes(state, featurizer=shared)
        except ValueError:
            if shared is None:
                raise
            model = TaskClusterer.from_bytes(state)   # the featurizer config changed
        cache["model"] = model
        return model

    return load


class ClusterAssigner:
    def __init__(self, loader: Loader | None = None):
        self._loader = loader
        self._model: Any = None
        self.version: int = -1
        self.featurizer: str = ""
        self.rejected = 0
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._model is not None

    def update(self, record: Mapping[str, Any]) -> bool:
        """Install a ClusterSnapshot record if it is newer; returns whether it was installed."""
        version = int(record["model_version"])
        if version <= self.version:
            return False
        if self._loader is None:
            self._loader = clustering_loader()
        loader = self._loader
        if loader is None:
            log.warning("cluster snapshot v%d received but streams.clustering offers no loader; requests stay unclustered", version)
            self.rejected += 1
            return False
        try:
            model = loader(str(record.get("featurizer", "")), bytes(record["state"]))
        except Exception:
            log.exception("cluster snapshot v%d could not be loaded; keeping v%d", version, self.version)
            self.rejected += 1
            return False
        with self._lock:
            self._model, self.version, self.featurizer = model, version, str(record.get("featurizer", ""))
        return True

    def assign(self, prompt: str) -> int | None:
        model = self._model
        if model is None:
            return None
        cluster = model.predict_one(prompt)
        return None if cluster is None else int(cluster)
