"""Benchmark `lifecycle backtest` against `lifecycle backfill` over the same days.

    /work/venv/bin/python bench/bench_backtest.py [--customers 100000 --usage-rows 10000000]
        [--days 90] [--repeat 3] [--data bench/data]

The data set is the backfill benchmark's (`lifecycle sample --format parquet`, usage up
to 2026-11-01), plus an outcomes file made here: about 8% of the customers churn on a day
of the range or of the 90 days after it (seeded). The rules are rules/default.yaml with
`Will Churn` predicting `churned` within 90 days. Each command runs --repeat times in a
fresh process, alternating (backfill into a fresh state folder, then backtest with --csv);
prints wall time and peak RSS of each, and the ratio of the medians (target: at most 2).

A benchmark, not a test: it prints, and exits non-zero only when a child fails.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
from pathlib import Path

import polars as pl
from bench_backfill import END, REPO, arguments, lifecycle, measure, sample_data

PREDICTION = """
predictions:
  - {id: will_churn_90d, stage: Will Churn, outcome: churned, horizon_days: 90}
"""


def outcomes(data: Path, start: dt.date, days: int) -> Path:
    """~8% of the customers churned once, on a day from ``start`` to 90 days after the end."""
    path = data / f"outcomes-{start}.parquet"
    if not path.exists():
        ids = pl.read_parquet(data / "customers.parquet", columns=["customer_id"])
        span = days + 90
        hashed = pl.col("customer_id").hash(seed=1)
        ids.filter(hashed % 100 < 8).select(
            "customer_id", pl.lit("churned").alias("outcome"),
            (pl.lit(start) + pl.duration(days=(hashed // 100) % span)).alias("date"),
        ).write_parquet(path)
    return path


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    data = sample_data(args)
    start = END - dt.timedelta(days=args.days - 1)
    events = outcomes(data, start, args.days)
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text((REPO / "rules" / "default.yaml").read_text() + PREDICTION)
        common = ["--customers", str(data / "customers.parquet"), "--usage",
                  str(data / "usage"), "--rules", str(rules), "--from", start.isoformat(),
                  "--to", END.isoformat(), "--quiet"]
        times: dict[str, list[tuple[float, float]]] = {"backfill": [], "backtest": []}
        for i in range(args.repeat):
            state = Path(tmp) / f"state{i}"
            times["backfill"].append(measure([*lifecycle(), "backfill", *common, "--state",
                                              str(state)]))
            times["backtest"].append(measure([*lifecycle(), "backtest", *common, "--outcomes",
                                              str(events), "--csv", str(Path(tmp) / "bt")]))
            print(f"run {i + 1}: " + ", ".join(
                f"{name} {t[-1][0]:.1f} s ({t[-1][1]:,.0f} MiB)" for name, t in times.items()),
                flush=True)
        summary = pl.read_csv(Path(tmp) / "bt" / "summary.csv").row(0, named=True)
    median = {name: statistics.median(w for w, _ in t) for name, t in times.items()}
    rss = {name: statistics.median(r for _, r in t) for name, t in times.items()}
    print(f"{args.days} days x {args.customers:,} customers x {args.usage_rows:,} usage rows:")
    for name in times:
        print(f"  {name}: median {median[name]:.1f} s ({median[name] / args.days:.2f} s/day), "
              f"peak RSS {rss[name]:,.0f} MiB")
    print(f"  backtest / backfill: {median['backtest'] / median['backfill']:.2f}x "
          f"(target: at most 2x); {summary['flags']:,} flags, {summary['outcomes']:,} "
          "outcomes scored")


if __name__ == "__main__":
    main()
