"""Benchmark `lifecycle run` against the same rules written as one DuckDB query.

    /work/venv/bin/python bench/bench_run.py [--customers 1000000 --usage-rows 50000000]
        [--repeat 3] [--data bench/data]

1. Makes the data set once, in DATA/c<N>-u<M>-s<seed>-<as-of>/ (customers.parquet and a
   usage/ directory of Parquet parts) with `lifecycle sample`, or, while that command does
   not exist, with lifecycle_cli.sample.generate_sample in a child process.
2. Runs `lifecycle run ... --format parquet` and bench/duckdb_rules.sql (DuckDB, writing
   Parquet too) alternately, --repeat times each, every run in a fresh process, and records
   each child's wall time and peak RSS.
3. Prints the medians and the ratio lifecycle / duckdb, and, once, how many customers end
   in a different stage in the two outputs (should be 0).

This is a benchmark, not a test: it prints, and exits non-zero only when a child fails or
the stages disagree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SQL_PATH = Path(__file__).resolve().parent / "duckdb_rules.sql"
TIME_BIN = "/usr/bin/time"


@dataclass
class Measure:
    tool: str
    run: int
    wall_s: float
    peak_rss_mib: float
    ok: bool


# --------------------------------------------------------------------------- children


def _child_duckdb(argv: list[str]) -> int:
    """Child mode: run duckdb_rules.sql over the data and write the result to Parquet."""
    sql_path, customers, usage_glob, as_of, out = argv
    import duckdb

    dt.date.fromisoformat(as_of)  # a date, never SQL text

    def lit(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    sql = Path(sql_path).read_text(encoding="utf-8")
    sql = (
        sql.replace("__CUSTOMERS__", lit(customers))
        .replace("__USAGE__", lit(usage_glob))
        .replace("__AS_OF__", f"DATE {lit(as_of)}")
    )
    con = duckdb.connect()
    con.execute(f"COPY ({sql}) TO {lit(out)} (FORMAT parquet)")
    return 0


def _child_polars(argv: list[str]) -> int:
    """Child mode: the default rules' five metrics as a hand-written streaming Polars job
    (one group-by by the text customer id, the distinct users as distinct pairs), written
    to Parquet. It computes the metrics only, not the stages: that is most of the work."""
    customers, usage, as_of, out = argv
    import polars as pl

    day = dt.date.fromisoformat(as_of)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    start = end - dt.timedelta(days=30)
    csv = usage.endswith(".csv")
    text = {"customer_id": pl.String, "timestamp": pl.String}
    rows = (pl.scan_csv(usage, schema_overrides=text).with_columns(
        pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us"))
        if csv else pl.scan_parquet(usage))
    ts, w = pl.col("timestamp"), pl.col("timestamp") >= start
    rows = rows.filter(ts < end)
    metrics = rows.group_by("customer_id").agg(
        ((pl.col("event") == "login") & w).sum().alias("logins_30d"),
        pl.col("minutes").filter(w).sum().alias("minutes_30d"),
        (pl.col("event") == "training_completed").any().alias("trained"),
        ts.max().alias("last_seen"))
    users = (rows.filter(w).select("customer_id", "user_id").drop_nulls().unique()
             .group_by("customer_id").agg(pl.len().alias("active_users_30d")))
    ids = (pl.scan_csv(customers, schema_overrides={"customer_id": pl.String})
           if customers.endswith(".csv") else pl.scan_parquet(customers)).select("customer_id")
    ids.join(metrics, on="customer_id", how="left").join(
        users, on="customer_id", how="left").sink_parquet(out)
    return 0


def _child_generate(argv: list[str]) -> int:
    """Child mode: the fallback generator, lifecycle_cli.sample.generate_sample."""
    out, customers, usage_rows, seed, as_of = argv
    sys.path.insert(0, str(REPO))
    from lifecycle_cli.sample import generate_sample

    generate_sample(
        Path(out),
        customers=int(customers),
        usage_rows=int(usage_rows),
        seed=int(seed),
        fmt="parquet",
        as_of=dt.date.fromisoformat(as_of),
    )
    return 0


# --------------------------------------------------------------------------- helpers


def measured(cmd: list[str], *, env: dict | None = None) -> tuple[float, float, int, str]:
    """Run cmd in a fresh process: (wall seconds, peak RSS MiB, exit code, stderr tail)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        use_time = os.access(TIME_BIN, os.X_OK)
        full = [TIME_BIN, "-f", "%e %M", "-o", tf.name, *cmd] if use_time else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(
            full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO
        )
        # Read stderr while waiting; os.wait4 gives the child's rusage.
        err = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kib = usage.ru_maxrss
        if use_time:
            text = tf.read().split()
            if len(text) >= 2:
                wall, rss_kib = float(text[-2]), int(text[-1])
    tail = err.decode("utf-8", "replace").strip().splitlines()[-15:]
    return wall, rss_kib / 1024, proc.returncode, "\n".join(tail)


def lifecycle_command() -> tuple[list[str], dict]:
    """How to start the lifecycle CLI: its console script, else the module from the repo."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for exe in (Path(sys.executable).parent / "lifecycle", shutil.which("lifecycle")):
        if exe and Path(exe).is_file() and os.access(exe, os.X_OK):
            return [str(exe)], env
    code = "import sys; from lifecycle_cli.cli import main; sys.argv[0] = 'lifecycle'; main()"
    return [sys.executable, "-c", code], env


def has_command(cmd: list[str], env: dict, sub: str) -> bool:
    try:
        done = subprocess.run(
            [*cmd, sub, "--help"], capture_output=True, env=env, cwd=REPO, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def dataset_arguments(description: str, *, customers: int, usage_rows: int,
                      repeat: int) -> argparse.ArgumentParser:
    """The options of the benches on `sample_dataset`'s data: its size, seed and as-of date,
    where it lives, the rules, the repeats and a JSON file for the measurements."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--customers", type=int, default=customers)
    ap.add_argument("--usage-rows", type=int, default=usage_rows)
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--as-of", default="2026-11-01")
    ap.add_argument("--rules", type=Path, default=REPO / "rules" / "default.yaml")
    ap.add_argument("--json", type=Path, help="also write the measurements to this file")
    return ap


def sample_dataset(args: argparse.Namespace, cli: list[str], env: dict) -> Path | None:
    """The bench data set for ``args`` (--data, --customers, --usage-rows, --seed, --as-of),
    made with `lifecycle sample` (Parquet parts) if it is not there yet; None if that
    failed (the reason is printed)."""
    data = (args.data / f"c{args.customers}-u{args.usage_rows}-s{args.seed}-{args.as_of}"
            ).resolve()
    if data_ready(data):
        return data
    data.parent.mkdir(parents=True, exist_ok=True)
    print(f"data: generating {data} ...", flush=True)
    wall, _, rc, err = measured([*cli, "sample", "--customers", str(args.customers),
                                 "--usage-rows", str(args.usage_rows), "--seed",
                                 str(args.seed), "--format", "parquet", "--as-of",
                                 args.as_of, "--out", str(data)], env=env)
    if rc != 0 or not data_ready(data):
        print(f"data generation failed (exit {rc}):\n{err}", file=sys.stderr)
        return None
    print(f"data: generated in {wall:.1f} s")
    return data


def as_csv(data: Path) -> tuple[Path, Path]:
    """CSV copies of the data set's customers and usage (made once, in data/csv/)."""
    folder = data / "csv"
    customers, usage = folder / "customers.csv", folder / "usage.csv"
    if not usage.exists():
        import polars as pl

        folder.mkdir(exist_ok=True)
        pl.read_parquet(data / "customers.parquet").write_csv(customers)
        pl.scan_parquet(data / "usage" / "*.parquet").sink_csv(
            usage.with_suffix(".tmp"), datetime_format="%Y-%m-%d %H:%M:%S")
        usage.with_suffix(".tmp").rename(usage)
    return customers, usage


def data_ready(d: Path) -> bool:
    usage = d / "usage"
    return (d / "customers.parquet").is_file() and usage.is_dir() and any(usage.glob("*.parquet"))


def fmt_mib(x: float) -> str:
    return f"{x:,.0f}"


def compare_stages(lifecycle_out: Path, duckdb_out: Path) -> tuple[int, int, list[tuple]]:
    """(customers, disagreements, examples) between the two outputs' final stages."""
    import polars as pl

    a = pl.read_parquet(lifecycle_out, columns=["customer_id", "stage"])
    b = pl.read_parquet(duckdb_out, columns=["customer_id", "stage"])
    a = a.with_columns(pl.col("customer_id").cast(pl.String))
    b = b.with_columns(pl.col("customer_id").cast(pl.String))
    j = a.join(b, on="customer_id", how="full", suffix="_duckdb", coalesce=True)
    diff = j.filter(~pl.col("stage").eq_missing(pl.col("stage_duckdb")))
    examples = (
        diff.group_by("stage", "stage_duckdb").len().sort("len", descending=True).head(10).rows()
    )
    return j.height, diff.height, examples


def move_summary(duckdb_out: Path) -> list[tuple[str, int]]:
    import polars as pl

    moves = pl.read_parquet(duckdb_out, columns=["moves"])["moves"].explode().drop_nulls()
    return moves.value_counts(sort=True).rows()


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_duckdb"]:
        return _child_duckdb(argv[1:])
    if argv[:1] == ["_generate"]:
        return _child_generate(argv[1:])
    if argv[:1] == ["_polars"]:
        return _child_polars(argv[1:])

    ap = dataset_arguments(__doc__.split("\n\n")[0], customers=1_000_000,
                           usage_rows=50_000_000, repeat=3)
    ap.add_argument("--skip-lifecycle", action="store_true", help="run the DuckDB query only")
    ap.add_argument("--csv", action="store_true",
                    help="read CSV (customers.csv, usage.csv, made once from the Parquet "
                    "data) with every tool; DuckDB uses read_csv")
    args = ap.parse_args(argv)
    dt.date.fromisoformat(args.as_of)

    data = (args.data / f"c{args.customers}-u{args.usage_rows}-s{args.seed}-{args.as_of}").resolve()
    customers, usage = data / "customers.parquet", data / "usage"
    cli, env = lifecycle_command()
    results: dict = {
        "customers": args.customers,
        "usage_rows": args.usage_rows,
        "as_of": args.as_of,
        "data": str(data),
        "cpus": os.cpu_count(),
        "runs": [],
    }

    # 1. Data.
    if data_ready(data):
        print(f"data: {data} (present)")
    else:
        data.parent.mkdir(parents=True, exist_ok=True)
        if has_command(cli, env, "sample"):
            how = "lifecycle sample"
            cmd = [*cli, "sample", "--customers", str(args.customers)]
            cmd += ["--usage-rows", str(args.usage_rows), "--seed", str(args.seed)]
            cmd += ["--format", "parquet", "--as-of", args.as_of, "--out", str(data)]
        else:
            how = "generate_sample (lifecycle sample is not available yet)"
            cmd = [sys.executable, __file__, "_generate", str(data), str(args.customers)]
            cmd += [str(args.usage_rows), str(args.seed), args.as_of]
        print(f"data: generating {data} with {how} ...", flush=True)
        wall, rss, rc, err = measured(cmd, env=env)
        if rc != 0 or not data_ready(data):
            print(f"data generation failed (exit {rc}):\n{err}", file=sys.stderr)
            return 1
        print(f"data: generated in {wall:.1f} s, peak RSS {fmt_mib(rss)} MiB")
        results["generate"] = {"how": how, "wall_s": wall, "peak_rss_mib": rss}
    parts = sorted(usage.glob("*.parquet"))
    size = sum(p.stat().st_size for p in parts) + customers.stat().st_size
    print(f"data: {len(parts)} usage parts, {size / 2**20:,.0f} MiB on disk")
    usage_glob, sql_path = str(usage / "*.parquet"), SQL_PATH
    if args.csv:
        customers, usage = as_csv(data)
        usage_glob = str(usage)
        sql_path = data / "duckdb_rules_csv.sql"
        sql_path.write_text(SQL_PATH.read_text(encoding="utf-8").replace(
            "read_parquet(", "read_csv("), encoding="utf-8")
        print(f"data: CSV, {usage.stat().st_size / 2**20:,.0f} MiB of usage")

    # 2. Runs.
    run_lifecycle = not args.skip_lifecycle and has_command(cli, env, "run")
    if not run_lifecycle:
        why = "skipped" if args.skip_lifecycle else "unavailable (`lifecycle run` does not run yet)"
        print(f"lifecycle: {why}; timing the DuckDB query only")
    measures: list[Measure] = []
    work = Path(tempfile.mkdtemp(prefix="lifecycle-bench-"))
    last: dict[str, Path] = {}
    try:
        print(f"\n{'run':>3}  {'tool':<10} {'wall s':>8} {'peak RSS MiB':>13}")
        for i in range(1, args.repeat + 1):
            jobs = []
            if run_lifecycle:
                out = work / f"lifecycle-{i}"
                out.mkdir()
                cmd = [*cli, "run", "--customers", str(customers), "--usage", str(usage)]
                cmd += ["--rules", str(args.rules), "--as-of", args.as_of, "--out", str(out)]
                cmd += ["--format", "parquet"]
                jobs.append(("lifecycle", cmd, out / "customers.parquet"))
            out_db = work / f"duckdb-{i}.parquet"
            cmd = [sys.executable, __file__, "_duckdb", str(sql_path), str(customers)]
            cmd += [usage_glob, args.as_of, str(out_db)]
            jobs.append(("duckdb", cmd, out_db))
            out_pl = work / f"polars-{i}.parquet"
            cmd = [sys.executable, __file__, "_polars", str(customers), usage_glob, args.as_of,
                   str(out_pl)]
            jobs.append(("polars", cmd, out_pl))
            for tool, cmd, result in jobs:
                wall, rss, rc, err = measured(cmd, env=env)
                ok = rc == 0 and result.exists()
                measures.append(Measure(tool, i, wall, rss, ok))
                flag = "" if ok else f"  FAILED (exit {rc})"
                print(f"{i:>3}  {tool:<10} {wall:>8.2f} {fmt_mib(rss):>13}{flag}", flush=True)
                if not ok:
                    print(err, file=sys.stderr)
                elif i == 1:
                    last[tool] = result
        results["runs"] = [asdict(m) for m in measures]

        # 3. Summary.
        print()
        med: dict[str, tuple[float, float]] = {}
        for tool in ("lifecycle", "duckdb", "polars"):
            ok = [m for m in measures if m.tool == tool and m.ok]
            if ok:
                wall = statistics.median(m.wall_s for m in ok)
                rss = statistics.median(m.peak_rss_mib for m in ok)
                med[tool] = (wall, rss)
                print(f"median {tool:<10} {wall:8.2f} s  {fmt_mib(rss):>7} MiB  ({len(ok)} runs)")
        results["median"] = {k: {"wall_s": w, "peak_rss_mib": r} for k, (w, r) in med.items()}
        if "lifecycle" in med and "duckdb" in med:
            tr = med["lifecycle"][0] / med["duckdb"][0]
            mr = med["lifecycle"][1] / med["duckdb"][1]
            print(f"ratio lifecycle / duckdb: time {tr:.2f}x, peak memory {mr:.2f}x")
            results["ratio"] = {"wall": tr, "peak_rss": mr}
        if "lifecycle" in med and "polars" in med:
            tr = med["lifecycle"][0] / med["polars"][0]
            print(f"ratio lifecycle / hand-written polars: time {tr:.2f}x")
            results["ratio_polars"] = {"wall": tr}

        status = 0 if all(m.ok for m in measures) else 1
        if "duckdb" in last:
            print("\nmoves on the as-of date (DuckDB), by rule:")
            for rule, n in move_summary(last["duckdb"]):
                print(f"  {rule:<20} {n:>10,}")
        if "lifecycle" in last and "duckdb" in last:
            total, bad, examples = compare_stages(last["lifecycle"], last["duckdb"])
            print(f"\nfinal stages: {bad:,} of {total:,} customers disagree")
            for a, b, n in examples:
                print(f"  lifecycle {a!s:<12} duckdb {b!s:<12} {n:>10,}")
            results["disagreements"] = bad
            status = status or (1 if bad else 0)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
