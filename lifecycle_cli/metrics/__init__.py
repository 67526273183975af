"""Per-customer metrics from the usage exports: one streaming, batched pass for a run
(`compute`), and day-by-day partial aggregates for a backfill (`replay`)."""

from .compute import MetricsResult, compute_metrics, metric_columns
from .replay import MetricsReplay

__all__ = ["MetricsReplay", "MetricsResult", "compute_metrics", "metric_columns"]
