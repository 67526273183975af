"""Writing output tables: CSV, Parquet, XLSX, or CSV to a stream.

Every file is written to a temporary name in its own folder, flushed to disk,
and renamed over the target only when all of a run's files are complete, so
a crash or a full disk never leaves a half-written output. Outputs never
land on an input file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

import polars as pl

from ..errors import OutputError, Problem
from ..files import fsync, fsync_dir, remove_debris, temp_path
from .xlsx import Kind, write_workbook

FORMATS = ("csv", "parquet", "xlsx")
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
XLSX_MAX_ROWS = 1_048_575  # one row for the header
WORKBOOK_NAME = "lifecycle.xlsx"


def output_paths(
    tables: Iterable[str], out_dir: Path, fmt: str, workbook_name: str = WORKBOOK_NAME
) -> dict[str, Path]:
    """Where each table goes: ``customers.csv``, ... or one workbook for xlsx."""
    if fmt == "xlsx":
        return {name: out_dir / workbook_name for name in tables}
    return {name: out_dir / f"{name}.{fmt}" for name in tables}


def check_folder(out_dir: Path, tables: Iterable[str], fmt: str = "csv", *,
                 inputs: Iterable[Path] = (), workbook_name: str = WORKBOOK_NAME
                 ) -> dict[str, Path]:
    """What `write_tables` refuses, found before anything is written (a command that writes
    several outputs checks them all first): the format, an input in the way, a file where
    the folder goes. The paths the tables would take."""
    if fmt not in FORMATS:
        raise OutputError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    targets = output_paths(tables, out_dir, fmt, workbook_name)
    check_not_inputs(targets.values(), inputs)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(Problem("the output path exists and is not a folder", file=str(out_dir)))
    return targets


def check_not_inputs(targets: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Refuse to write over an input file."""
    problems = []
    resolved_inputs = {Path(p).resolve(): Path(p) for p in inputs}
    for target in set(targets):
        resolved = target.resolve()
        clash = resolved_inputs.get(resolved)
        if clash is None and target.exists():
            clash = next(
                (p for p in resolved_inputs.values() if p.exists() and os.path.samefile(p, target)),
                None,
            )
        if clash is not None:
            problems.append(
                Problem(
                    f"writing {target} would replace the input file {clash}",
                    file=str(target),
                    hint="choose another --out folder",
                )
            )
    if problems:
        raise OutputError(problems)


def write_tables(
    tables: dict[str, pl.DataFrame],
    out_dir: str | Path,
    fmt: str = "csv",
    *,
    inputs: Iterable[Path] = (),
    created: dt.date | None = None,
    text_columns: Iterable[str] = (),
    workbook_name: str = WORKBOOK_NAME,
    kinds: Mapping[str, Kind] | None = None,
) -> list[Path]:
    """Write ``tables`` into ``out_dir`` atomically; return the written paths.

    ``text_columns`` (ids) stay text in a workbook, where other text columns whose
    values are all numbers, dates or booleans become typed cells. With xlsx, every
    table is a sheet of one workbook, ``workbook_name``; ``kinds`` declares the kind of
    columns whose type does not tell how to show them (shares: see `render.xlsx`).
    """
    out_dir = Path(out_dir)
    targets = check_folder(out_dir, tables, fmt, inputs=inputs, workbook_name=workbook_name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            Problem(f"cannot create the output folder: {err.strerror}", file=str(out_dir))
        ) from None
    if fmt == "xlsx":
        for name, frame in tables.items():
            if frame.height > XLSX_MAX_ROWS:
                raise OutputError(
                    f"the {name} table has {frame.height:,} rows, more than a sheet "
                    "holds; use --format csv or parquet"
                )
    for target in set(targets.values()):
        remove_debris(target)
    pending: list[tuple[Path, Path]] = []
    try:
        if fmt == "xlsx":
            target = targets[next(iter(tables))]
            temp = temp_path(target)
            pending.append((temp, target))
            write_workbook(tables, temp, created=created, text_columns=text_columns,
                           kinds=kinds)
            fsync(temp)
        else:
            for name, frame in tables.items():
                target = targets[name]
                temp = temp_path(target)
                pending.append((temp, target))
                if fmt == "csv":
                    write_csv(frame, temp)
                else:
                    # level 1: 0.64 s, not 0.81 s, for the 4 tables of 1M customers; 4% larger
                    frame.write_parquet(temp, compression="zstd", compression_level=1,
                                        statistics=True)
                fsync(temp)
        for temp, target in pending:
            os.replace(temp, target)
        fsync_dir(out_dir)
    except OSError as err:
        raise OutputError(
            Problem(f"cannot write the outputs: {err.strerror or err}", file=str(out_dir))
        ) from None
    finally:
        for temp, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    return list(dict.fromkeys(targets.values()))


def write_csv(frame: pl.DataFrame, target: str | Path | IO[str] | IO[bytes]) -> None:
    """CSV as spreadsheets read it: ISO dates, blank for NULL, UTF-8."""
    frame.write_csv(target, date_format=DATE_FORMAT, datetime_format=DATETIME_FORMAT, null_value="")
