"""Benchmark `lifecycle run --engine spark` (Spark local) beside `--engine polars`, with the
Spark session's start-up timed apart from the job.

    /work/venv/bin/python bench/bench_spark.py [--customers 100000 --usage-rows 10000000]
        [--master local[2]] [--repeat 1] [--data bench/data] [--json FILE]

1. Makes the data set once, as bench/bench_run.py does (customers.parquet and a usage/
   folder of Parquet parts, with `lifecycle sample`).
2. Runs, each in a fresh process, --repeat times:
   - `lifecycle run --engine polars ... --format parquet`;
   - the Spark job in-process (`python bench/bench_spark.py _spark ...`): the time to start
     the session (`lifecycle_cli.sql.spark.session`), then the job
     (`lifecycle_cli.jobs.nightly.run` with the spark engine) on the running session, then
     the same job again on the warm session;
   - `lifecycle run --engine spark --spark-master MASTER`, the whole command as a user runs
     it (start-up included).
3. Prints the times, and whether the engines' output files are identical (they must be).

A benchmark, not a test: it prints, and exits non-zero only when a child fails or the
outputs differ.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_run import (  # noqa: E402
    dataset_arguments,
    lifecycle_command,
    measured,
    sample_dataset,
)

TABLES = ("customers", "transitions", "ctas", "tasks")


def _child_spark(argv: list[str]) -> int:
    """Child mode: start the session, run the job twice; print the times as JSON."""
    master, customers, usage, rules_path, as_of, out = argv
    started = time.perf_counter()
    sys.path.insert(0, str(REPO))
    import datetime as dt

    from lifecycle_cli.jobs.nightly import run
    from lifecycle_cli.rules.load import load_rules
    from lifecycle_cli.sql import spark
    from lifecycle_cli.sql.backend import EngineChoice

    rules = load_rules(Path(rules_path))
    choice = EngineChoice(name="spark", timezone=rules.timezone, spark_master=master)
    imported = time.perf_counter()
    spark.session(choice)
    session = time.perf_counter()
    times = {"import_s": imported - started, "session_s": session - imported}
    for key, target in (("job_s", out), ("warm_job_s", out + "-warm")):
        begin = time.perf_counter()
        run(rules, customers, [usage], dt.date.fromisoformat(as_of), rules_path=rules_path,
            out=Path(target), fmt="parquet", engine=choice)
        times[key] = time.perf_counter() - begin
    spark.stop()
    print(json.dumps(times))
    return 0


def same_outputs(a: Path, b: Path) -> list[str]:
    """The output tables that differ between two --out folders (Parquet)."""
    import polars as pl

    differ = []
    for table in TABLES:
        x, y = pl.read_parquet(a / f"{table}.parquet"), pl.read_parquet(b / f"{table}.parquet")
        if not x.equals(y):
            differ.append(f"{table} ({x.height} vs {y.height} rows)")
    return differ


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_spark":
        return _child_spark(argv[1:])
    ap = dataset_arguments(__doc__.split("\n\n")[0], customers=100_000,
                           usage_rows=10_000_000, repeat=1)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args(argv)

    cli, env = lifecycle_command()
    data = sample_dataset(args, cli, env)
    if data is None:
        return 1
    customers, usage = data / "customers.parquet", data / "usage"
    print(f"data: {data}; Spark master {args.master}; {os.cpu_count()} CPUs")
    common = ["--customers", str(customers), "--usage", str(usage), "--rules",
              str(args.rules), "--as-of", args.as_of, "--format", "parquet", "--quiet"]
    results: dict = {"customers": args.customers, "usage_rows": args.usage_rows,
                     "master": args.master, "cpus": os.cpu_count(), "runs": []}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            outs = {k: Path(tmp) / f"{k}-{rep}" for k in ("polars", "spark_job", "spark_cli")}
            wall, rss, rc, err = measured([*cli, "run", *common, "--engine", "polars",
                                           "--out", str(outs["polars"])], env=env)
            results["runs"].append({"tool": "polars", "wall_s": wall, "peak_rss_mib": rss})
            print(f"[{rep}] lifecycle run --engine polars: {wall:.1f} s, {rss:,.0f} MiB")
            failed |= rc != 0
            if rc:
                print(err, file=sys.stderr)

            cmd = [sys.executable, __file__, "_spark", args.master, str(customers),
                   str(usage), str(args.rules), args.as_of, str(outs["spark_job"])]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                failed = True
            else:
                times = json.loads(done.stdout.strip().splitlines()[-1])
                results["runs"].append({"tool": "spark (in-process)", **times})
                print(f"[{rep}] spark {args.master}: session start {times['session_s']:.1f} s "
                      f"(imports {times['import_s']:.1f} s), job {times['job_s']:.1f} s, "
                      f"the job again on the warm session {times['warm_job_s']:.1f} s")

            wall, _, rc, err = measured([*cli, "run", *common, "--engine", "spark",
                                         "--spark-master", args.master, "--out",
                                         str(outs["spark_cli"])], env=env)
            results["runs"].append({"tool": "spark (command)", "wall_s": wall})
            print(f"[{rep}] lifecycle run --engine spark --spark-master {args.master}: "
                  f"{wall:.1f} s (start-up included)")
            failed |= rc != 0
            if rc:
                print(err, file=sys.stderr)
            if not failed:
                for other in ("spark_job", "spark_cli"):
                    differ = same_outputs(outs["polars"], outs[other])
                    print(f"[{rep}] outputs polars vs {other}: "
                          + ("identical" if not differ else "DIFFER: " + ", ".join(differ)))
                    failed |= bool(differ)
    for tool in ("polars", "spark (command)"):
        walls = [r["wall_s"] for r in results["runs"] if r["tool"] == tool]
        if walls:
            print(f"median {tool}: {statistics.median(walls):.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
