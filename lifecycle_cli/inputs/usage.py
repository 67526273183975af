"""Scanning the usage exports: lazily, so usage can be larger than memory."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..columns import ID, TIMESTAMP
from ..errors import DataError, Problem
from ..rules.model import Rules
from ..suggest import did_you_mean
from .formats import PARQUET, format_of, scan_table, unparsed, unreadable
from .mapping import rename_map
from .types import detect_datetime_format, parse_datetime_text, to_local_naive


@dataclass
class Usage:
    """The usage exports as one lazy frame under the rules' names."""

    paths: list[Path]
    frame: pl.LazyFrame  # ID, TIMESTAMP (naive datetime in the rules' zone, may be null), others
    schema: dict[str, pl.DataType]


def expand_usage_paths(specs: list[str | Path]) -> list[Path]:
    """Files from paths, globs and folders (a folder means its Parquet/CSV files)."""
    out: list[Path] = []
    for spec in specs:
        text = str(spec)
        path = Path(text)
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matches:
                raise DataError(Problem("no file matches this pattern", file=text))
            out += matches
        elif path.is_dir():
            matches = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not p.name.startswith(".")
                and (fmt := format_of(p)) is not None and fmt.in_folders
            )
            if not matches:
                raise DataError(Problem("the folder holds no .parquet or .csv files", file=text))
            out += matches
        elif path.exists():
            out.append(path)
        else:
            raise DataError(Problem("file not found", file=text))
    return out


def _scan_one(path: Path, rules: Rules, encoding: str | None) -> pl.LazyFrame:
    # ids and timestamps as text: ids match the customers', timestamps are parsed below
    text = (rules.usage_column(ID), rules.usage_column(TIMESTAMP))
    return scan_table(path, encoding, text_columns=text)


def _sources(
    paths: list[Path], rules: Rules, encoding: str | None
) -> list[tuple[Path, pl.LazyFrame]]:
    """One lazy frame per file, except that Parquet files with the same columns (the parts
    of a folder) share one multi-file scan, which Polars reads faster than a union."""
    out: list[tuple[Path, pl.LazyFrame]] = []
    group: list[Path] = []
    group_schema: object = None

    def flush() -> None:
        if group:
            out.append((group[0], pl.scan_parquet(list(group))))
            group.clear()

    for path in paths:
        if format_of(path) is PARQUET:
            try:
                schema = pl.read_parquet_schema(path)
            except (pl.exceptions.PolarsError, OSError) as err:
                raise unreadable(path, err) from None
            if group and schema != group_schema:
                flush()
            group.append(path)
            group_schema = schema
        else:
            flush()
            out.append((path, _scan_one(path, rules, encoding)))
    flush()
    return out


def scan_usage(
    specs: list[str | Path],
    rules: Rules,
    id_dtype: pl.DataType,
    *,
    encoding: str | None = None,
) -> Usage:
    """Scan usage files lazily; check required columns; normalise id and timestamp.

    ``encoding`` (a Python codec name) applies to CSV files; the default is UTF-8.
    """
    paths = expand_usage_paths(specs)
    frames = []
    problems: list[Problem] = []
    for path, lf in _sources(paths, rules, encoding):
        try:
            schema = lf.collect_schema()
        except (pl.exceptions.PolarsError, OSError) as err:
            problems += unreadable(path, err).problems
            continue
        columns = list(schema)
        try:
            rename = rename_map(columns, rules.columns.usage, path, rules, "usage")
        except DataError as err:
            problems += err.problems
            continue
        for required in (ID, TIMESTAMP):
            ext = rules.usage_column(required)
            if ext not in columns:
                problems.append(
                    Problem(
                        f"the required usage column '{ext}' is missing",
                        file=str(path),
                        line=1,
                        column=ext,
                        hint=(did_you_mean(ext, columns) or "columns: " + ", ".join(columns[:20]))
                        + f'; map it in the rules: columns: {{usage: {{{required}: "..."}}}}',
                    )
                )
        shadowed = [c for c in columns if rules.columns.usage.get(c, c) != c and c not in rename]
        lf = lf.drop(shadowed).rename(rename)
        schema = lf.collect_schema()
        ts_dtype = schema.get(TIMESTAMP)
        if ts_dtype is None or ID not in schema:
            continue
        # Only touch what needs it: an untouched timestamp column lets Polars push window
        # filters into the Parquet scan and skip row groups.
        changes = []
        if schema[ID] != id_dtype:
            changes.append(pl.col(ID).cast(id_dtype, strict=False))
        if ts_dtype == pl.String:
            changes.append(_timestamp_parser(lf, path, rules).alias(TIMESTAMP))
        elif ts_dtype != pl.Datetime("us"):
            changes.append(
                to_local_naive(pl.col(TIMESTAMP), ts_dtype, rules.timezone).alias(TIMESTAMP)
            )
        if changes:
            lf = lf.with_columns(changes)
        frames.append(lf)
    if problems:
        raise DataError(problems)
    frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    try:
        combined = dict(frame.collect_schema())
    except pl.exceptions.PolarsError as err:
        raise DataError(
            Problem(
                f"the usage files do not fit together: {str(err).splitlines()[0]}",
                file=str(paths[0]),
            )
        ) from None
    return Usage(paths=paths, frame=frame, schema=combined)


def _timestamp_parser(lf: pl.LazyFrame, path: Path, rules: Rules) -> pl.Expr:
    """How to read this file's text timestamps; an error lists those that are not ISO.

    The format is taken from a sample, so that each pass over a large CSV parses one
    format; a file that mixes formats falls back to trying each. Blank timestamps are
    not an error here: they are dropped and counted later.
    """
    raw = pl.col(TIMESTAMP).cast(pl.String).str.strip_chars()
    present = raw.is_not_null() & (raw != "")
    sample = lf.select(raw.filter(present).head(1_000)).collect().to_series()
    fmt = detect_datetime_format(sample)
    for attempt in (fmt, None) if fmt is not None else (None,):
        parsed = parse_datetime_text(raw, rules.timezone, attempt)
        bad = lf.with_row_index("__i").filter(present & parsed.is_null())
        found = bad.select("__i", TIMESTAMP).head(5).collect()
        if found.height == 0:
            return parsed
    total = bad.select(pl.len()).collect().item()
    raise unparsed(
        path,
        rules.usage_column(TIMESTAMP),
        found,
        total,
        "ISO dates or datetimes",
        "write timestamps as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
    )
