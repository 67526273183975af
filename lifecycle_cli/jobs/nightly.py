"""Runs with a memory: the state folder, guard rails for cron, and the run summary.

`run_with_state` is what ``lifecycle run`` calls. Without a state folder it is
a plain `run` plus the guards; with one it also:

- takes the state's lock for the whole run;
- starts from the stages the state holds (see `lifecycle_cli.state`);
- refuses an export that shrank too much, or whose columns changed type;
- records the day's transitions, stage table, overrides and manifest.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import BUILTINS, ID, STAGE
from ..ctas.decide import empty as empty_ctas
from ..day.pipeline import RunResult, load, prepare_loaded, result_of, run, schema_of
from ..day.start import stage_table
from ..engine.decide import decide
from ..errors import DataError, LifecycleError, OptionError, Problem
from ..expressions import ExpressionError, parse, referenced_names
from ..files import file_facts
from ..metrics.compute import metric_columns
from ..render.tables import output_paths, write_tables
from ..rules.model import Rules
from ..state.lock import LockInfo, lock
from ..state.store import (
    DayWrite,
    State,
    StateError,
    Transaction,
    collect_garbage,
)
from ..version import __version__

Progress = Callable[[str], None]
DEFAULT_MAX_SHRINK = 0.10


def _noop(_: str) -> None:
    pass


# -- guard rails --------------------------------------------------------------------------


def parse_share(text: str, option: str) -> float:
    """"10%" (or 0.1) as 0.1; an OptionError naming ``option`` for anything else."""
    text = text.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise OptionError(f"{option} takes a share such as 10%, not '{text}'")
    return value


@dataclass(frozen=True)
class MaxMoves:
    """``--max-moves``: a number of customers, or a share of them."""

    count: int | None = None
    share: float | None = None

    @classmethod
    def parse(cls, text: str) -> MaxMoves:
        text = text.strip()
        if text.endswith("%"):
            return cls(share=parse_share(text, "--max-moves"))
        if not text.isdigit():
            raise OptionError(
                f"--max-moves takes a number of customers (500) or a share (5%), not '{text}'"
            )
        return cls(count=int(text))

    def limit(self, customers: int) -> int:
        if self.count is not None:
            return self.count
        return int((self.share or 0) * customers)

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{(self.share or 0) * 100:g}%"


@dataclass
class Guards:
    max_moves: MaxMoves | None = None
    max_shrink: float = DEFAULT_MAX_SHRINK  # share of customers that may vanish between runs
    allow_shrink: bool = False


def check_moves(result: RunResult, max_moves: MaxMoves | None) -> None:
    """Refuse a run that would move more customers than allowed; name the rules behind it.

    Moves are the customers that leave a stage (hop 1 and later); first
    assignments of customers that had no stage are not moves.
    """
    if max_moves is None:
        return
    moved = result.moved_customers
    total = result.customers.height
    limit = max_moves.limit(total)
    if moved <= limit:
        return
    by_rule = (
        result.transitions.filter(pl.col("hop") > 0)
        .group_by("rule_id").agg(pl.col("customer_id").n_unique().alias("n"))
        .sort(["n", "rule_id"], descending=[True, False])
    )
    top = ", ".join(f"{rule} ({n:,})" for rule, n in by_rule.head(5).iter_rows())
    share = f" ({moved / total:.1%} of {total:,})" if total else ""
    raise DataError(
        Problem(
            f"{moved:,} customers would move{share}, more than --max-moves {max_moves} "
            f"allows ({limit:,}); most moves come from: {top}",
            hint="check the export and recent rule edits (`lifecycle diff` compares rule "
            "files); raise --max-moves if the moves are right",
        )
    )


def check_shrink(customers: int, previous: dict[str, Any] | None, guards: Guards,
                 customers_path: Path) -> None:
    """Refuse an export with many fewer customers than the last run's: it may be truncated."""
    if previous is None or guards.allow_shrink:
        return
    before = int(previous.get("rows", {}).get("customers", 0))
    if before == 0 or customers >= before * (1 - guards.max_shrink):
        return
    raise DataError(
        Problem(
            f"the customers export has {customers:,} rows, {1 - customers / before:.1%} fewer "
            f"than the {before:,} of the run for {previous.get('as_of')}; more than the "
            f"{guards.max_shrink:.0%} allowed",
            file=str(customers_path),
            hint="a truncated export would move customers wrongly; check it, or pass "
            "--allow-shrink if customers really left",
        )
    )


def rules_columns(rules: Rules) -> tuple[set[str], set[str]]:
    """The customer and usage columns (rules' names) that the rules read."""
    computed = set(rules.derived) | set(rules.metrics) | set(BUILTINS) | {
        "expected_days", "overdue"}
    customer: set[str] = {ID}
    texts = [t.when for t in rules.transitions] + list(rules.derived.values())
    texts += [c.when for c in rules.ctas if c.when] + [c.close_when for c in rules.ctas
                                                         if c.close_when]
    for text in texts:
        try:
            customer.update(n for n in referenced_names(parse(text)) if n not in computed)
        except ExpressionError:
            continue
    customer.update(c.owner for c in rules.ctas if c.owner)
    if rules.default_owner:
        customer.add(rules.default_owner)
    return customer, set(metric_columns(rules))


def check_schema(rules: Rules, schema: dict[str, dict[str, str]],
                 previous: dict[str, Any] | None) -> list[str]:
    """Compare the exports' columns with the last run's: raise for a change that the rules
    feel (a column they read that vanished or changed type); return warnings for the rest."""
    if previous is None or "schema" not in previous:
        return []
    problems: list[Problem] = []
    warnings: list[str] = []
    read_customer, read_usage = rules_columns(rules)
    external = {
        "customers": {rules.customer_column(c) for c in read_customer},
        "usage": {rules.usage_column(c) for c in read_usage},
    }
    for table, now in schema.items():
        before = previous["schema"].get(table) or {}
        if not now:  # no usage given this time: nothing to compare
            continue
        for column, kind in before.items():
            used = column in external[table]
            if column not in now:
                message = (f"the {table} export no longer has the column '{column}' "
                           f"(it had it in the run for {previous.get('as_of')})")
                if used:
                    problems.append(Problem(message, column=column,
                                            hint="the rules read it; restore it in the export"))
                else:
                    warnings.append(message)
            elif now[column] != kind:
                message = (f"the column '{column}' of the {table} export held {kind} in the run "
                           f"for {previous.get('as_of')} and holds {now[column]} now")
                if used:
                    problems.append(Problem(
                        message, column=column,
                        hint="the rules read it; look for values such as 'N/A', a changed date "
                        "format or a stray text cell in that column"))
                else:
                    warnings.append(message)
    if problems:
        raise DataError(problems)
    return warnings


# -- a run with a state ------------------------------------------------------------------------


@dataclass
class NightlyResult:
    """A run plus what it did to the state and the files it wrote."""

    result: RunResult
    summary: dict[str, Any]
    written: list[Path] = field(default_factory=list)
    state_path: Path | None = None
    base: dt.date | None = None  # the state's date the run started from
    replaced: bool = False  # the as-of date was in the state already
    dropped: list[dt.date] = field(default_factory=list)  # dates removed by a rewind
    stale_lock: LockInfo | None = None
    warnings: list[str] = field(default_factory=list)


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


def run_with_state(
    rules: Rules,
    rules_path: Path | None,
    customers: str | Path,
    usage: Sequence[str | Path] = (),
    as_of: dt.date | None = None,
    *,
    state_dir: str | Path | None = None,
    out: str | Path | None = None,
    fmt: str = "csv",
    dry_run: bool = False,
    rewind: bool = False,
    prefer: str = "export",
    guards: Guards | None = None,
    encoding: str | None = None,
    hash_inputs: bool = True,
    progress: Progress = _noop,
    command: str = "lifecycle run",
) -> NightlyResult:
    """A run as cron runs it: guarded, and with ``state_dir``, remembered.

    ``hash_inputs``: put the inputs' SHA-256 in the summary (always in a state's
    manifest); reading big usage files costs time.
    """
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    guards = guards or Guards()
    as_of = as_of or dt.date.today()
    if state_dir is None:
        result = run(rules, customers, usage, as_of, encoding=encoding, progress=progress)
        check_moves(result, guards.max_moves)
        written = _write_outputs(result, out, fmt, dry_run, progress)
        summary = build_summary(result, rules_path, started_at, time.monotonic() - started,
                                written=written, dry_run=dry_run, hash_inputs=hash_inputs)
        return NightlyResult(result, summary, written)

    state_path = Path(state_dir)
    # a dry run only reads: no lock, nothing created (the index is replaced atomically, so
    # a concurrent run cannot show us half of it)
    with contextlib.nullcontext(None) if dry_run else lock(state_path, command) as stale:
        state = State.open(state_path)
        if not dry_run:
            collect_garbage(state)  # what a killed run left behind
        base = start_date(state, as_of, rewind=rewind, dry_run=dry_run)
        previous_manifest = state.manifest(base)
        # the guards on the export come before the rules meet it: their messages say more
        loaded = load(rules, customers, usage, encoding=encoding, progress=progress)
        check_shrink(loaded.typed.height, previous_manifest, guards, Path(customers))
        warnings = check_schema(rules, schema_of(rules, loaded), previous_manifest)
        previous = state.stages(base)
        prepared = prepare_loaded(rules, loaded, as_of, previous=previous, prefer=prefer,
                                  progress=progress)
        progress("applying transition rules")
        result = result_of(prepared, decide(prepared.state, prepared.compiled),
                           cta_history=state.table("ctas", end=base) if base else None)
        check_moves(result, guards.max_moves)
        replaced = as_of in state.days
        dropped = [d for d in state.days if d > as_of] if rewind else []
        planned = [] if dry_run or out is None else list(dict.fromkeys(
            output_paths(result.tables, Path(out), fmt).values()))
        summary = build_summary(
            result, rules_path, started_at, time.monotonic() - started, written=planned,
            dry_run=dry_run, state=state_path, base=base, replaced=replaced, dropped=dropped,
            warnings=warnings)
        written = []
        if not dry_run:
            # the state's files first (invisible until the commit), then the outputs, then
            # the commit: a failure anywhere before the commit leaves the state as it was
            progress("recording the run in the state")
            txn = Transaction(state)
            txn.put(day_write(result, previous, summary, export=loaded.typed.select(ID, STAGE)))
            written = _write_outputs(result, out, fmt, dry_run, progress)
            if rewind:
                txn.drop_after(as_of)
            txn.commit()
    return NightlyResult(result, summary, written, state_path, base, replaced, dropped, stale,
                         warnings)


def day_write(result: RunResult, previous: pl.DataFrame | None,
              manifest: dict[str, Any], export: pl.DataFrame | None = None) -> DayWrite:
    """A run's records for the state; ``export``: the stages the export gave (ID, STAGE)."""
    def text_ids(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("customer_id").cast(pl.String))

    ctas = result.ctas or empty_ctas()
    return DayWrite(
        as_of=result.as_of,
        stages=stage_table(result.final_stages, previous, result.as_of, export=export,
                           id_column=ID),
        transitions=text_ids(result.transitions),
        overrides=result.overrides,
        manifest=manifest,
        ctas=text_ids(ctas.ctas),
        tasks=text_ids(ctas.tasks),
    )


def _write_outputs(result: RunResult, out: str | Path | None, fmt: str, dry_run: bool,
                   progress: Progress) -> list[Path]:
    if dry_run or out is None:
        return []
    progress("writing outputs")
    return write_tables(result.tables, out, fmt, inputs=result.input_paths,
                        created=result.as_of, text_columns=[result.id_column, "customer_id"])


# -- the run summary (also each run's manifest in the state) ----------------------------------


def build_summary(
    result: RunResult,
    rules_path: Path | None,
    started_at: dt.datetime,
    seconds: float,
    *,
    written: Sequence[Path] = (),
    dry_run: bool = False,
    state: Path | None = None,
    base: dt.date | None = None,
    replaced: bool = False,
    dropped: Sequence[dt.date] = (),
    warnings: Sequence[str] = (),
    hash_inputs: bool = True,
) -> dict[str, Any]:
    """What a run did, as plain JSON-able data: the `--summary-json` file and the manifest."""
    m = result.metrics
    moves = {rule: n for rule, n in result.moves.iter_rows()}
    inputs = [file_facts(p) if hash_inputs else {"path": str(p)} for p in result.input_paths]
    return {
        "status": "ok",
        "exit_code": 0,
        "tool": f"lifecycle {__version__}",
        "as_of": result.as_of.isoformat(),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(seconds, 3),
        "dry_run": dry_run,
        "rules": _rules_facts(rules_path),
        "inputs": inputs,
        "rows": {
            "customers": result.customers.height,
            "usage": m.usage_rows,
            "usage_unknown_customer": m.unknown_customer_rows,
            "usage_without_timestamp": m.null_timestamp_rows,
            "usage_after_as_of": m.after_as_of_rows,
        },
        "customers_moved": result.moved_customers,
        "moves_by_rule": moves,
        "stages_before": {("" if k is None else k): v
                          for k, v in sorted(result.stages_before.items(), key=_none_first)},
        "stages_after": dict(sorted(result.stages_after.items())),
        "overrides": result.overrides.height,
        "export_lagging": result.lagging,
        "ctas": _cta_facts(result),
        "schema": result.schema,
        "warnings": [*result.warnings, *warnings],
        "outputs": [str(p) for p in written],
        "state": None if state is None else {
            "path": str(state),
            "started_from": None if base is None else base.isoformat(),
            "replaced_as_of": replaced,
            "dropped_as_of": [d.isoformat() for d in dropped],
        },
    }


def _cta_facts(result: RunResult) -> dict[str, Any]:
    counts = result.cta_counts
    return {
        "created": int(counts["created"].sum()),
        "closed": int(counts["closed"].sum()),
        "tasks": 0 if result.ctas is None else result.ctas.tasks.height,
        "by_rule": {rule: {"created": c, "closed": d} for rule, c, d in counts.iter_rows()},
    }


def _none_first(item: tuple[str | None, int]) -> tuple[bool, str]:
    return (item[0] is not None, item[0] or "")


def _rules_facts(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    return file_facts(Path(path))


def error_summary(error: LifecycleError, started_at: dt.datetime, seconds: float,
                  as_of: dt.date | None) -> dict[str, Any]:
    """The JSON summary of a run that failed: the exit code and every problem."""
    return {
        "status": "error",
        "exit_code": error.exit_code,
        "tool": f"lifecycle {__version__}",
        "as_of": None if as_of is None else as_of.isoformat(),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(seconds, 3),
        "problems": [
            {k: v for k, v in p.__dict__.items() if v is not None} for p in error.problems
        ],
    }


__all__ = [
    "Guards",
    "MaxMoves",
    "NightlyResult",
    "build_summary",
    "error_summary",
    "run_with_state",
]
