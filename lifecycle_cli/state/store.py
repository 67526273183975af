"""The state folder (``--state DIR``) as files: the index, and writing a day into it.

Layout::

    STATE/
      state.json                                  the index: the one commit point
      lock                                        who runs now (see `state.lock`)
      stages/as_of=2026-11-01/part-<hash>.parquet       stage table after that day's run
      transitions/as_of=2026-11-01/part-<hash>.parquet  that day's moves
      overrides/as_of=2026-11-01/part-<hash>.parquet    stages changed by hand in the export
      ctas/as_of=2026-11-01/part-<hash>.parquet         the CTAs that day created or closed
      tasks/as_of=2026-11-01/part-<hash>.parquet        the tasks of the CTAs it created
      cta_actions/as_of=2026-11-01/part-<hash>.parquet  CTAs handled by people on that date
      cta_archive/as_of=2026-11-01/part-<hash>.parquet  CTAs whose visit ended that date
      cta_snapshot/as_of=2026-11-01/part-<hash>.parquet   the current CTAs after that date
      task_snapshot/as_of=2026-11-01/part-<hash>.parquet  the open CTAs' tasks after that date
      metrics/as_of=2026-11-01/part-<hash>.parquet      each customer's metrics that day
      values/as_of=2026-11-01/part-<hash>.parquet       other values previous() reads; scores
      totals/as_of=2026-11-01/part-<hash>.parquet       visits ended per customer and stage
      notifications/as_of=2026-11-01/part-<hash>.parquet  digests `lifecycle notify` sent
      runs/as_of=2026-11-01/run-<hash>.json             that day's manifest

``metrics``, ``values`` and ``totals`` are written when the rules need them (metrics,
``previous()`` of a customer column or derived value, or a ``scorecard:``, whose
columns are kept every day; ``history_columns: true``).
The two snapshot tables are a compaction of the CTA history (see
`lifecycle_cli.ctas.snapshot`): only the latest `SNAPSHOT_DAYS` dates keep them,
so a state grows by the days' events, not by a copy of the CTAs per day.

Every data file is written under a temporary name, fsynced, renamed to a name
made from its content, and then the index ``state.json`` is replaced in one
atomic rename. A reader (and the next
run) sees only what the index names, so a run killed at any point, or a full
disk, leaves the previous state exactly as it was; files that no index names
are removed by the next run. A repeated run for an as-of date replaces that
date's entry in the index: nothing doubles.

Everything that reads a state goes through `lifecycle_cli.state.view.StateView`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import DataError, OutputError, Problem
from ..files import fsync_dir, write_atomic

FORMAT = 1
INDEX = "state.json"
# present while a transaction has files staged: a run killed then leaves it, and the next
# run looks for its debris (see collect_garbage)
WRITING = ".writing"
TABLES = ("stages", "transitions", "overrides", "ctas", "tasks", "cta_actions",
          "cta_archive", "cta_snapshot", "task_snapshot", "metrics", "values", "totals",
          "notifications")
KEPT = ("metrics", "values", "totals")  # the tables a day holds when its rules need them
# Tables that are a compaction of the others (rebuilt from them when missing): kept only for
# the latest SNAPSHOT_DAYS dates of the index, enough for a nightly run (it starts from the
# latest date) and for a re-run of the latest date (it starts from the one before).
SNAPSHOTS = ("cta_snapshot", "task_snapshot")
SNAPSHOT_DAYS = 2
# Tables that only their own command writes (`lifecycle notify`): a run that replaces its date
# keeps them, since what they record happened outside the state (a digest was sent)
CARRIED = ("notifications",)


class StateError(DataError):
    """A problem with the state folder (locked, a past date, unreadable): exit 1."""


# -- the index and its files ----------------------------------------------------------------


@dataclass
class DayRecord:
    """What the state holds for one as-of date: file paths relative to the state folder."""

    files: dict[str, str]  # table or "manifest" -> relative path

    def to_json(self) -> dict[str, Any]:
        return dict(sorted(self.files.items()))


@dataclass
class State:
    """A state folder as its index describes it."""

    path: Path
    days: dict[dt.date, DayRecord] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path) -> State:
        """Read the index of ``path``; an empty state if there is none yet."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise StateError(Problem("the state path exists and is not a folder", file=str(path)))
        index = path / INDEX
        if not index.exists():
            return cls(path)
        try:
            data = json.loads(index.read_text("utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            days = {
                dt.date.fromisoformat(day): DayRecord(dict(files))
                for day, files in data["days"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise StateError(
                Problem(f"cannot read the state index: {err}", file=str(index),
                        hint="is this folder a lifecycle state? It is not changed.")
            ) from None
        return cls(path, dict(sorted(days.items())))

    @property
    def latest(self) -> dt.date | None:
        return max(self.days) if self.days else None

    def before(self, day: dt.date) -> dt.date | None:
        """The latest as-of date in the state strictly before ``day``."""
        earlier = [d for d in self.days if d < day]
        return max(earlier) if earlier else None

    def file(self, day: dt.date | None, table: str) -> Path | None:
        """The file of ``table`` (or ``manifest``) for ``day``; None when it holds none."""
        record = self.days.get(day) if day is not None else None
        if record is None or table not in record.files:
            return None
        return self.path / record.files[table]

    def files(self, table: str, start: dt.date | None = None,
              end: dt.date | None = None) -> list[Path]:
        """The files of ``table`` for the days in [start, end], in date order."""
        found = (self.file(day, table) for day in self.days
                 if not ((start and day < start) or (end and day > end)))
        return [f for f in found if f is not None]


# -- writing: stage files, then commit the index ---------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def stage_file(final: Path, data: bytes) -> Path:
    """Write ``data`` to a fsynced temporary file next to ``final``; return its path.

    A write that fails (a full disk, a file-size limit) removes what it wrote: no part of
    a file is left behind under any name."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp


def _parquet_bytes(frame: pl.DataFrame, level: int | None = None) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=level, statistics=True)
    return buffer.getvalue()


def _table_bytes(table: str, frame: pl.DataFrame) -> bytes:
    # the snapshots are written every night, whole: the fastest zstd level (half the time,
    # about the same size at 1M customers, see bench/README.md)
    return _parquet_bytes(frame, 1 if table in SNAPSHOTS else None)


@dataclass
class DayWrite:
    """One as-of date's records, to be added to the state."""

    as_of: dt.date
    stages: pl.DataFrame
    transitions: pl.DataFrame
    overrides: pl.DataFrame
    manifest: dict[str, Any]
    ctas: pl.DataFrame | None = None  # the day's CTA events (see ctas.py)
    tasks: pl.DataFrame | None = None  # the tasks of the CTAs created that day
    kept: dict[str, pl.DataFrame] = field(default_factory=dict)  # of KEPT: metrics, ...
    cta_actions: pl.DataFrame | None = None  # CTAs handled by people on that date (kept)
    cta_archive: pl.DataFrame | None = None  # the closed CTAs whose visit ended that date
    # each CTA's latest row and the open CTAs' tasks after the day (see ctas/snapshot.py)
    cta_snapshot: pl.DataFrame | None = None
    task_snapshot: pl.DataFrame | None = None


class Transaction:
    """Files written now, made visible all at once by `commit`.

    Used as a context manager, a transaction that ends without a commit (an error in
    between, an interrupt) removes what it staged: a failed run leaves the state folder
    as it found it, with no temporary files either.
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self.days = dict(state.days)
        self.staged: list[tuple[Path, Path]] = []  # (temporary file, final name)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abandon()  # after a commit nothing is staged any more

    def put(self, day: DayWrite) -> None:
        """Write ``day``'s files under temporary names; `commit` gives them their own (made
        from their content, so a repeated run gives the same names)."""
        partition = f"as_of={day.as_of.isoformat()}"
        tables = {"stages": day.stages, "transitions": day.transitions,
                  "overrides": day.overrides}
        if day.ctas is not None and day.tasks is not None:
            tables |= {"ctas": day.ctas, "tasks": day.tasks}
        tables |= {name: frame for name, frame in day.kept.items() if name in KEPT}
        if day.cta_actions is not None and day.cta_actions.height:
            tables["cta_actions"] = day.cta_actions
        if day.cta_archive is not None and day.cta_archive.height:
            tables["cta_archive"] = day.cta_archive
        if day.cta_snapshot is not None and day.task_snapshot is not None:
            tables |= {"cta_snapshot": day.cta_snapshot, "task_snapshot": day.task_snapshot}
        blobs = {table: (_table_bytes(table, frame), "part-{}.parquet", table)
                 for table, frame in tables.items()}
        manifest = (json.dumps(day.manifest, indent=2, sort_keys=True, default=str) + "\n")
        blobs["manifest"] = (manifest.encode(), "run-{}.json", "runs")
        before = self.days.get(day.as_of)
        carried = {t: f for t, f in before.files.items() if t in CARRIED} if before else {}
        self.days[day.as_of] = DayRecord({**self._stage(partition, blobs), **carried})

    def put_tables(self, as_of: dt.date, tables: dict[str, pl.DataFrame]) -> None:
        """Replace some tables of a date the state holds (hand actions on CTAs and the
        snapshots they change); the date's other files stay as they are."""
        record = self.days.get(as_of)
        if record is None:
            raise StateError(Problem(f"the state has no run for {as_of}",
                                     file=str(self.state.path)))
        partition = f"as_of={as_of.isoformat()}"
        blobs = {table: (_table_bytes(table, frame), "part-{}.parquet", table)
                 for table, frame in tables.items()}
        self.days[as_of] = DayRecord({**record.files, **self._stage(partition, blobs)})

    def _stage(self, partition: str, blobs: dict[str, tuple[bytes, str, str]]
               ) -> dict[str, str]:
        """Write ``blobs`` (key -> bytes, file name pattern, folder) under temporary names in
        the date's partition; their relative final paths by key. On a failure everything
        staged is removed, and the state stays as it was."""
        files: dict[str, str] = {}
        try:
            marker = self.state.path / WRITING
            if not marker.exists():
                marker.touch()
                fsync_dir(self.state.path)
            for key, (data, name, folder) in blobs.items():
                relative = f"{folder}/{partition}/{name.format(_digest(data))}"
                final = self.state.path / relative
                self.staged.append((stage_file(final, data), final))
                files[key] = relative
        except OSError as err:
            self.abandon(final.parent)  # the folder made for the file that failed, too
            raise self._failed(err) from None
        return files

    def _failed(self, err: OSError) -> OutputError:
        return OutputError(
            Problem(f"cannot write the state: {err.strerror or err}; the state is unchanged",
                    file=str(self.state.path))
        )

    def abandon(self, *folders: Path) -> None:
        """Remove the staged files, and the folders made for them (and ``folders``) that
        are left empty: the state stays as it was."""
        for temp, _ in self.staged:
            with contextlib.suppress(OSError):
                temp.unlink()
        _remove_empty_folders(self.state.path,
                              {temp.parent for temp, _ in self.staged} | set(folders))
        self.staged = []
        with contextlib.suppress(OSError):
            (self.state.path / WRITING).unlink()

    def drop_after(self, day: dt.date) -> list[dt.date]:
        """Forget every as-of date after ``day`` (a rewind); return them."""
        dropped = [d for d in self.days if d > day]
        for d in dropped:
            del self.days[d]
        return dropped

    def _keep_latest_snapshots(self) -> None:
        """Snapshots only for the latest SNAPSHOT_DAYS dates; older dates rebuild theirs
        from the CTA events when asked (see `lifecycle_cli.state.view`)."""
        recent = set(sorted(self.days)[-SNAPSHOT_DAYS:])
        for day, record in list(self.days.items()):
            if day not in recent and any(t in record.files for t in SNAPSHOTS):
                self.days[day] = DayRecord({k: v for k, v in record.files.items()
                                            if k not in SNAPSHOTS})

    def commit(self) -> None:
        """Replace the index in one rename, then remove the files it no longer names."""
        self._keep_latest_snapshots()
        index = {
            "format": FORMAT,
            "days": {d.isoformat(): r.to_json() for d, r in sorted(self.days.items())},
        }
        data = (json.dumps(index, indent=2) + "\n").encode()
        moved: list[Path] = []
        try:
            for temp, final in self.staged:
                os.replace(temp, final)
                moved.append(final)
            for folder in sorted({final.parent for _, final in self.staged}):
                fsync_dir(folder)
            # the one step that makes the new files part of the state
            write_atomic(self.state.path / INDEX, data)
            fsync_dir(self.state.path)
        except OSError as err:
            # the index is as it was: the files moved under their names are no one's (a
            # name the index already has holds the same bytes, and stays)
            named = {self.state.path / f for r in self.state.days.values()
                     for f in r.files.values()}
            for final in moved:
                if final not in named:
                    with contextlib.suppress(OSError):
                        final.unlink()
            self.abandon()
            raise self._failed(err) from None
        self.staged = []
        before = _named(self.state)
        self.state.days = dict(sorted(self.days.items()))
        # the files the new index no longer names: those of the dates and tables it
        # replaced, never a walk over the whole history (a run's cost must not grow with it)
        unnamed = before - _named(self.state)
        for path in unnamed:
            with contextlib.suppress(OSError):
                path.unlink()
        _remove_empty_folders(self.state.path, {path.parent for path in unnamed})
        with contextlib.suppress(OSError):
            (self.state.path / WRITING).unlink()


def _named(state: State) -> set[Path]:
    return {state.path / f for r in state.days.values() for f in r.files.values()}


def collect_garbage(state: State) -> int:
    """Remove the debris of a run that was killed: leftover temporary files, and data files
    that the index does not name. Returns how many files went.

    Called with the state's lock held: no other run is writing, so every temporary file,
    the index's own included, is debris. The data folders are walked only when a killed
    transaction left its WRITING marker; otherwise this costs the same whatever the
    history.
    """
    removed = 0
    for temp in state.path.glob(f".{INDEX}.tmp-*"):
        with contextlib.suppress(OSError):
            temp.unlink()
            removed += 1
    marker = state.path / WRITING
    if not marker.exists():
        return removed
    named = _named(state)
    for folder in (*TABLES, "runs"):
        root = state.path / folder
        if not root.is_dir():
            continue
        emptied: set[Path] = set()
        for parent, _dirs, files in os.walk(root):
            for name in files:
                path = Path(parent) / name
                if path not in named:
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed += 1
                        emptied.add(path.parent)
            if not files and not _dirs:
                emptied.add(Path(parent))
        _remove_empty_folders(state.path, emptied)
    with contextlib.suppress(OSError):
        marker.unlink()
    return removed


def _remove_empty_folders(root: Path, folders: set[Path]) -> None:
    """Remove each of ``folders`` that is empty, and its parents up to ``root`` (excluded)
    that are left empty."""
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
            folder = folder.parent
