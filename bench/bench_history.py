"""Benchmark: a nightly run's cost does not grow with the state's history.

    /work/venv/bin/python bench/bench_history.py [--customers 20000 --usage-rows 2000000]
        [--histories 30,365] [--repeat 3] [--data bench/data]

Makes the data set once with `lifecycle sample --format parquet` (usage up to 2026-11-01),
then for each history length H builds a state with `lifecycle backfill` over the H days
before 2026-11-01, and times the next nightly run, `lifecycle run --state S --as-of
2026-11-01` (outputs, CTAs and state written), --repeat times, each on a fresh copy of the
state and in a fresh process. It prints the backfill's time and the state's size, then
each history's median nightly wall time and peak RSS.

A benchmark, not a test: it prints, and exits non-zero only when a child fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backfill import END, REPO, lifecycle, measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--usage-rows", type=int, default=2_000_000)
    parser.add_argument("--histories", default="30,365")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=REPO / "bench" / "data")
    args = parser.parse_args()
    data = args.data / f"bf-c{args.customers}-u{args.usage_rows}"
    if not (data / "customers.parquet").exists():
        subprocess.run([*lifecycle(), "sample", "--customers", str(args.customers),
                        "--usage-rows", str(args.usage_rows), "--seed", "1", "--format",
                        "parquet", "--as-of", END.isoformat(), "--out", str(data)], check=True)
    common = ["--customers", str(data / "customers.parquet"), "--usage", str(data / "usage"),
              "--rules", str(REPO / "rules" / "default.yaml")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for history in [int(h) for h in args.histories.split(",")]:
            state = Path(tmp) / f"state-{history}"
            first = END - dt.timedelta(days=history)
            wall, _ = measure([*lifecycle(), "backfill", *common, "--from", first.isoformat(),
                               "--to", (END - dt.timedelta(days=1)).isoformat(),
                               "--state", str(state), "--quiet"])
            size = sum(p.stat().st_size for p in state.rglob("*") if p.is_file())
            print(f"{history} days of history: backfill {wall:.1f} s, state "
                  f"{size / 2**20:.1f} MiB", flush=True)
            walls, rsss = [], []
            for i in range(args.repeat):
                copy = Path(tmp) / "copy"
                shutil.copytree(state, copy)
                wall, rss = measure([*lifecycle(), "run", *common, "--as-of", END.isoformat(),
                                     "--state", str(copy), "--out", str(Path(tmp) / "out"),
                                     "--format", "parquet", "--quiet"])
                shutil.rmtree(copy)
                walls.append(wall)
                rsss.append(rss)
                print(f"  nightly run {i + 1}: {wall:.2f} s, peak RSS {rss:,.0f} MiB", flush=True)
            rows.append((history, statistics.median(walls), statistics.median(rsss)))
    print(f"\nnightly `run --state` after H days ({args.customers:,} customers, "
          f"{args.usage_rows:,} usage rows), median of {args.repeat}:")
    for history, wall, rss in rows:
        print(f"  H={history:>4}: {wall:.2f} s, peak RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
