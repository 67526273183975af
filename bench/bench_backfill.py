"""Benchmark `lifecycle backfill`: 90 days x 100k customers x 10M usage rows.

    /work/venv/bin/python bench/bench_backfill.py [--customers 100000 --usage-rows 10000000]
        [--days 90] [--repeat 3] [--data bench/data] [--engine polars|duckdb]

Makes the data set once with `lifecycle sample --format parquet` (usage spans about
four months up to 2026-11-01), then runs `lifecycle backfill` for the last --days days
into a fresh state folder, --repeat times, each in a fresh process, and prints the
wall time, the peak RSS and the per-day time. A second line times `lifecycle run
--state` for one day on the same data, for comparison.

A benchmark, not a test: it prints, and exits non-zero only when a child fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIME_BIN = "/usr/bin/time"
END = dt.date(2026, 11, 1)


def lifecycle() -> list[str]:
    return [sys.executable, "-m", "lifecycle_cli"]


def measure(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        command = [TIME_BIN, "-f", "%M", "-o", stats.name, *args] if os.path.exists(
            TIME_BIN) else args
        started = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True)
        wall = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr}")
        text = Path(stats.name).read_text().strip()
        rss = int(text.splitlines()[-1]) / 1024 if text else float("nan")
    return wall, rss


def arguments(description: str, *, engine: bool = False) -> argparse.Namespace:
    """The options every benchmark on the backfill's data set takes (``engine``: and
    ``--engine``)."""
    parser = argparse.ArgumentParser(description=description)
    if engine:
        parser.add_argument("--engine", default="polars", help="polars (default) or duckdb")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--usage-rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=REPO / "bench" / "data")
    return parser.parse_args()


def sample_data(args: argparse.Namespace) -> Path:
    """The data set (customers.parquet, usage/), made once with `lifecycle sample`."""
    data = args.data / f"bf-c{args.customers}-u{args.usage_rows}"
    if not (data / "customers.parquet").exists():
        print(f"making {data} ...", flush=True)
        subprocess.run([*lifecycle(), "sample", "--customers", str(args.customers),
                        "--usage-rows", str(args.usage_rows), "--seed", "1", "--format",
                        "parquet", "--as-of", END.isoformat(), "--out", str(data)], check=True)
    return data


def main() -> None:
    args = arguments(__doc__.splitlines()[0], engine=True)
    data = sample_data(args)
    start = END - dt.timedelta(days=args.days - 1)
    rules = REPO / "rules" / "default.yaml"
    common = ["--customers", str(data / "customers.parquet"), "--usage", str(data / "usage"),
              "--rules", str(rules), "--engine", args.engine]
    walls, rsss = [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            wall, rss = measure([*lifecycle(), "backfill", *common, "--from", start.isoformat(),
                                 "--to", END.isoformat(), "--state", str(state), "--quiet"])
            size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
            shutil.rmtree(state)
        walls.append(wall)
        rsss.append(rss)
        print(f"backfill run {i + 1}: {wall:.1f} s, peak RSS {rss:,.0f} MiB, "
              f"state {size / 2**20:.1f} MiB", flush=True)
    wall = statistics.median(walls)
    print(f"backfill --engine {args.engine} {args.days} days x {args.customers:,} "
          f"customers x {args.usage_rows:,} usage rows: median {wall:.1f} s "
          f"({wall / args.days:.2f} s/day), "
          f"peak RSS {statistics.median(rsss):,.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        one, rss = measure([*lifecycle(), "run", *common, "--as-of", END.isoformat(),
                            "--state", str(Path(tmp) / "state"), "--out", str(Path(tmp) / "o"),
                            "--format", "parquet", "--quiet"])
    print(f"one nightly run --state for comparison: {one:.1f} s, peak RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
