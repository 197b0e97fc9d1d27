"""The decision policy (S4): candidate base models, per-cluster statistics, retrain decisions
and content-addressed dataset snapshots. Pure logic except write_snapshot (artifact store)."""
from streams.policy.candidates import (CandidateError, ModelCandidate, load_candidates, select_base_model,
                                       validate_candidates)
from streams.policy.decide import (Decision, KnownCommand, PolicyThresholds, RetrainPolicy, Verdict, build_command,
                                   command_id, period_index)
from streams.policy.snapshot import SnapshotError, SnapshotInfo, snapshot_bytes, split_of, write_snapshot
from streams.policy.stats import ClusterStats, ClusterStatsTracker, DriftSignal, is_trainable

__all__ = ["CandidateError", "ModelCandidate", "load_candidates", "select_base_model", "validate_candidates",
           "Decision", "KnownCommand", "PolicyThresholds", "RetrainPolicy", "Verdict", "build_command", "command_id",
           "period_index", "SnapshotError", "SnapshotInfo", "snapshot_bytes", "split_of", "write_snapshot",
           "ClusterStats", "ClusterStatsTracker", "DriftSignal", "is_trainable"]
