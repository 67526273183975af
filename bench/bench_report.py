"""Benchmark `lifecycle report` over a 90-day state of 100k customers.

    /work/venv/bin/python bench/bench_report.py [--customers 100000 --usage-rows 10000000]
        [--days 90] [--repeat 3] [--data bench/data]

Makes the data set (`lifecycle sample`) and the state (`lifecycle backfill` of the last
--days days up to 2026-11-01) once, under --data, then runs, --repeat times, each in a
fresh process: `lifecycle report --state` with the terminal tables only, and with
--html, --xlsx and --csv as well. Prints the median wall time and peak RSS of each.

A benchmark, not a test: it prints, and exits non-zero only when a child fails.
"""

from __future__ import annotations

import datetime as dt
import statistics
import subprocess
import tempfile

from bench_backfill import END, REPO, arguments, lifecycle, measure, sample_data


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    data = sample_data(args)
    rules = REPO / "rules" / "default.yaml"
    customers = data / "customers.parquet"
    state = data / f"state-{args.days}d"
    if not (state / "state.json").exists():
        start = END - dt.timedelta(days=args.days - 1)
        print(f"backfilling {state} ...", flush=True)
        subprocess.run([*lifecycle(), "backfill", "--customers", str(customers), "--usage",
                        str(data / "usage"), "--rules", str(rules), "--from", start.isoformat(),
                        "--to", END.isoformat(), "--state", str(state), "--quiet"], check=True)
    report = [*lifecycle(), "report", "--state", str(state), "--rules", str(rules),
              "--customers", str(customers)]
    print(f"lifecycle report over {args.days} days x {args.customers:,} customers "
          f"(median of {args.repeat})")
    for label, extra in (("terminal tables", []), ("+ html, xlsx, csv", ["files"])):
        walls, rsss = [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                files = ["--html", f"{tmp}/r.html", "--xlsx", f"{tmp}/r.xlsx", "--csv",
                         f"{tmp}/csv", "--quiet"] if extra else []
                wall, rss = measure([*report, *files])
            walls.append(wall)
            rsss.append(rss)
        print(f"  {label:18} {statistics.median(walls):6.2f} s  "
              f"{statistics.median(rsss):7,.0f} MiB peak   (runs: "
              + ", ".join(f"{w:.2f}" for w in walls) + ")")


if __name__ == "__main__":
    main()
