"""Reading a state folder: the one way every command does it.

A :class:`StateView` gives, for any as-of date, the stage table, each CTA's
latest row, the worklist, the manifest, the metrics, the history of moves,
hand edits, CTA events and CTAs handled by people, the digests sent to owners, the visits,
and the start of a day
(`lifecycle_cli.day.start.Start`)::

    view = StateView.open("state")
    view.start(dt.date(2026, 11, 2), rules=rules)  # what a run for that date starts from
    view.ctas(view.latest)                  # each CTA's latest row
    view.history("transitions", start, end)
    view.metrics(view.latest)               # each customer's metrics that day
    view.visits(start, end)                 # one row per stay of a customer in a stage

CTAs are read from the date's snapshot (`lifecycle_cli.ctas.snapshot`) when
the state keeps one for it (its latest dates); otherwise from the nearest
earlier snapshot, or from the start of the history, and the CTA events and
hand actions of the dates since. States written before snapshots existed read
the same way, from their events.

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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from ..columns import (
    CTA_ACTION_SCHEMA,
    CTA_SNAPSHOT_SCHEMA,
    MOVES_SCHEMA,
    NOTIFICATION_SCHEMA,
    OPEN,
    VISIT_SCHEMA,
)
from ..ctas import snapshot
from ..ctas.snapshot import CtaSnapshot
from ..ctas.worklist import Worklist, worklist
from ..day.start import Start, carried_values
from ..day.visits import add_totals, last_moves, moves_from, visits
from ..errors import Problem
from .store import INDEX, SNAPSHOTS, State, StateError

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

    def actions(self, start: dt.date | None = None, end: dt.date | None = None
                ) -> pl.DataFrame:
        """The CTAs handled by people on the dates in [start, end] (CTA_ACTION_SCHEMA), in
        date order, then in the order they were made."""
        found = self.history("cta_actions", start, end)
        return snapshot.conform(found, CTA_ACTION_SCHEMA) if found.width else \
            pl.DataFrame(schema=CTA_ACTION_SCHEMA)

    def notifications(self, start: dt.date | None = None, end: dt.date | None = None
                      ) -> pl.DataFrame:
        """The digests `lifecycle notify` delivered for the dates in [start, end]
        (NOTIFICATION_SCHEMA), in date order, then in the order they were sent."""
        found = self.history("notifications", start, end)
        return snapshot.conform(found, NOTIFICATION_SCHEMA) if found.width else \
            pl.DataFrame(schema=NOTIFICATION_SCHEMA)

    def snapshot(self, day: dt.date | None = None, *, tasks: bool = True,
                 open_only: bool = False) -> CtaSnapshot:
        """The CTAs a run needs after ``day`` (default: the latest date; see
        `lifecycle_cli.ctas.snapshot`) and the open CTAs' tasks, hand actions included.
        ``tasks=False``: the CTAs only (the tasks frame is empty); ``open_only``: the
        open CTAs only."""
        day = day or self.latest
        if day is None:
            return snapshot.empty()
        return self._retry(lambda state: _snapshot(state, day, tasks=tasks,
                                                   open_only=open_only))

    def ctas(self, end: dt.date | None = None) -> pl.DataFrame:
        """Each CTA's latest row as of ``end`` (default: the latest date): its status then,
        hand actions included (CTA_SNAPSHOT_SCHEMA). The date's snapshot and the CTAs
        archived up to it, or a reduction of the events of a state without snapshots."""
        snap = self.snapshot(end, tasks=False)
        if snap.complete:
            return snap.ctas
        archived = self.history("cta_archive", None, end or self.latest)
        if archived.height == 0:
            return snap.ctas
        both = pl.concat([snapshot.conform(archived, CTA_SNAPSHOT_SCHEMA), snap.ctas])
        return both.unique(subset="cta_id", keep="last", maintain_order=True)

    def archived(self, end: dt.date | None, *, visits: pl.DataFrame | None = None,
                 cta_ids: list[str] | None = None) -> pl.DataFrame:
        """The CTAs archived up to ``end`` (their visit ended) of these ``visits``
        (customer_id, stage, stage_entered_at) or with these ids."""
        def query(scan: pl.LazyFrame) -> pl.LazyFrame:
            if visits is not None:
                scan = scan.join(visits.lazy(), on=snapshot.VISIT, how="semi",
                                 nulls_equal=True)
            if cta_ids is not None:
                scan = scan.filter(pl.col("cta_id").is_in(cta_ids))
            return scan
        found = self.history("cta_archive", None, end, query=query)
        return snapshot.conform(found, CTA_SNAPSHOT_SCHEMA) if found.width else \
            pl.DataFrame(schema=CTA_SNAPSHOT_SCHEMA)

    def start(self, as_of: dt.date, *, prefer: str = "export",
              use_export_stages: bool = True, rules: Rules | None = None) -> Start:
        """What a run for ``as_of`` starts from: the stage table and the CTA snapshot of the
        state's latest date before it (a re-run of a date starts from the day before it),
        and the hand actions the state holds for ``as_of`` itself (kept when a date is
        re-run). With ``rules``, also what they read from that run: the values of the
        names their ``previous()`` reads, and with ``history_columns`` the visits' totals."""
        base = self.before(as_of)
        actions = self.actions(as_of, as_of) if as_of in self.state.days else None
        if base is None:
            return Start(prefer=prefer, use_export_stages=use_export_stages, actions=actions)
        previous = totals = None
        if rules is not None:
            names = rules.previous_names
            if names:
                wanted = ["customer_id", *names]
                previous = carried_values(self.table("metrics", base, wanted),
                                          self.table("values", base, wanted), names)
            if rules.history_columns:
                totals = self.totals(base)
        snap = self.snapshot(base)

        def archived(visits: pl.DataFrame) -> pl.DataFrame:
            return self.archived(base, visits=visits)

        return Start(stages=self.stages(base), ctas=snap.ctas, tasks=snap.tasks, base=base,
                     prefer=prefer, use_export_stages=use_export_stages, actions=actions,
                     archived=None if snap.complete else archived, previous=previous,
                     totals=totals)

    def worklist(self, as_of: dt.date | None = None, *, owner: str | None = None,
                 overdue: bool = False) -> Worklist:
        """The open CTAs and their tasks on ``as_of`` (default: the latest date). From the
        date's snapshot, only what the list needs is read (the open CTAs, one owner's)."""
        day = as_of or self.latest
        if day is None:
            empty = snapshot.empty()
            return worklist(empty.ctas, empty.tasks, None)

        def read(state: State) -> Worklist:
            ctas_file, tasks_file = (state.file(day, t) for t in SNAPSHOTS)
            if ctas_file is None or tasks_file is None:
                snap = _snapshot(state, day, tasks=True, open_only=True)
                return worklist(snap.ctas, snap.tasks, day, owner=owner, overdue=overdue)
            try:
                return worklist(pl.scan_parquet(ctas_file), pl.scan_parquet(tasks_file), day,
                                owner=owner, overdue=overdue)
            except (OSError, pl.exceptions.PolarsError) as err:
                raise _unreadable(err, ctas_file) from None
        return self._retry(read)


def _snapshot(state: State, day: dt.date, *, tasks: bool, open_only: bool) -> CtaSnapshot:
    """`StateView.snapshot` on one reading of the index."""
    ctas_file, tasks_file = (state.file(day, t) for t in SNAPSHOTS)
    if ctas_file is not None and tasks_file is not None:  # the date's own snapshot
        ctas = pl.scan_parquet(ctas_file)
        if open_only:
            ctas = ctas.filter(pl.col("status") == OPEN)
        return CtaSnapshot(_collect(ctas, ctas_file),
                           _collect(pl.scan_parquet(tasks_file), tasks_file) if tasks
                           else snapshot.empty().tasks)
    built = _rebuild(state, day, tasks=tasks)
    if open_only:
        return replace(built, ctas=built.open)
    return built


def _rebuild(state: State, day: dt.date, *, tasks: bool) -> CtaSnapshot:
    """The snapshot of ``day`` from the nearest earlier snapshot and the CTA events and hand
    actions of the dates since; without one, from every date's (then it holds every CTA:
    ``complete``). Dates with hand actions end a stretch: their actions apply after that
    date's events."""
    earlier = [d for d in state.days if d < day
               and all(state.file(d, t) is not None for t in SNAPSHOTS)]
    since = earlier[-1] if earlier else None
    snap = (_snapshot(state, since, tasks=tasks, open_only=False) if since is not None
            else replace(snapshot.empty(), complete=True))
    days = [d for d in state.days if (since is None or d > since) and d <= day]
    stretch: list[dt.date] = []
    for d in days:
        stretch.append(d)
        actions_file = state.file(d, "cta_actions")
        if actions_file is None and d != day:
            continue
        snap = _replay(state, snap, stretch, actions_file, tasks=tasks)
        stretch = []
    if snap.complete:
        return snap
    # the CTAs whose visit ended since the snapshot are in those dates' archives
    stages_file = state.file(day, "stages")
    if stages_file is None:
        return snap
    stages = _collect(pl.scan_parquet(stages_file), stages_file)
    keep = (pl.col("status") == OPEN) | snapshot.current_visits(snap.ctas, stages)
    return replace(snap, ctas=snap.ctas.filter(keep))


def _replay(state: State, snap: CtaSnapshot, days: list[dt.date], actions_file: Path | None,
            *, tasks: bool) -> CtaSnapshot:
    """``snap`` carried over ``days``' CTA events, then the last day's hand actions."""
    first, last = days[0], days[-1]
    event_files = state.files("ctas", first, last)
    events = (_collect(_latest_rows(_scan(event_files)), event_files[0]) if event_files
              else snapshot.empty().ctas)
    task_rows = None
    if tasks:
        # the stretch's tasks belong to CTAs created in it, whose latest row is among its
        # events: only those of the open ones are read
        open_ids = events.filter(pl.col("status") == OPEN).select("cta_id").lazy()
        task_files = state.files("tasks", first, last)
        task_rows = (_collect(_scan(task_files).join(open_ids, on="cta_id", how="semi"),
                              task_files[0]) if task_files else None)
    actions = None
    if actions_file is not None:
        actions = snapshot.conform(_collect(pl.scan_parquet(actions_file), actions_file),
                                   CTA_ACTION_SCHEMA)
    return snapshot.after(snap, events, task_rows, actions, last)


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
        raise _unreadable(err, path) from None


def _unreadable(err: Exception, path: Path) -> StateError:
    return StateError(
        Problem(f"cannot read the state file: {str(err).splitlines()[0]}", file=str(path),
                hint="the state folder was changed by hand or damaged"))
