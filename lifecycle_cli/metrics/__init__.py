"""Per-customer metrics from the usage exports: one streaming, batched pass for a run
(`compute`), and day-by-day partial aggregates for a backfill (`replay`)."""
