"""The ledger's pure logic: tumbling metric windows per (tenant, cluster, model) with a
mergeable latency sketch, format-error detection and regret against the cluster's best model."""
from streams.metrics.baseline import ClusterBaseline, Reference, regret, wilson_lower
from streams.metrics.format_errors import is_format_error
from streams.metrics.sketch import GAMMA, RELATIVE_ACCURACY, LatencySketch, bucket_index, bucket_value
from streams.metrics.windows import UNCLUSTERED, WindowAggregator, window_id

__all__ = ["ClusterBaseline", "Reference", "regret", "wilson_lower", "is_format_error", "GAMMA", "RELATIVE_ACCURACY",
           "LatencySketch", "bucket_index", "bucket_value", "UNCLUSTERED", "WindowAggregator", "window_id"]
