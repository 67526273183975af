"""Reading a state folder: the one way every command does it.

A :class:`StateView` gives, for any as-of date, the stage table, each CTA's
latest row, the worklist, the manifest, the metrics, the history of moves,
hand edits and CTA events, the visits, and the start of a day
(`lifecycle_cli.day.start.Start`)::

    view = StateView.open("state")
    view.start(dt.date(2026, 11, 2), rules=rules)  # what a run for that date starts from
    view.ctas(view.latest)                  # each CTA's latest row
    view.history("transitions", start, end)
    view.metrics(view.latest)               # each customer's metrics that day
    view.visits(start, end)                 # one row per stay of a customer in a stage

Reads take no lock. The index names only complete files and is replaced in
one rename, but a run that commits while we read may remove a file the old
index named (it replaced that date); then the index is read again and the
read retried. History is read through lazy scans of the days' files, so only
the columns and rows a question needs are read.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from ..columns import CTA_SCHEMA, MOVES_SCHEMA, OPEN, VISIT_SCHEMA
from ..ctas.worklist import Worklist, worklist
from ..day.start import Start, carried_values
from ..day.visits import add_totals, last_moves, moves_from, visits
from ..errors import Problem
from .store import INDEX, State, StateError

if TYPE_CHECKING:
    from ..rules.model import Rules

T = TypeVar("T")
READ_TRIES = 3  # a run that commits while we read may remove a file we were about to read
RETRY_SECONDS = 0.2


class StateView:
    """A state folder, read-only. Every read retries when a commit races it."""

    def __init__(self, state: State) -> None:
        self.state = state

    @classmethod
    def open(cls, path: str | Path, *, empty_ok: bool = False) -> StateView:
        """The state in ``path``, for the commands that only read one (ctas, report, check,
        explain): the folder must exist, and unless ``empty_ok``, hold a state (its index)."""
        path = Path(path)
        hint = "give the folder that `lifecycle run --state` or `lifecycle backfill` wrote"
        if not path.exists():
            raise StateError(Problem("no lifecycle state here: the state folder does not exist",
                                     file=str(path), hint=hint))
        if path.is_dir() and not empty_ok and not (path / INDEX).exists():
            raise StateError(Problem(f"no lifecycle state here: the folder has no {INDEX}",
                                     file=str(path), hint=hint))
        return cls(State.open(path))

    # -- the index ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.state.path

    @property
    def days(self) -> list[dt.date]:
        """The as-of dates the state holds, in order."""
        return list(self.state.days)

    @property
    def latest(self) -> dt.date | None:
        return self.state.latest

    @property
    def first(self) -> dt.date | None:
        return min(self.state.days) if self.state.days else None

    def before(self, day: dt.date) -> dt.date | None:
        """The latest as-of date strictly before ``day``: what a run for ``day`` starts from."""
        return self.state.before(day)

    # -- reads ----------------------------------------------------------------------------------

    def _retry(self, read: Callable[[State], T]) -> T:
        for attempt in range(READ_TRIES):
            try:
                return read(self.state)
            except StateError:
                if attempt == READ_TRIES - 1:
                    raise
                time.sleep(RETRY_SECONDS)
                self.state = State.open(self.state.path)
        raise AssertionError("unreachable")

    def stages(self, day: dt.date | None) -> pl.DataFrame | None:
        """The stage table after ``day``'s run (None for no day)."""
        return self.table("stages", day)

    def table(self, table: str, day: dt.date | None,
              columns: list[str] | None = None) -> pl.DataFrame | None:
        """A table of ``day``'s records (``stages``, ``metrics``, ``values``, ``totals``, ...),
        or only its ``columns`` that it has; None when the day holds no such table."""
        def read(state: State) -> pl.DataFrame | None:
            path = state.file(day, table)
            if path is None:
                return None
            scan = pl.scan_parquet(path)
            if columns is not None:
                have = scan.collect_schema().names()
                scan = scan.select([c for c in columns if c in have])
            return _collect(scan, path)
        return self._retry(read)

    def metrics(self, day: dt.date | None) -> pl.DataFrame | None:
        """Each customer's metrics on ``day`` (``customer_id`` as text, then one column per
        metric of that day's rules); None when the day kept none."""
        return self.table("metrics", day)

    def totals(self, day: dt.date | None) -> pl.DataFrame | None:
        """Per customer and stage, the visits that ended up to ``day`` (`TOTALS_SCHEMA`): as
        that day's run kept them, or, when it kept none (``history_columns`` was off), made
        from the history of moves up to it. None for no day."""
        if day is None:
            return None
        kept = self.table("totals", day)
        if kept is not None:
            return kept
        return add_totals(None, self.moves(None, day))

    def moves(self, start: dt.date | None = None, end: dt.date | None = None
              ) -> pl.DataFrame:
        """Every move of the days in [start, end]: transitions, and stages changed by hand in
        the export (`lifecycle_cli.day.visits.moves_from`, `MOVES_SCHEMA`)."""
        columns = list(MOVES_SCHEMA)
        transitions = self.history("transitions", start, end,
                                   query=lambda scan: scan.select(columns))
        overrides = self.history("overrides", start, end)
        return moves_from(transitions, overrides)

    def visits(self, start: dt.date | None = None, end: dt.date | None = None
               ) -> pl.DataFrame:
        """One row per visit in progress at some time in [start, end] (default: the state's
        first and latest dates): `VISIT_SCHEMA`, as `lifecycle report` writes it. The period
        ends on the state's latest date on or before ``end``."""
        days = [d for d in self.days if end is None or d <= end]
        if not days:
            return pl.DataFrame(schema=VISIT_SCHEMA)
        last = days[-1]
        first = start or days[0]
        current = self.stages(last)
        assert current is not None
        before = None
        if start is not None and start > days[0]:
            before = last_moves(self.moves(None, start - dt.timedelta(days=1)))
        return visits(self.moves(first, last), current, last, start=first, before=before)

    def manifest(self, day: dt.date | None) -> dict[str, Any] | None:
        """The manifest of ``day``'s run (the run's JSON summary)."""
        def read(state: State) -> dict[str, Any] | None:
            path = state.file(day, "manifest")
            if path is None:
                return None
            try:
                return dict(json.loads(path.read_text("utf-8")))
            except (OSError, ValueError) as err:
                raise StateError(Problem(f"cannot read a run manifest: {err}",
                                         file=str(path))) from None
        return self._retry(read)

    def history(self, table: str, start: dt.date | None = None, end: dt.date | None = None,
                query: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None) -> pl.DataFrame:
        """A table (``transitions``, ``overrides``, ``ctas``, ``tasks``) of every as-of date in
        [start, end], in date order; an empty frame when no date holds it. ``query``
        narrows the lazy scan before it is read (a filter, a selection, a reduction)."""
        def read(state: State) -> pl.DataFrame:
            files = state.files(table, start, end)
            if not files:
                return pl.DataFrame()
            scan = _scan(files)
            return _collect(query(scan) if query else scan, files[0])
        return self._retry(read)

    def ctas(self, end: dt.date | None = None) -> pl.DataFrame:
        """Each CTA's latest row as of ``end`` (default: the latest date): its status then."""
        latest = self.history("ctas", None, end, query=_latest_rows)
        return latest if latest.width else pl.DataFrame(schema=CTA_SCHEMA)

    def start(self, as_of: dt.date, *, prefer: str = "export",
              use_export_stages: bool = True, rules: Rules | None = None) -> Start:
        """What a run for ``as_of`` starts from: the stage table and the CTAs of the state's
        latest date before it (a re-run of a date starts from the day before it). With
        ``rules``, also what they read from that run: the values of the names their
        ``previous()`` reads, and with ``history_columns`` the visits' totals."""
        base = self.before(as_of)
        if base is None:
            return Start(prefer=prefer, use_export_stages=use_export_stages)
        previous = totals = None
        if rules is not None:
            names = rules.previous_names
            if names:
                wanted = ["customer_id", *names]
                previous = carried_values(self.table("metrics", base, wanted),
                                          self.table("values", base, wanted), names)
            if rules.history_columns:
                totals = self.totals(base)
        return Start(stages=self.stages(base), ctas=self.ctas(base), base=base, prefer=prefer,
                     use_export_stages=use_export_stages, previous=previous, totals=totals)

    def worklist(self, as_of: dt.date | None = None, *, owner: str | None = None,
                 overdue: bool = False) -> Worklist:
        """The open CTAs and their tasks on ``as_of`` (default: the latest date)."""
        day = as_of or self.latest
        if day is None:
            return worklist(pl.DataFrame(schema=CTA_SCHEMA), pl.DataFrame(), None)
        latest = self.ctas(day)
        open_ids = latest.filter(pl.col("status") == OPEN).select("cta_id")
        tasks = self.history("tasks", None, day,
                             query=lambda scan: scan.join(open_ids.lazy(), on="cta_id",
                                                          how="semi"))
        return worklist(latest, tasks, day, owner=owner, overdue=overdue)


def _scan(files: list[Path]) -> pl.LazyFrame:
    scans = [pl.scan_parquet(f) for f in files]
    return scans[0] if len(scans) == 1 else pl.concat(scans, how="diagonal_relaxed")


def _latest_rows(scan: pl.LazyFrame) -> pl.LazyFrame:
    """The latest row of each CTA: the days' files come in date order."""
    return scan.unique(subset="cta_id", keep="last", maintain_order=True)


def _collect(frame: pl.LazyFrame, path: Path) -> pl.DataFrame:
    try:
        return frame.collect()
    except (OSError, pl.exceptions.PolarsError) as err:
        raise StateError(
            Problem(f"cannot read the state file: {str(err).splitlines()[0]}", file=str(path),
                    hint="the state folder was changed by hand or damaged")
        ) from None
