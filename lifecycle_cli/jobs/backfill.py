"""`lifecycle backfill`: replay a range of as-of dates into a state folder.

Each day is a day of `lifecycle_cli.day.pipeline.run_day` for that as-of
date, with the usage as it was on that day (rows after it are ignored, as in
every run), starting where the previous day left (`Day.next_start`: exactly
what the state would give a nightly run). The exports are read once; usage is
grouped once by customer and day into partial aggregates (in Polars, or in the
engine with ``--engine``), then each day merges the partials of its days.

Where the first day starts from: the state's records before it, if the state
has any, else the initial stage for every customer. The export's own stage
columns are today's, not the replayed days', so they are ignored, unless
``keep_export_stages`` makes them the first day's starting point (with the
state filling what they leave empty, as in `run`). Either way every day's
stage table remembers what the export gave, so the first nightly run after a
backfill sees no change in the same export and continues the backfill's
history.

The whole range is recorded in the state at once at the end: a backfill that
fails or is killed leaves the state as it was. Dates of the state after the
range need ``rewind`` (they would rest on a history that the backfill
replaced) and are dropped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import ID
from ..day.load import Loaded, Progress, Tables, UsageSpecs, load, no_progress
from ..day.pipeline import Day, run_day
from ..day.start import Start
from ..errors import OptionError, Problem
from ..files import file_facts
from ..metrics.compute import MetricsResult
from ..metrics.replay import SourcesReplay
from ..rules.model import Rules
from ..sql.backend import Backend, EngineChoice, connected
from ..sql.replay import SqlReplay
from ..state.lock import lock
from ..state.store import SNAPSHOT_DAYS, State, StateError, Transaction, collect_garbage
from ..state.view import StateView
from .nightly import day_write, skipped_actions_warning
from .summary import build_summary


@dataclass
class BackfillDay:
    as_of: dt.date
    moved: int
    assigned: int  # initial assignments
    stages_after: dict[str, int]
    seconds: float
    ctas_created: int = 0
    ctas_closed: int = 0


@dataclass
class BackfillResult:
    start: dt.date
    end: dt.date
    days: list[BackfillDay] = field(default_factory=list)
    replaced: list[dt.date] = field(default_factory=list)  # dates the state held already
    dropped: list[dt.date] = field(default_factory=list)  # later dates removed (rewind)
    base: dt.date | None = None
    seconds: float = 0.0


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise OptionError(f"--to {end} is before --from {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def backfill(
    rules: Rules,
    rules_path: Path | None,
    customers: str | Path,
    usage: UsageSpecs,
    start: dt.date,
    end: dt.date,
    state_dir: str | Path,
    *,
    rewind: bool = False,
    keep_export_stages: bool = False,
    encoding: str | None = None,
    progress: Progress = no_progress,
    command: str = "lifecycle backfill",
    tables: Tables | None = None,
    engine: EngineChoice | None = None,
) -> BackfillResult:
    """Replay every as-of date from ``start`` to ``end`` into ``state_dir``. ``engine``:
    what computes each day (`lifecycle_cli.sql`; one connection for the whole range): the
    metrics from per-customer-per-day partials (in Polars, `metrics.replay`, or in the
    engine, `sql.replay`) and the decision."""
    began = time.monotonic()
    days = days_between(start, end)
    state_path = Path(state_dir)
    with lock(state_path, command), contextlib.ExitStack() as cleanup:
        state = State.open(state_path)
        collect_garbage(state)
        later = [d for d in state.days if d > end]
        if later and not rewind:
            raise StateError(
                Problem(
                    f"the state holds runs after {end} (up to {later[-1]}); they rest on the "
                    "history this backfill would replace",
                    file=str(state_path),
                    hint=f"pass --rewind to drop them, or backfill up to {later[-1]}",
                )
            )
        loaded = load(rules, customers, usage, encoding=encoding, progress=progress,
                      tables=tables)
        facts = [file_facts(p) for p in loaded.paths]
        rules_facts = None if rules_path is None else file_facts(Path(rules_path))
        view = StateView(state)
        base = view.before(start)
        out = BackfillResult(start, end, base=base,
                             replaced=[d for d in days if d in state.days], dropped=later)
        backend = cleanup.enter_context(connected(engine, rules.timezone))
        metrics = day_metrics(rules, loaded, start, end, backend, progress)
        txn = cleanup.enter_context(Transaction(state))  # a failed day leaves nothing staged
        # the export's stages are today's: they speak for no replayed day, unless asked for
        # the first one; they are remembered, so a later run sees no change in the export
        begin = view.start(start, use_export_stages=keep_export_stages, rules=rules)

        def actions(day: dt.date) -> pl.DataFrame | None:
            # the hand actions recorded on a day are applied again after its run
            return view.actions(day, day) if day in state.days else None

        replayed = replay_days(rules, loaded, days, begin, metrics, backend=backend,
                               actions=actions)
        for day in days:
            day_began = time.monotonic()
            started_at = dt.datetime.now(dt.UTC)
            progress("replaying days", (day - start).days, len(days), "days")
            result = next(replayed)
            summary = build_summary(result, None, started_at, time.monotonic() - day_began,
                                    state=state_path, base=result.start.base,
                                    replaced=day in state.days, hash_inputs=False,
                                    warnings=skipped_actions_warning(result))
            summary["inputs"], summary["rules"], summary["command"] = facts, rules_facts, "backfill"
            # the state keeps the snapshots of its latest dates only (see state.store)
            txn.put(day_write(result, summary, snapshot=day in days[-SNAPSHOT_DAYS:]))
            out.days.append(BackfillDay(
                day, result.moved_customers,
                result.transitions.filter(pl.col("hop") == 0).height,
                dict(result.stages_after), time.monotonic() - day_began,
                summary["ctas"]["created"], summary["ctas"]["closed"]))
        progress("replaying days", len(days), len(days), "days")
        progress("recording the backfill in the state")
        txn.drop_after(end)
        txn.commit()
    out.seconds = time.monotonic() - began
    return out


def day_metrics(rules: Rules, loaded: Loaded, start: dt.date, end: dt.date,
                backend: Backend | None = None, progress: Progress = no_progress
                ) -> Callable[[dt.date], MetricsResult | None]:
    """Each day's metrics from ``start`` to ``end``, asked in order: the usage grouped once
    by customer and day into partial aggregates (in Polars, `metrics.replay`, or in the
    engine, `sql.replay`), merged for each day. None without usage (the day computes its
    own). A day asked twice in a row is merged once (two rule sets that read alike share
    it, see `jobs.backtest`)."""
    if not loaded.sources:
        return lambda day: None
    progress("grouping usage by customer and day")
    ids = loaded.typed.select(ID)
    replay = (SourcesReplay(rules, loaded.sources, ids, start, end) if backend is None
              else SqlReplay(backend, rules, loaded.sources, ids, start, end))
    last: list[tuple[dt.date, MetricsResult]] = []

    def metrics(day: dt.date) -> MetricsResult:
        if not last or last[0][0] != day:
            last[:] = [(day, replay.metrics(day))]
        return last[0][1]

    return metrics


def replay_days(rules: Rules, loaded: Loaded, days: Sequence[dt.date], begin: Start,
                metrics: Callable[[dt.date], MetricsResult | None], *,
                backend: Backend | None = None,
                actions: Callable[[dt.date], pl.DataFrame | None] | None = None,
                ) -> Iterator[Day]:
    """Each of ``days`` (consecutive, in order) as `run_day` decides it, the first starting
    from ``begin`` and each next one where the day before left (`Day.next_start`: what a
    state that recorded the day would give a nightly run). ``actions``: the hand actions
    to apply again after a day's run (a backfill over dates the state holds)."""
    for day in days:
        result = run_day(rules, loaded, day, begin, metrics=metrics(day), backend=backend)
        yield result
        following = day + dt.timedelta(days=1)
        begin = replace(result.next_start(),
                        actions=None if actions is None else actions(following))


def summary_of(result: BackfillResult) -> dict[str, Any]:
    """The backfill as JSON-able data."""
    return {
        "from": result.start.isoformat(),
        "to": result.end.isoformat(),
        "days": len(result.days),
        "seconds": round(result.seconds, 3),
        "replaced": [d.isoformat() for d in result.replaced],
        "dropped": [d.isoformat() for d in result.dropped],
        "per_day": [
            {"as_of": d.as_of.isoformat(), "moved": d.moved, "assigned": d.assigned,
             "stages_after": d.stages_after, "ctas_created": d.ctas_created,
             "ctas_closed": d.ctas_closed, "seconds": round(d.seconds, 3)}
            for d in result.days
        ],
    }
