"""`lifecycle backfill`: replay a range of as-of dates into a state folder.

Each day is a run for that as-of date, with the usage as it was on that day
(rows after it are ignored, as in every run), starting from the stages the
previous day left. The exports are read once; usage is loaded once, then
each day aggregates its own rows.

Where the first day starts from: the state's stages before it, if the state
has any, else the initial stage for every customer. The export's own stage
columns are today's, not the replayed days', so they are ignored, unless
``keep_export_stages`` makes them the first day's starting point (with the
state filling what they leave empty, as in `run`).

The whole range is recorded in the state at once at the end: a backfill that
fails or is killed leaves the state as it was. Dates of the state after the
range need ``rewind`` (they would rest on a history that the backfill
replaced) and are dropped.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import ENTERED, ID, STAGE, TIMESTAMP
from ..ctas.decide import current, latest_ctas
from ..day.pipeline import Loaded, load, prepare_loaded, result_of
from ..engine.decide import decide
from ..errors import OptionError, Problem
from ..files import file_facts
from ..inputs.usage import Usage
from ..metrics.replay import MetricsReplay
from ..rules.model import Rules
from ..state.lock import lock
from ..state.store import State, StateError, Transaction, collect_garbage
from .nightly import build_summary, day_write

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


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
    usage: Sequence[str | Path],
    start: dt.date,
    end: dt.date,
    state_dir: str | Path,
    *,
    rewind: bool = False,
    keep_export_stages: bool = False,
    encoding: str | None = None,
    progress: Progress = _noop,
    command: str = "lifecycle backfill",
) -> BackfillResult:
    """Replay every as-of date from ``start`` to ``end`` into ``state_dir``."""
    began = time.monotonic()
    days = days_between(start, end)
    state_path = Path(state_dir)
    with lock(state_path, command):
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
        loaded = load(rules, customers, usage, encoding=encoding, progress=progress)
        export = loaded.typed.select(ID, STAGE)  # remembered: see state.merge_start
        if not keep_export_stages:
            loaded.typed = _without_stages(loaded.typed)
        replay = None
        if loaded.usage is not None:
            progress("grouping usage by customer and day")
            window = _until(loaded.usage, end)
            replay = MetricsReplay(rules, window, loaded.usage.schema, loaded.typed.select(ID),
                                   start)
            if not replay.supported:  # a `where` reads the as-of date: each day from scratch
                replay = None
                progress("loading usage")
                rows = window.collect(engine="streaming")
                loaded.usage = Usage(loaded.usage.paths, rows.lazy(), loaded.usage.schema)
        facts = [file_facts(p) for p in loaded_paths(loaded)]
        rules_facts = None if rules_path is None else file_facts(Path(rules_path))
        base = state.before(start)
        previous = state.stages(base)
        out = BackfillResult(start, end, base=base,
                             replaced=[d for d in days if d in state.days], dropped=later)
        txn = Transaction(state)
        cta_history = current(state.table("ctas", end=base) if base else None)
        for day in days:
            day_began = time.monotonic()
            started_at = dt.datetime.now(dt.UTC)
            progress(f"replaying {day} ({(day - start).days + 1} of {len(days)})")
            metrics = replay.metrics(day) if replay is not None else None
            prepared = prepare_loaded(rules, loaded, day, previous=previous, metrics=metrics)
            result = result_of(prepared, decide(prepared.state, prepared.compiled),
                               cta_history=cta_history, history_is_latest=True)
            summary = build_summary(result, None, started_at, time.monotonic() - day_began,
                                    state=state_path, base=base if day == start else
                                    day - dt.timedelta(days=1), replaced=day in state.days,
                                    hash_inputs=False)
            summary["inputs"], summary["rules"], summary["command"] = facts, rules_facts, "backfill"
            record = day_write(result, previous, summary, export=export)
            txn.put(record)
            previous = record.stages
            if record.ctas is not None and record.ctas.height:
                cta_history = latest_ctas(cta_history, record.ctas)
            out.days.append(BackfillDay(
                day, result.moved_customers,
                result.transitions.filter(pl.col("hop") == 0).height,
                dict(result.stages_after), time.monotonic() - day_began,
                summary["ctas"]["created"], summary["ctas"]["closed"]))
            if keep_export_stages and day == start:
                # the export's stages speak for the first day only
                loaded.typed = _without_stages(loaded.typed)
        progress("recording the backfill in the state")
        txn.drop_after(end)
        txn.commit()
    out.seconds = time.monotonic() - began
    return out


def _without_stages(typed: pl.DataFrame) -> pl.DataFrame:
    return typed.with_columns(
        pl.lit(None, dtype=pl.String).alias(STAGE), pl.lit(None, dtype=pl.Date).alias(ENTERED)
    )


def loaded_paths(loaded: Loaded) -> list[Path]:
    return [loaded.customers.path, *(loaded.usage.paths if loaded.usage else [])]


def _until(usage: Usage, end: dt.date) -> pl.LazyFrame:
    """The usage rows up to the last day (and those without a timestamp, to count them)."""
    stop = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    return usage.frame.filter(
        pl.col(TIMESTAMP).is_null() | (pl.col(TIMESTAMP) < pl.lit(stop, dtype=pl.Datetime("us")))
    )


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
