"""The state folder (``--state DIR``): the tool's memory between runs.

Layout::

    STATE/
      state.json                                  the index: the one commit point
      lock                                        who runs now (see `lock`)
      stages/as_of=2026-11-01/part-<hash>.parquet       stage table after that day's run
      transitions/as_of=2026-11-01/part-<hash>.parquet  that day's moves
      overrides/as_of=2026-11-01/part-<hash>.parquet    stages changed by hand in the export
      runs/as_of=2026-11-01/run-<hash>.json             that day's manifest

Every data file is written under a temporary name, fsynced, renamed to a name
made from its content, and then the index ``state.json`` is replaced in one
atomic rename. A reader (and the next
run) sees only what the index names, so a run killed at any point, or a full
disk, leaves the previous state exactly as it was; files that no index names
are removed by the next run. A repeated run for an as-of date replaces that
date's entry in the index: nothing doubles.

Which stage a run starts from, when the export and the state disagree:

- the export wins where it has a value (it is the CRM, where people change
  stages by hand), and the state fills what the export leaves empty;
- a customer whose stage in the export differs from the state's and from what
  the export gave last time was changed by hand: it is recorded in
  ``overrides``; when the export gives no ``stage_entered_at`` for such a
  stage, the stage counts as entered on the as-of date (the day it was seen);
- one whose export stage differs from the state's but is what the export gave
  last time shows a CRM not (yet) updated from our outputs: the state wins;
- ``prefer="state"`` makes the state win always; hand changes are still recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import io
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from .errors import DataError, OutputError, Problem
from .outputs import fsync_dir, write_atomic

FORMAT = 1
INDEX = "state.json"
LOCK = "lock"
TABLES = ("stages", "transitions", "overrides", "ctas", "tasks")

SEEN = "last_seen"  # the last as-of date whose export listed the customer
EXPORT_STAGE = "export_stage"  # the stage that export gave (empty: none)
STAGE_TABLE_SCHEMA = {
    "customer_id": pl.String(),
    "stage": pl.String(),
    "stage_entered_at": pl.Date(),
    SEEN: pl.Date(),
    EXPORT_STAGE: pl.String(),
}
OVERRIDE_SCHEMA = {
    "as_of": pl.Date(),
    "customer_id": pl.String(),
    "state_stage": pl.String(),
    "state_entered_at": pl.Date(),
    "export_stage": pl.String(),
    "export_entered_at": pl.Date(),
    "kept": pl.String(),  # "export" or "state": which one the run started from
}


class StateError(DataError):
    """A problem with the state folder (locked, a past date, unreadable): exit 1."""


# -- the lock -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    user: str
    command: str
    since: str  # ISO time, UTC

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (user {self.user}), running `{self.command}`, " \
               f"since {self.since}"


def _read_lock_info(fd: int) -> LockInfo | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
        return LockInfo(int(data["pid"]), str(data["host"]), str(data["user"]),
                        str(data["command"]), str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return LockInfo(0, "?", "?", "?", "?")


@contextlib.contextmanager
def lock(state_dir: Path, command: str) -> Iterator[LockInfo | None]:
    """Hold the state folder's lock; yield what a killed holder left behind, if anything.

    The lock is an OS lock (``flock``) on ``STATE/lock``, which the kernel drops
    when its process dies, however it dies; the file also says who holds it, for
    the message a second run prints. A file that still names a holder when the
    lock is free was left by a killed run: it is stale, and cleared.
    """
    import fcntl

    path = state_dir / LOCK
    if state_dir.exists() and not state_dir.is_dir():
        raise StateError(Problem("the state path exists and is not a folder",
                                 file=str(state_dir), hint="give --state a folder"))
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise StateError(
            Problem(f"cannot use the state folder: {err.strerror or err}", file=str(state_dir),
                    hint="--state needs a folder this user can write (it is created if "
                    "missing)")
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_lock_info(fd)
            who = holder.describe() if holder else "another process"
            raise StateError(
                Problem(
                    f"the state folder is in use by {who}",
                    file=str(state_dir),
                    hint="wait for that run to finish; two runs must not share a state folder",
                )
            ) from None
        stale = _read_lock_info(fd)
        me = LockInfo(os.getpid(), socket.gethostname(), _user(), command,
                      dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me.__dict__).encode())
        os.fsync(fd)
        try:
            yield stale
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


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

    @classmethod
    def open_existing(cls, path: str | Path, *, empty_ok: bool = False) -> State:
        """`open` for the commands that only read a state (ctas, report, check): the folder
        must exist, and unless ``empty_ok``, hold a state (its index)."""
        path = Path(path)
        hint = "give the folder that `lifecycle run --state` or `lifecycle backfill` wrote"
        if not path.exists():
            raise StateError(Problem("no lifecycle state here: the state folder does not exist",
                                     file=str(path), hint=hint))
        if path.is_dir() and not empty_ok and not (path / INDEX).exists():
            raise StateError(Problem(f"no lifecycle state here: the folder has no {INDEX}",
                                     file=str(path), hint=hint))
        return cls.open(path)

    @property
    def latest(self) -> dt.date | None:
        return max(self.days) if self.days else None

    def before(self, day: dt.date) -> dt.date | None:
        """The latest as-of date in the state strictly before ``day``."""
        earlier = [d for d in self.days if d < day]
        return max(earlier) if earlier else None

    def _file(self, day: dt.date, table: str) -> Path | None:
        record = self.days.get(day)
        if record is None or table not in record.files:
            return None
        return self.path / record.files[table]

    def stages(self, day: dt.date | None) -> pl.DataFrame | None:
        """The stage table after ``day``'s run (None for no day)."""
        if day is None:
            return None
        path = self._file(day, "stages")
        return None if path is None else self._read(path)

    def table(self, table: str, start: dt.date | None = None,
              end: dt.date | None = None) -> pl.DataFrame:
        """A table (``transitions``, ``overrides``, ``ctas``, ``tasks``) of every as-of date
        in [start, end], in date order; an empty frame when none holds it."""
        frames = []
        for day in self.days:
            if (start and day < start) or (end and day > end):
                continue
            path = self._file(day, table)
            if path is not None:
                frames.append(self._read(path))
        if not frames:
            return pl.DataFrame()
        return pl.concat(frames, how="diagonal_relaxed")

    def manifest(self, day: dt.date | None) -> dict[str, Any] | None:
        if day is None:
            return None
        path = self._file(day, "manifest")
        if path is None:
            return None
        try:
            return dict(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError) as err:
            raise StateError(Problem(f"cannot read a run manifest: {err}", file=str(path))) \
                from None

    def _read(self, path: Path) -> pl.DataFrame:
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as err:
            raise StateError(
                Problem(f"cannot read the state file: {str(err).splitlines()[0]}", file=str(path),
                        hint="the state folder was changed by hand or damaged")
            ) from None


# -- writing: stage files, then commit the index ---------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def stage_file(final: Path, data: bytes) -> Path:
    """Write ``data`` to a fsynced temporary file next to ``final``; return its path."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return temp


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


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


class Transaction:
    """Files written now, made visible all at once by `commit`."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.days = dict(state.days)
        self.staged: list[tuple[Path, Path]] = []  # (temporary file, final name)

    def put(self, day: DayWrite) -> None:
        """Write ``day``'s files under temporary names; `commit` gives them their own (made
        from their content, so a repeated run gives the same names)."""
        files: dict[str, str] = {}
        partition = f"as_of={day.as_of.isoformat()}"
        tables = {"stages": day.stages, "transitions": day.transitions,
                  "overrides": day.overrides}
        if day.ctas is not None and day.tasks is not None:
            tables |= {"ctas": day.ctas, "tasks": day.tasks}
        blobs = {table: (_parquet_bytes(frame), "part-{}.parquet", table)
                 for table, frame in tables.items()}
        manifest = (json.dumps(day.manifest, indent=2, sort_keys=True, default=str) + "\n")
        blobs["manifest"] = (manifest.encode(), "run-{}.json", "runs")
        try:
            for key, (data, name, folder) in blobs.items():
                relative = f"{folder}/{partition}/{name.format(_digest(data))}"
                final = self.state.path / relative
                self.staged.append((stage_file(final, data), final))
                files[key] = relative
        except OSError as err:
            self.abandon()
            raise self._failed(err) from None
        self.days[day.as_of] = DayRecord(files)

    def _failed(self, err: OSError) -> OutputError:
        return OutputError(
            Problem(f"cannot write the state: {err.strerror or err}; the state is unchanged",
                    file=str(self.state.path))
        )

    def abandon(self) -> None:
        """Remove the staged files: the state stays as it was."""
        for temp, _ in self.staged:
            with contextlib.suppress(OSError):
                temp.unlink()
        self.staged = []

    def drop_after(self, day: dt.date) -> list[dt.date]:
        """Forget every as-of date after ``day`` (a rewind); return them."""
        dropped = [d for d in self.days if d > day]
        for d in dropped:
            del self.days[d]
        return dropped

    def commit(self) -> None:
        """Replace the index in one rename, then remove the files it no longer names."""
        index = {
            "format": FORMAT,
            "days": {d.isoformat(): r.to_json() for d, r in sorted(self.days.items())},
        }
        data = (json.dumps(index, indent=2) + "\n").encode()
        try:
            for temp, final in self.staged:
                os.replace(temp, final)
            for folder in sorted({final.parent for _, final in self.staged}):
                fsync_dir(folder)
            # the one step that makes the new files part of the state
            write_atomic(self.state.path / INDEX, data)
            fsync_dir(self.state.path)
        except OSError as err:
            self.abandon()
            raise self._failed(err) from None
        self.state.days = dict(sorted(self.days.items()))
        collect_garbage(self.state)


def collect_garbage(state: State) -> int:
    """Remove data files (and leftover temporary files) that the index does not name."""
    named = {state.path / f for r in state.days.values() for f in r.files.values()}
    removed = 0
    for folder in (*TABLES, "runs"):
        root = state.path / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path not in named:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        for sub in sorted(root.iterdir(), reverse=True):
            if sub.is_dir():
                with contextlib.suppress(OSError):
                    sub.rmdir()  # only when empty
    return removed


# -- which stage a run starts from ------------------------------------------------------------


def file_facts(path: Path) -> dict[str, Any]:
    """Path, size and SHA-256 of an input file, for the manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def empty_overrides() -> pl.DataFrame:
    return pl.DataFrame(schema=OVERRIDE_SCHEMA)


def merge_start(
    typed: pl.DataFrame,
    previous: pl.DataFrame | None,
    as_of: dt.date,
    *,
    id_column: str = "customer_id",
    stage_column: str = "stage",
    entered_column: str = "stage_entered_at",
    prefer: str = "export",
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The stages a run starts from: the export's, filled (or overruled) by the state's.

    ``typed`` holds the export's customers (``id_column``, ``stage_column``,
    ``entered_column``); ``previous`` is the state's stage table. Returns
    ``typed`` with its stage columns replaced; the overrides (customers whose
    stage in the export was changed since the last run, to a stage other than
    the state's); and how many customers' export stage lags behind the state's
    (unchanged since the last run, so the CRM was not updated from our outputs:
    the state's stage is kept for them).
    """
    if previous is None or previous.height == 0:
        return typed, empty_overrides(), 0
    key, s_stage, s_entered, s_export = (
        "__state_key", "__state_stage", "__state_entered", "__state_export")
    last_export = (pl.col(EXPORT_STAGE) if EXPORT_STAGE in previous.columns
                   else pl.lit(None, dtype=pl.String))
    joined = typed.with_columns(pl.col(id_column).cast(pl.String).alias(key)).join(
        previous.select(
            pl.col("customer_id").alias(key),
            pl.col("stage").alias(s_stage),
            pl.col("stage_entered_at").alias(s_entered),
            last_export.alias(s_export),
        ),
        on=key,
        how="left",
        maintain_order="left",
    )
    e_stage, e_entered = pl.col(stage_column), pl.col(entered_column)
    st_stage, st_entered = pl.col(s_stage), pl.col(s_entered)
    day = pl.lit(as_of, dtype=pl.Date)
    differs = e_stage.is_not_null() & st_stage.is_not_null() & (e_stage != st_stage)
    # a stage the export gave last time too is the CRM lagging, not a person's change
    changed = differs & (pl.col(s_export).is_null() | (e_stage != pl.col(s_export)))
    lagging = differs & ~changed
    if prefer == "state":
        stage = pl.coalesce(st_stage, e_stage)
        entered = pl.when(st_stage.is_not_null()).then(st_entered).otherwise(e_entered)
    else:
        stage = pl.when(lagging).then(st_stage).otherwise(pl.coalesce(e_stage, st_stage))
        entered = (
            pl.when(e_stage.is_null() | lagging).then(st_entered)
            .when(changed).then(pl.coalesce(e_entered, day))  # seen changed today
            .when(st_stage.is_null()).then(e_entered)
            .otherwise(pl.coalesce(e_entered, st_entered))  # same stage: export's date if given
        )
    overrides = joined.filter(changed).select(
        day.alias("as_of"),
        pl.col(key).alias("customer_id"),
        st_stage.alias("state_stage"),
        st_entered.alias("state_entered_at"),
        e_stage.alias("export_stage"),
        e_entered.alias("export_entered_at"),
        pl.lit(prefer).alias("kept"),
    )
    lagging_count = int(joined.select(lagging.sum()).item())
    merged = joined.with_columns(stage.alias(stage_column), entered.alias(entered_column))
    return merged.drop(key, s_stage, s_entered, s_export), overrides, lagging_count


def stage_table(
    final: pl.DataFrame,
    previous: pl.DataFrame | None,
    as_of: dt.date,
    *,
    export: pl.DataFrame | None = None,
    id_column: str = "customer_id",
    stage_column: str = "stage",
    entered_column: str = "stage_entered_at",
) -> pl.DataFrame:
    """The stage table after a run: every customer of this run, then those of the state
    that this export did not list (kept as they were, so a customer missing from one
    export keeps its stage). ``export`` (``id_column``, ``stage_column``) holds the stages
    the export gave, remembered to tell the CRM's own changes from its lag next time."""
    now_table = final.select(
        pl.col(id_column).cast(pl.String).alias("customer_id"),
        pl.col(stage_column).alias("stage"),
        pl.col(entered_column).alias("stage_entered_at"),
        pl.lit(as_of, dtype=pl.Date).alias(SEEN),
    )
    if export is None:
        now_table = now_table.with_columns(pl.lit(None, dtype=pl.String).alias(EXPORT_STAGE))
    else:
        given = export.select(pl.col(id_column).cast(pl.String).alias("customer_id"),
                              pl.col(stage_column).alias(EXPORT_STAGE))
        now_table = now_table.join(given, on="customer_id", how="left", maintain_order="left")
    if previous is None or previous.height == 0:
        return now_table
    missing = previous.join(now_table.select("customer_id"), on="customer_id", how="anti")
    if EXPORT_STAGE not in missing.columns:
        missing = missing.with_columns(pl.lit(None, dtype=pl.String).alias(EXPORT_STAGE))
    return pl.concat([now_table, missing.select(list(STAGE_TABLE_SCHEMA))])
