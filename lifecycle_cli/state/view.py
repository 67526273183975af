"""Reading a state folder: the one way every command does it.

A :class:`StateView` gives, for any as-of date, the stage table, each CTA's
latest row, the worklist, the manifest and the history of moves, hand edits
and CTA events, and the start of a day (`lifecycle_cli.day.start.Start`)::

    view = StateView.open("state")
    view.start(dt.date(2026, 11, 2))        # what a run for that date starts from
    view.ctas(view.latest)                  # each CTA's latest row
    view.history("transitions", start, end)

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
from typing import Any, TypeVar

import polars as pl

from ..columns import CTA_SCHEMA, OPEN
from ..ctas.worklist import Worklist, worklist
from ..day.start import Start
from ..errors import Problem
from .store import INDEX, State, StateError

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
        def read(state: State) -> pl.DataFrame | None:
            path = state.file(day, "stages")
            return None if path is None else _collect(pl.scan_parquet(path), path)
        return self._retry(read)

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
              use_export_stages: bool = True) -> Start:
        """What a run for ``as_of`` starts from: the stage table and the CTAs of the state's
        latest date before it (a re-run of a date starts from the day before it)."""
        base = self.before(as_of)
        if base is None:
            return Start(prefer=prefer, use_export_stages=use_export_stages)
        return Start(stages=self.stages(base), ctas=self.ctas(base), base=base, prefer=prefer,
                     use_export_stages=use_export_stages)

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
