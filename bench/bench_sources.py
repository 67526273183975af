"""Benchmark: a usage source through a lookup against the same rows with their customer id.

    python bench/bench_sources.py                       # 100k customers, 10M rows
    python bench/bench_sources.py --customers 20000 --usage-rows 1000000

Makes (once, in bench/data/sources-c<N>-u<M>/) customers, a lookup of three
subscriptions per customer, and the same usage rows twice: by subscription id
(the source goes through the lookup) and by customer id (the plain source).
Then times `lifecycle run --dry-run` on each, in a fresh process, and reports
seconds and peak memory. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
METRICS = """\
metrics:
  uses_30d: {source: s, agg: count, window_days: 30}
  minutes: {source: s, agg: sum, column: minutes}
  users_30d: {source: s, agg: n_unique, column: user_id, window_days: 30}
  last_seen: {source: s, agg: max, column: timestamp}
  last_event: {source: s, agg: last, column: event}
"""
HEAD = "version: 1\nstages: [{name: A}]\ninitial_stage: A\n"
VIA = HEAD + ("sources: {s: {customer_id: {via: subs}}}\n"
              "lookups: {subs: {key: subscription_id, customer_id: customer_id}}\n") + METRICS
PLAIN = HEAD + "sources: {s: {}}\n" + METRICS


def make(folder: Path, customers: int, rows: int, seed: int = 1) -> None:
    if (folder / "done").exists():
        return
    rng = np.random.default_rng(seed)
    (folder / "via").mkdir(parents=True, exist_ok=True)
    (folder / "plain").mkdir(exist_ok=True)
    pl.DataFrame({"customer_id": [f"C{i:07d}" for i in range(customers)]}).write_parquet(
        folder / "customers.parquet")
    subs = customers * 3
    owner = rng.integers(0, customers, subs)
    pl.DataFrame({"subscription_id": [f"S{i:08d}" for i in range(subs)],
                  "customer_id": [f"C{i:07d}" for i in owner]}).write_csv(folder / "subs.csv")
    part = 2_000_000
    for k, start in enumerate(range(0, rows, part)):
        n = min(part, rows - start)
        sub = rng.integers(0, subs, n)
        frame = pl.DataFrame({
            "timestamp": pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 11, 1),
                                           interval="1m", eager=True).sample(
                n, with_replacement=True, seed=seed + k).sort(),
            "sub": sub, "minutes": rng.integers(0, 60, n),
            "user_id": rng.integers(0, 20, n), "event": rng.choice(["a", "b", "c"], n)})
        frame.with_columns(
            pl.format("S{}", pl.col("sub").cast(pl.String).str.zfill(8))
            .alias("subscription_id")).drop("sub").write_parquet(
            folder / "via" / f"part-{k:03d}.parquet")
        frame.with_columns(pl.Series("customer_id", owner[sub]).cast(pl.String)
                           .str.zfill(7).map_elements(lambda v: "C" + v, pl.String)
                           ).drop("sub").write_parquet(
            folder / "plain" / f"part-{k:03d}.parquet")
    (folder / "done").touch()


def timed(args: list[str]) -> tuple[float, float]:
    """Seconds and peak memory (GiB) of ``lifecycle ARGS`` in a new process."""
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lifecycle_cli", *args], capture_output=True,
                          text=True)
    seconds = time.monotonic() - began
    if proc.returncode:
        raise SystemExit(proc.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--usage-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    options = parser.parse_args()
    folder = ROOT / "bench" / "data" / f"sources-c{options.customers}-u{options.usage_rows}"
    make(folder, options.customers, options.usage_rows)
    (folder / "via.yaml").write_text(VIA)
    (folder / "plain.yaml").write_text(PLAIN)
    common = ["run", "--customers", str(folder / "customers.parquet"), "--as-of", "2026-11-01",
              "--dry-run", "--quiet"]
    # the plain source first: ru_maxrss is the largest child so far
    for name, extra in (("plain", ["--usage", f"s={folder / 'plain'}"]),
                        ("via", ["--usage", f"s={folder / 'via'}", "--lookup",
                                 f"subs={folder / 'subs.csv'}"])):
        for _ in range(options.repeat):
            seconds, peak = timed([*common, "--rules", str(folder / f"{name}.yaml"), *extra])
            print(f"{name:6} {seconds:6.1f} s  peak so far {peak:5.2f} GiB", flush=True)


if __name__ == "__main__":
    main()
