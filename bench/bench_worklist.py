"""The worklist and a nightly run's CTA read over a long CTA history, before and after the
CTA snapshot.

Builds a state folder with 1M customers and a year (and a month) of CTA history, then
times, each in a fresh process (Python start and imports included):

- ``lifecycle ctas --state S --owner X --overdue`` (the table on standard output), and the
  same with ``--stdout`` (CSV: the read without the table's layout);
- the CTA read of a nightly run: ``StateView.start(next day)`` (the stage table and the
  CTAs the run starts from), and ``StateView.ctas(latest)`` alone;

with this worktree's code ("after") and with the code of ``--before`` ("before", taken
with ``git archive`` into ``bench/data/code-<commit>``).

The history is synthetic (real runs would take hours at this size): the first date gets
the CTAs a first run of the default rules gives 1M customers (about 44% of them: 437k
CTAs, 900k tasks, the default rules' names, types, playbooks and due dates), and every
later date closes ``--per-day`` open CTAs (stage exit) and creates ``--per-day`` new ones
with their tasks. Each date is written with the library's own `Transaction`, so the files
are what runs write; the stage table is the full 1M rows on the last two dates and empty
before (nothing here reads older stage tables). The snapshot of the last two dates is
what a nightly run would have written: `StateView.snapshot` rebuilt from the events.

Usage: python bench/bench_worklist.py [--customers N] [--per-day K] [--months 1,12]
       [--repeat R] [--before COMMIT]
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
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
TIME_BIN = "/usr/bin/time"
BEFORE = "04fccb8"  # the last commit before the CTA snapshot
FIRST = dt.date(2025, 11, 2)
OWNERS = 200
SHARE_WITH_CTAS = 0.437  # what a first run of the default rules gives bench_run.py's data


def build_state(folder: Path, customers: int, days: int, per_day: int, seed: int) -> None:
    """A state with ``days`` dates of synthetic CTA history (see the module's docstring)."""
    from lifecycle_cli import load_rules
    from lifecycle_cli.columns import CTA_SCHEMA, STAGE_TABLE_SCHEMA, TASK_SCHEMA
    from lifecycle_cli.ctas import snapshot
    from lifecycle_cli.state.store import DayWrite, State, Transaction
    from lifecycle_cli.state.view import StateView

    rules = load_rules(REPO / "rules" / "default.yaml")
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:07d}" for i in range(1, customers + 1)])
    owners = np.array([f"CSM {i:03d}" for i in range(OWNERS)])
    rule_rows = pl.DataFrame({
        "rule": list(range(len(rules.ctas))),
        "rule_id": [c.id for c in rules.ctas], "name": [c.name for c in rules.ctas],
        "type": [c.type for c in rules.ctas], "priority": [str(c.priority) for c in rules.ctas],
        "stage": [c.stage or "Adopting" for c in rules.ctas],
        "due_days": [c.due_days for c in rules.ctas],
    })
    playbook = pl.DataFrame([
        {"rule": i, "seq": seq, "task": t.task, "task_days": t.due_days}
        for i, c in enumerate(rules.ctas)
        for seq, t in enumerate(rules.playbooks.get(c.playbook or "", []), start=1)
    ])

    def created(day: dt.date, n: int, age: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        who = rng.integers(0, customers, n)
        frame = pl.DataFrame({
            "customer": who, "rule": rng.integers(0, len(rules.ctas), n),
            "entered_ago": rng.integers(0, age + 1, n),
        }).join(rule_rows, on="rule", how="left").with_columns(
            (pl.lit(day) - pl.duration(days=pl.col("entered_ago"))).alias("stage_entered_at"),
            pl.Series("customer_id", ids[who]),
            pl.Series("owner", owners[who % OWNERS]),
        ).with_columns(
            pl.concat_str([pl.col("rule_id"), pl.col("customer_id"), pl.col("stage"),
                           pl.col("stage_entered_at").dt.to_string("%Y-%m-%d")], separator=":")
            .alias("cta_id"),
        ).unique("cta_id", keep="first", maintain_order=True)
        ctas = frame.select(
            pl.lit(day).alias("as_of"), "cta_id", "rule_id", "customer_id", "name", "type",
            "priority", "stage", "owner", pl.lit(day).alias("created_on"),
            (pl.lit(day) + pl.duration(days=pl.col("due_days"))).alias("due_on"),
            pl.concat_str([pl.lit("stage="), pl.col("stage"), pl.lit("; stage_entered_at="),
                           pl.col("stage_entered_at").dt.to_string("%Y-%m-%d")]).alias("reason"),
            pl.lit("open").alias("status"), pl.lit(None, dtype=pl.Date).alias("closed_on"),
            pl.lit(None, dtype=pl.String).alias("close_reason"), "stage_entered_at",
            pl.concat_str([pl.lit("Customer "), pl.col("customer_id")]).alias("customer_name"),
        )
        tasks = frame.join(playbook, on="rule").sort("cta_id", "seq").select(
            "cta_id", "customer_id", "seq", "task", "owner",
            (pl.lit(day) + pl.duration(days=pl.col("task_days"))).alias("due_on"))
        schema = {k: v for k, v in CTA_SCHEMA.items() if k in ctas.columns}
        return (ctas.select(pl.col(c).cast(t) for c, t in schema.items()),
                tasks.select(pl.col(c).cast(t) for c, t in TASK_SCHEMA.items()))

    folder.mkdir(parents=True)
    state = State.open(folder)
    txn = Transaction(state)
    empty_stages = pl.DataFrame(schema=STAGE_TABLE_SCHEMA)
    stage_table = pl.DataFrame({
        "customer_id": ids, "stage": rng.choice(["Onboarding", "Launched", "Adopting"],
                                                customers),
    }).with_columns(pl.lit(FIRST).alias("stage_entered_at"), pl.lit(FIRST).alias("last_seen"),
                    pl.lit(None, dtype=pl.String).alias("export_stage"),
                    pl.lit(None, dtype=pl.Date).alias("export_entered_at"))
    open_rows = pl.DataFrame()
    started = time.perf_counter()
    for i in range(days):
        day = FIRST + dt.timedelta(days=i)
        if i == 0:
            events, tasks = created(day, int(customers * SHARE_WITH_CTAS), 120)
        else:
            closing = rng.choice(open_rows.height, min(per_day, open_rows.height),
                                 replace=False)
            gone = open_rows[np.sort(closing)].with_columns(
                pl.lit(day).alias("as_of"), pl.lit("closed").alias("status"),
                pl.lit(day).alias("closed_on"),
                pl.concat_str([pl.lit("stage exit: "), pl.col("stage"),
                               pl.lit(" → Renewal")]).alias("close_reason"))
            open_rows = open_rows.with_row_index("__i").filter(
                ~pl.col("__i").is_in(closing)).drop("__i")
            new, tasks = created(day, per_day, 0)
            new = new.join(open_rows.select("cta_id"), on="cta_id", how="anti")
            events = pl.concat([gone, new])
        open_rows = pl.concat([open_rows, events.filter(pl.col("status") == "open")]) \
            if open_rows.height else events
        last = i >= days - 2
        txn.put(DayWrite(as_of=day, stages=stage_table if last else empty_stages,
                         transitions=pl.DataFrame({"as_of": [day]}).head(0),
                         overrides=pl.DataFrame({"as_of": [day]}).head(0),
                         manifest={"as_of": day.isoformat(), "synthetic": True},
                         ctas=events, tasks=tasks))
    txn.commit()
    print(f"  {days} dates of events in {time.perf_counter() - started:.0f} s; "
          f"{open_rows.height:,} CTAs open at the end", flush=True)
    # what the first two nightly runs of this version write on a state of an older one: the
    # first rebuilds every CTA from the events, keeps the current ones in its snapshot and
    # archives the others; the second carries the first's snapshot over its own events
    view = StateView.open(folder)
    snap = None
    for day in view.days[-2:]:
        started = time.perf_counter()
        stages = view.stages(day)
        if snap is None:
            snap = snapshot.after(view.snapshot(day), view.history("ctas").head(0), None, None,
                                  day, stages=stages)
        else:
            snap = snapshot.after(snap, view.history("ctas", day, day),
                                  view.history("tasks", day, day), None, day, stages=stages)
        txn = Transaction(State.open(folder))
        txn.put_tables(day, {"cta_snapshot": snap.ctas, "task_snapshot": snap.tasks,
                             "cta_archive": snap.archived})
        txn.commit()
        print(f"  snapshot of {day}: {snap.ctas.height:,} CTAs, {snap.tasks.height:,} open "
              f"tasks, {snap.archived.height:,} archived "
              f"({time.perf_counter() - started:.0f} s)", flush=True)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system: what a busy machine changes less) and peak
    RSS (MiB) of one child process (``/usr/bin/time``), and its standard output."""
    if not os.access(TIME_BIN, os.X_OK):
        sys.exit(f"{TIME_BIN} is missing (apt-get install time)")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        full = [TIME_BIN, "-f", "%e %U %S %M", "-o", stats.name, *cmd]
        env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "160"}
        proc = subprocess.run(full, capture_output=True, text=True, cwd=cwd, env=env)
        if proc.returncode != 0:
            sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
        wall, user, system, rss = Path(stats.name).read_text().split()[-4:]
    return float(wall), float(user) + float(system), int(rss) / 1024, proc.stdout


READ = """
import datetime as dt, json, sys, time
import lifecycle_cli
from lifecycle_cli.state.view import StateView
view = StateView.open(sys.argv[1])
day = view.latest
facts = {"code": lifecycle_cli.__file__}
began = time.perf_counter()
if sys.argv[2] == "ctas":  # each CTA's latest row: what the report reads
    facts["ctas"] = view.ctas(day).height
    facts["seconds"] = time.perf_counter() - began
else:  # what a nightly run for the next date starts from
    start = view.start(day + dt.timedelta(days=1))
    facts["seconds"] = time.perf_counter() - began
    facts["start_ctas"] = 0 if start.ctas is None else start.ctas.height
    try:  # what this version adds to a night: the next snapshot, carried and written
        from lifecycle_cli.ctas import snapshot
        from lifecycle_cli.state.store import _table_bytes
    except ImportError:
        facts["write_s"] = 0.0
    else:
        began = time.perf_counter()
        nxt = snapshot.after(snapshot.make(start.ctas, start.tasks),
                             view.history("ctas", day, day).head(0), None, None,
                             day + dt.timedelta(days=1), stages=start.stages)
        for table, frame in (("cta_snapshot", nxt.ctas), ("task_snapshot", nxt.tasks),
                             ("cta_archive", nxt.archived)):
            _table_bytes(table, frame)
        facts["write_s"] = time.perf_counter() - began
print(json.dumps(facts))
"""


def code_of(commit: str, data: Path) -> Path:
    """The package as it was at ``commit``, for the "before" runs."""
    sha = subprocess.run(["git", "rev-parse", "--short", commit], capture_output=True,
                         text=True, cwd=REPO, check=True).stdout.strip()
    folder = data / f"code-{sha}"
    if not (folder / "lifecycle_cli").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "lifecycle_cli"], cwd=REPO,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--per-day", type=int, default=10_000)
    ap.add_argument("--months", default="1,12")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--before", default=BEFORE, help="the commit to compare with")
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "data")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    args = ap.parse_args()
    codes = {"before": code_of(args.before, args.data), "after": REPO}
    results = []
    for months in (int(m) for m in args.months.split(",")):
        days = 365 if months == 12 else months * 30
        state = args.data / f"ctas2-c{args.customers}-d{days}-k{args.per_day}-s{args.seed}"
        if not (state / "state.json").exists():
            print(f"building {state} ...", flush=True)
            shutil.rmtree(state, ignore_errors=True)
            build_state(state, args.customers, days, per_day=args.per_day, seed=args.seed)
        sizes = {t: folder_size(state / t) for t in ("ctas", "tasks", "cta_snapshot",
                                                      "task_snapshot", "cta_archive", "stages")}
        print(f"{months} month(s), {days} dates: state {folder_size(state) / 2**20:,.0f} MiB "
              + ", ".join(f"{t} {n / 2**20:,.1f} MiB" for t, n in sizes.items()), flush=True)
        owner = "CSM 007"
        for label, code in codes.items():
            worklist, piped, reads, alls = [], [], [], []
            command = [sys.executable, "-m", "lifecycle_cli", "ctas", "--state", str(state),
                       "--owner", owner, "--overdue"]
            for _ in range(args.repeat):
                worklist.append(measure(command, code)[:3])
                piped.append(measure([*command, "--stdout"], code)[:3])
                _, _, rss, out = measure([sys.executable, "-c", READ, str(state), "start"], code)
                facts = json.loads(out)
                assert Path(facts["code"]).is_relative_to(code), facts["code"]
                reads.append((facts["seconds"], rss, facts["write_s"]))
                _, _, rss, out = measure([sys.executable, "-c", READ, str(state), "ctas"], code)
                alls.append((json.loads(out)["seconds"], rss))
            row = {
                "months": months, "code": label,
                "worklist_s": statistics.median(w[0] for w in worklist),
                "worklist_cpu_s": statistics.median(w[1] for w in worklist),
                "worklist_mib": statistics.median(w[2] for w in worklist),
                "stdout_s": statistics.median(w[0] for w in piped),
                "stdout_mib": statistics.median(w[2] for w in piped),
                "start_s": statistics.median(r[0] for r in reads),
                "start_mib": statistics.median(r[1] for r in reads),
                "snapshot_write_s": statistics.median(r[2] for r in reads),
                "start_ctas": facts["start_ctas"],
                "ctas_s": statistics.median(a[0] for a in alls),
                "ctas_mib": statistics.median(a[1] for a in alls),
                "state_mib": folder_size(state) / 2**20,
                "sizes_mib": {t: n / 2**20 for t, n in sizes.items()},
                "load": os.getloadavg()[0],
            }
            results.append(row)
            print(f"  {label:6} ctas --owner --overdue {row['worklist_s']:6.2f} s wall "
                  f"{row['worklist_cpu_s']:6.2f} s CPU {row['worklist_mib']:7,.0f} MiB "
                  f"(--stdout {row['stdout_s']:5.2f} s {row['stdout_mib']:6,.0f} MiB) | "
                  f"nightly start() {row['start_s']:6.2f} s {row['start_mib']:7,.0f} MiB "
                  f"({row['start_ctas']:,} CTAs) + next snapshot {row['snapshot_write_s']:5.2f} s"
                  f" | ctas() {row['ctas_s']:5.2f} s {row['ctas_mib']:7,.0f} MiB "
                  f"| load {row['load']:.1f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
