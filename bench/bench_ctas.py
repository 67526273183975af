"""What CTAs cost in a run: the CTA step alone, with and without a state's history.

Runs on the data set of bench_run.py (made there; default 1M customers, 50M usage
rows). For each repeat it prepares the day once (read, metrics, decide), then times
`decide_ctas` (the CTA step of a day: triggers, dedupe against the history,
auto-close, tasks):

- ``first run``: no history (a run without a state);
- ``next day``: the history of the first run's CTAs, so that every open CTA is
  checked for closing and every trigger is deduplicated.

Usage: python bench/bench_ctas.py [--customers N --usage-rows M] [--repeat R]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import polars as pl

from lifecycle_cli import load, load_rules
from lifecycle_cli.columns import ROW
from lifecycle_cli.ctas.decide import decide_ctas
from lifecycle_cli.day.pipeline import prepare
from lifecycle_cli.engine.builtins import final_values
from lifecycle_cli.engine.decide import decide

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--usage-rows", type=int, default=50_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "data")
    ap.add_argument("--rules", type=Path, default=REPO / "rules" / "default.yaml")
    args = ap.parse_args()
    folder = args.data / f"c{args.customers}-u{args.usage_rows}-s1-2026-11-01"
    if not folder.exists():
        raise SystemExit(f"{folder} is missing: make it with bench/bench_run.py first")
    rules = load_rules(args.rules)
    day1, day2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    loaded = load(rules, folder / "customers.parquet", [folder / "usage"])
    prepared = {}
    for day in (day1, day2):
        t = time.perf_counter()
        p = prepare(rules, loaded, day)
        engine = decide(p.state, p.compiled)
        prepared[day] = (final_values(engine.state.sort(ROW), p.compiled), p.compiled,
                         engine.transitions["customer_id"])
        print(f"prepare + decide {day}: {time.perf_counter() - t:.1f} s")

    def ctas(day: dt.date, history: pl.DataFrame | None):  # type: ignore[no-untyped-def]
        final, compiled, entered = prepared[day]
        return decide_ctas(final, compiled, entered_now=entered, history=history)

    first, nxt = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        one = ctas(day1, None)
        first.append(time.perf_counter() - t)
        history = one.ctas.with_columns(one.ctas["customer_id"].cast(str))
        t = time.perf_counter()
        two = ctas(day2, history)
        nxt.append(time.perf_counter() - t)
    print(f"first run: {statistics.median(first):.2f} s (median of {args.repeat}); "
          f"{one.created.height:,} CTAs, {one.tasks.height:,} tasks")
    print(f"next day:  {statistics.median(nxt):.2f} s; history {history.height:,} rows; "
          f"{two.created.height:,} created, {two.closed.height:,} closed")


if __name__ == "__main__":
    main()
