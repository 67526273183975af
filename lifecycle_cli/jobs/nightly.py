"""`lifecycle run` as a library call: one day, guarded, and with a state folder, remembered.

:func:`run` is what the command does. Without a state folder it is one day
(`lifecycle_cli.day.pipeline.run_day`) plus the guards and the outputs; with
one it also:

- takes the state's lock for the whole run;
- starts from what the state holds before the as-of date
  (`lifecycle_cli.state.view.StateView.start`);
- refuses an export that shrank too much, or whose columns changed type;
- records the day's stage table, transitions, hand edits, CTAs, tasks and
  manifest, and what the rules need from it later: metrics, the values that
  ``previous()`` reads, the visits' totals (``history_columns``).

Which as-of dates a state accepts:

- a date after the latest one in the state: the normal nightly case;
- the latest date again: its records are replaced (the run starts from the
  day before it, so a re-run gives the same result and nothing doubles);
- an earlier date only with ``rewind=True``: the run starts from the state
  as it stood before that date, and every later date is dropped from the
  state (re-run them, or `backfill` them, afterwards).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..ctas.decide import CtaResult
from ..day.load import Progress, Tables, UsageSpecs, load, no_progress, schema_of
from ..day.pipeline import Day, run_day
from ..errors import Problem
from ..render.tables import output_paths, write_tables
from ..rules.model import Rules
from ..sql.backend import EngineChoice, catalog_of, connected
from ..state.lock import LockInfo, lock
from ..state.store import KEPT, DayWrite, State, StateError, Transaction, collect_garbage
from ..state.view import StateView
from .guards import Guards, check_moves, check_schema, check_shrink
from .summary import build_summary


@dataclass
class RunResult:
    """A run: its day, its summary, the files it wrote and what it did to the state."""

    day: Day
    summary: dict[str, Any]
    written: list[Path] = field(default_factory=list)
    state_path: Path | None = None
    base: dt.date | None = None  # the state's date the run started from
    replaced: bool = False  # the as-of date was in the state already
    dropped: list[dt.date] = field(default_factory=list)  # dates removed by a rewind
    stale_lock: LockInfo | None = None
    guard_warnings: list[str] = field(default_factory=list)  # schema drift since the last run

    @property
    def warnings(self) -> list[str]:
        """Everything the run warned about: the day's and the guards'."""
        return [*self.day.warnings, *self.guard_warnings]

    @property
    def customers(self) -> pl.DataFrame:
        return self.day.customers

    @property
    def transitions(self) -> pl.DataFrame:
        return self.day.transitions

    @property
    def ctas(self) -> CtaResult:
        return self.day.ctas

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """The outputs: customers, transitions, ctas and tasks."""
        return self.day.tables


def start_date(state: State, as_of: dt.date, *, rewind: bool, dry_run: bool) -> dt.date | None:
    """The state's date a run for ``as_of`` starts from; refuse a past date without rewind."""
    latest = state.latest
    if latest is not None and as_of < latest and not (rewind or dry_run):
        raise StateError(
            Problem(
                f"the state already holds runs up to {latest}; a run for {as_of} would "
                "start from an older state and rewrite history",
                file=str(state.path),
                hint=f"pass --rewind to run {as_of} and drop the state's later dates "
                f"({as_of + dt.timedelta(days=1)} to {latest}), then re-run or backfill them; "
                "or use --dry-run to look without writing",
            )
        )
    return state.before(as_of)


def run(
    rules: Rules,
    customers: str | Path,
    usage: UsageSpecs = (),
    as_of: dt.date | None = None,
    *,
    rules_path: Path | None = None,
    state: str | Path | None = None,
    out: str | Path | None = None,
    fmt: str = "csv",
    dry_run: bool = False,
    rewind: bool = False,
    prefer: str = "export",
    guards: Guards | None = None,
    encoding: str | None = None,
    hash_inputs: bool = False,
    progress: Progress = no_progress,
    command: str = "lifecycle run",
    tables: Tables | None = None,
    engine: EngineChoice | None = None,
) -> RunResult:
    """Apply ``rules`` to the exports for ``as_of`` (default: today), as `lifecycle run` does.

    ``usage``: usage files (``NAME=PATH`` for a named source); ``tables``: lookup and
    attribute tables, the customers' sheet.
    ``state``: a state folder to start from and record the day in (created if needed).
    ``out``: a folder for the outputs (``fmt``: csv, parquet or xlsx). ``dry_run``:
    write nothing. ``hash_inputs``: put the inputs' SHA-256 in the summary (a state's
    manifest always has them; reading big usage files costs time). ``engine``: what
    computes the metrics and the decision (`lifecycle_cli.sql`; default: Polars).
    """
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    guards = guards or Guards()
    as_of = as_of or dt.date.today()
    if state is None:
        loaded = load(rules, customers, usage, encoding=encoding, progress=progress,
                      tables=tables, catalog=catalog_of(engine))
        with connected(engine, rules.timezone) as backend:
            day = run_day(rules, loaded, as_of, progress=progress, backend=backend)
        check_moves(day, guards.max_moves)
        written = _write_outputs(day, out, fmt, dry_run, progress)
        summary = build_summary(day, rules_path, started_at, time.monotonic() - started,
                                written=written, dry_run=dry_run, hash_inputs=hash_inputs)
        return RunResult(day, summary, written)

    state_path = Path(state)
    # a dry run only reads: no lock, nothing created (the index is replaced atomically, so
    # a concurrent run cannot show us half of it)
    with contextlib.nullcontext(None) if dry_run else lock(state_path, command) as stale:
        store = State.open(state_path)
        if not dry_run:
            collect_garbage(store)  # what a killed run left behind
        view = StateView(store)
        base = start_date(store, as_of, rewind=rewind, dry_run=dry_run)
        previous_manifest = view.manifest(base)
        # the guards on the export come before the rules meet it: their messages say more
        loaded = load(rules, customers, usage, encoding=encoding, progress=progress,
                      tables=tables, catalog=catalog_of(engine))
        check_shrink(loaded.typed.height, previous_manifest, guards, Path(customers))
        warnings = check_schema(rules, schema_of(rules, loaded), previous_manifest)
        with connected(engine, rules.timezone) as backend:
            day = run_day(rules, loaded, as_of, view.start(as_of, prefer=prefer, rules=rules),
                          progress=progress, backend=backend)
        warnings += skipped_actions_warning(day)
        check_moves(day, guards.max_moves)
        replaced = as_of in store.days
        dropped = [d for d in store.days if d > as_of] if rewind else []
        planned = [] if dry_run or out is None else list(dict.fromkeys(
            output_paths(day.tables, Path(out), fmt).values()))
        summary = build_summary(
            day, rules_path, started_at, time.monotonic() - started, written=planned,
            dry_run=dry_run, state=state_path, base=base, replaced=replaced, dropped=dropped,
            warnings=warnings)
        written = []
        if not dry_run:
            # the state's files first (invisible until the commit), then the outputs, then
            # the commit: a failure anywhere before the commit leaves the state as it was
            progress("recording the run in the state")
            with Transaction(store) as txn:  # on any error: nothing staged stays behind
                txn.put(day_write(day, summary))
                written = _write_outputs(day, out, fmt, dry_run, progress)
                if rewind:
                    txn.drop_after(as_of)
                txn.commit()
    return RunResult(day, summary, written, state_path, base, replaced, dropped, stale,
                     warnings)


def day_write(day: Day, manifest: dict[str, Any], *, snapshot: bool = True) -> DayWrite:
    """A day's records for the state, with its manifest, the hand actions the state holds
    for the date (kept: applied again after a re-run), the CTAs whose visit ended and, with
    ``snapshot``, the day's CTA snapshot."""
    records = day.records()
    snap = day.cta_snapshot
    return DayWrite(
        as_of=day.as_of,
        stages=records["stages"],
        transitions=records["transitions"],
        overrides=records["overrides"],
        manifest=manifest,
        ctas=records["ctas"],
        tasks=records["tasks"],
        kept={name: records[name] for name in KEPT if name in records},
        cta_actions=day.start.actions,
        cta_archive=snap.archived,
        cta_snapshot=snap.ctas if snapshot else None,
        task_snapshot=snap.tasks if snapshot else None,
    )


def skipped_actions_warning(day: Day) -> list[str]:
    """A re-run (or backfill) of a date with hand actions whose CTA is no longer open."""
    skipped = day.cta_snapshot.skipped if day.start.actions is not None else None
    if skipped is None or skipped.height == 0:
        return []
    shown = ", ".join(f"{a} {c}" for a, c in skipped.select("action", "cta_id").head(3).rows())
    return [f"{skipped.height:,} hand action(s) recorded on {day.as_of} no longer apply: "
            f"their CTA (or task) is not open after this run ({shown}"
            + (" ..." if skipped.height > 3 else "") + ")"]


def _write_outputs(day: Day, out: str | Path | None, fmt: str, dry_run: bool,
                   progress: Progress) -> list[Path]:
    if dry_run or out is None:
        return []
    progress("writing outputs")
    return write_tables(day.tables, out, fmt, inputs=day.input_paths,
                        created=day.as_of, text_columns=[day.id_column, "customer_id"])


__all__ = ["RunResult", "run"]
