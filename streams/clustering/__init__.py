"""Task discovery (S3): incremental clustering of curated events into task clusters with
stable ids, labels, lineage and checkpoints, plus per-cluster drift detection.

Pure logic, no I/O: the cluster agent (streams/agents) feeds batches and publishes what
comes out. See docs/clustering.md.
"""
from .drift import DriftConfig, DriftMonitor, DriftRecord
from .features import Featurizer, FeaturizerConfig
from .items import Assignment, ClusterItem, Label
from .model import ClustererConfig, TaskClusterer

__all__ = [
    "Assignment", "ClusterItem", "ClustererConfig", "DriftConfig", "DriftMonitor", "DriftRecord", "Featurizer",
    "FeaturizerConfig", "Label", "TaskClusterer",
]
