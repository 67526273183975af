"""Benchmark `lifecycle run --engine duckdb` against `--engine polars` and the hand-written
DuckDB query (bench/duckdb_rules.sql) on the same data.

    /work/venv/bin/python bench/bench_engines.py [--customers 1000000 --usage-rows 50000000]
        [--repeat 3] [--data bench/data]

The data set is bench_run.py's (DATA/c<N>-u<M>-s<seed>-<as-of>/: customers.parquet and a
usage/ folder of Parquet parts, made once with `lifecycle sample`). The three are run
alternately, --repeat times each, every run in a fresh process; the medians of wall time
and peak RSS are printed with the ratios. The target: `--engine duckdb` within 1.2x of the
hand-written query. `lifecycle run` does everything a run does (reading, metrics, hops,
CTAs, writing four Parquet files); the hand-written query computes the stages only.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_run import (  # noqa: E402
    REPO,
    SQL_PATH,
    dataset_arguments,
    fmt_mib,
    lifecycle_command,
    measured,
    sample_dataset,
)


def main(argv: list[str] | None = None) -> int:
    args = dataset_arguments(__doc__.split("\n\n")[0], customers=1_000_000,
                             usage_rows=50_000_000, repeat=3).parse_args(argv)

    cli, env = lifecycle_command()
    data = sample_dataset(args, cli, env)
    if data is None:
        return 1
    customers, usage = data / "customers.parquet", data / "usage"
    work = Path(tempfile.mkdtemp(prefix="lifecycle-bench-engines-"))
    runs: dict[str, list[tuple[float, float]]] = {"polars": [], "duckdb": [], "hand": []}
    print(f"\n{'run':>3}  {'what':<22} {'wall s':>8} {'peak RSS MiB':>13}")
    for i in range(1, args.repeat + 1):
        for what in ("polars", "duckdb", "hand"):
            if what == "hand":
                cmd = [sys.executable, str(REPO / "bench" / "bench_run.py"), "_duckdb",
                       str(SQL_PATH), str(customers), str(usage / "*.parquet"), args.as_of,
                       str(work / f"hand-{i}.parquet")]
            else:
                out = work / f"{what}-{i}"
                cmd = [*cli, "run", "--customers", str(customers), "--usage", str(usage),
                       "--rules", str(args.rules), "--as-of", args.as_of, "--out", str(out),
                       "--format", "parquet", "--engine", what, "--quiet"]
            wall, rss, rc, err = measured(cmd, env=env)
            label = {"polars": "run --engine polars", "duckdb": "run --engine duckdb",
                     "hand": "duckdb_rules.sql"}[what]
            if rc != 0:
                print(f"{i:>3}  {label:<22} FAILED (exit {rc})\n{err}", file=sys.stderr)
                return 1
            runs[what].append((wall, rss))
            print(f"{i:>3}  {label:<22} {wall:>8.2f} {fmt_mib(rss):>13}", flush=True)
    print()
    med = {k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v))
           for k, v in runs.items()}
    for k, (w, r) in med.items():
        print(f"median {k:<8} {w:8.2f} s  {fmt_mib(r):>7} MiB")
    ratio = med["duckdb"][0] / med["hand"][0]
    print(f"run --engine duckdb / hand-written: {ratio:.2f}x; "
          f"run --engine polars / hand-written: {med['polars'][0] / med['hand'][0]:.2f}x")
    same = _same_stages(work / "polars-1" / "customers.parquet",
                        work / "duckdb-1" / "customers.parquet")
    print(f"polars and duckdb outputs: customers.parquet {'identical' if same else 'DIFFER'}")
    if args.json:
        args.json.write_text(json.dumps({"median": med, "ratio": ratio,
                                         "customers": args.customers,
                                         "usage_rows": args.usage_rows}, indent=2) + "\n")
    return 0 if same else 1


def _same_stages(a: Path, b: Path) -> bool:
    import polars as pl

    return pl.read_parquet(a).equals(pl.read_parquet(b))


if __name__ == "__main__":
    sys.exit(main())
