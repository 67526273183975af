"""Scanning the usage exports: lazily, so usage can be larger than memory.

Usage comes from named sources (``sources:`` in the rules; a plain ``--usage
PATH`` is the source ``usage``), each with its own column mapping, sheet and
header row. A source whose rows carry a key instead of the customer id
(``customer_id: {via: LOOKUP}``) gets its customer from the lookup, joined on
the stream: :meth:`Usage.attach`.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import ID, TIMESTAMP
from ..errors import DataError, Problem
from ..rules.model import USAGE, Rules
from ..suggest import did_you_mean
from .csvtext import tmp_dir
from .formats import CSV, PARQUET, ReadOptions, format_of, scan_table, unparsed, unreadable
from .lookups import LookupTable
from .mapping import rename_map, shadowed
from .types import detect_datetime_format, parse_datetime_text, to_local_naive


@dataclass
class Usage:
    """One usage source's exports as one lazy frame under the rules' names.

    ``rows`` are the rows as scanned: TIMESTAMP (a naive datetime in the rules' zone, may be
    null), ID, or for a source that goes through a lookup the lookup's key, and the other
    columns. :attr:`frame` is the rows with their customer (:meth:`attach`); ``schema`` is
    the columns of :attr:`frame`.
    """

    paths: list[Path]
    rows: pl.LazyFrame
    schema: dict[str, pl.DataType]
    name: str = USAGE
    lookup: LookupTable | None = None
    only: pl.Series | None = None  # the customers whose rows are kept (explain): all if None
    # how the files are read, for an engine that reads them itself (Spark): the rules'
    # column mapping (rules name -> the files' header) and the read options
    columns: dict[str, str] = field(default_factory=dict)
    options: ReadOptions | None = None
    # a table of an engine's catalog (``--usage table:db.events``) instead of files: the
    # engine reads it; ``rows`` is then empty, with the table's columns (`table_usage`)
    table: str | None = None

    def attach(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """``rows`` of this source with their customer: the lookup joined on its key (a
        key the lookup does not have gives a NULL customer id)."""
        if self.lookup is not None:
            rows = rows.join(self.lookup.table.lazy(), on=self.lookup.key, how="left",
                             maintain_order="left")
        if self.only is not None:
            rows = rows.filter(pl.col(ID).is_in(self.only.implode()))
        return rows

    @property
    def frame(self) -> pl.LazyFrame:
        """Every row with its customer id (ID), lazily."""
        return self.attach(self.rows)

    def label(self) -> str:
        """How messages name this source: "the usage export", "the source 'tickets'"."""
        return "the usage export" if self.name == USAGE else f"the source '{self.name}'"


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


def _sources(
    paths: list[Path], options: ReadOptions
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
            # ids, keys and timestamps as text: ids match the customers', keys the lookup's,
            # timestamps are parsed below
            out.append((path, scan_table(path, options, text_columns=options.required)))
    flush()
    return out


def scan_usage(
    specs: list[str | Path],
    rules: Rules,
    id_dtype: pl.DataType,
    *,
    encoding: str | None = None,
    source: str = USAGE,
    lookup: LookupTable | None = None,
) -> Usage:
    """Scan the files of the usage source ``source`` lazily; check required columns;
    normalise id (or the lookup's key) and timestamp.

    ``encoding`` (a Python codec name) applies to CSV files; the default is UTF-8.
    ``lookup``: the lookup table the source's rows go through (``customer_id: {via: ...}``).
    """
    spec = rules.usage_source(source)
    key = lookup.key if lookup is not None else ID
    section: str | tuple[str, ...] = (
        "usage" if source == USAGE and USAGE not in rules.sources
        else ("sources", source, "columns"))
    required = {key: spec.columns.get(key, key), TIMESTAMP: spec.columns.get(TIMESTAMP,
                                                                          TIMESTAMP)}
    options = ReadOptions(encoding=encoding, sheet=spec.sheet, header_row=spec.header_row,
                          required=tuple(required.values()), rules_key=("sources", source))
    paths = expand_usage_paths(specs)
    frames = []
    problems: list[Problem] = []
    label = "usage" if source == USAGE else f"'{source}'"
    for path, lf in _sources(paths, options):
        try:
            schema = lf.collect_schema()
        except (pl.exceptions.PolarsError, OSError) as err:
            problems += unreadable(path, err).problems
            continue
        columns = list(schema)
        try:
            rename = rename_map(columns, spec.columns, path, rules, section,
                                required=(key, TIMESTAMP))
        except DataError as err:
            problems += err.problems
            continue
        for internal, ext in required.items():
            if ext not in columns:
                where = (f"columns: {{usage: {{{internal}: \"...\"}}}}" if section == "usage"
                         else options.rules_text("columns", f"{{{internal}: \"...\"}}"))
                what = (f"the required usage column '{ext}'" if source == USAGE
                        else f"the source {label} needs the column '{ext}'")
                if lookup is not None and internal == key:
                    what += f" (the key of the lookup '{lookup.name}')"
                problems.append(
                    Problem(
                        f"{what} is missing" if source == USAGE else f"{what}; it is missing",
                        file=str(path),
                        line=options.header_line,
                        column=ext,
                        hint=(did_you_mean(ext, columns) or "columns: " + ", ".join(columns[:20]))
                        + f"; map it in the rules: {where}",
                    )
                )
        lf = lf.drop(shadowed(columns, spec.columns, rename)).rename(rename)
        schema = lf.collect_schema()
        ts_dtype = schema.get(TIMESTAMP)
        if ts_dtype is None or key not in schema:
            continue
        # Only touch what needs it: an untouched timestamp column lets Polars push window
        # filters into the Parquet scan and skip row groups.
        changes = []
        if lookup is not None:
            if schema[key] != pl.String:
                changes.append(pl.col(key).cast(pl.String).str.strip_chars())
        elif schema[ID] != id_dtype:
            changes.append(pl.col(ID).cast(id_dtype, strict=False))
        spill = ts_dtype == pl.String and format_of(path) is CSV
        if ts_dtype == pl.String and not spill:
            changes.append(_timestamp_parser(lf, path, rules, required[TIMESTAMP],
                                             options.header_line).alias(TIMESTAMP))
        elif ts_dtype not in (pl.String, pl.Datetime("us")):
            changes.append(
                to_local_naive(pl.col(TIMESTAMP), ts_dtype, rules.timezone).alias(TIMESTAMP)
            )
        if changes:
            lf = lf.with_columns(changes)
        if spill:
            try:
                lf = _spill_csv(lf, path, rules, required[TIMESTAMP], options.header_line)
            except DataError as err:
                problems += err.problems
                continue
        frames.append(lf)
    if problems:
        raise DataError(problems)
    frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    try:
        usage = Usage(paths=paths, rows=frame, schema={}, name=source, lookup=lookup,
                      columns=dict(spec.columns), options=options)
        usage.schema = dict(usage.frame.collect_schema())
    except pl.exceptions.PolarsError as err:
        raise DataError(
            Problem(
                f"the {label} files do not fit together: {str(err).splitlines()[0]}",
                file=str(paths[0]),
            )
        ) from None
    return usage


def table_usage(
    table: str,
    columns: dict[str, pl.DataType],
    rules: Rules,
    id_dtype: pl.DataType,
    *,
    source: str = USAGE,
    lookup: LookupTable | None = None,
) -> Usage:
    """A usage source that is a table of an engine's catalog (``--usage table:db.events``,
    read by Spark): its ``columns`` (the table's names and types, as the catalog gives
    them) mapped to the rules' names as a file's header is, the id and the timestamp
    checked. The rows stay in the catalog: :attr:`Usage.rows` is empty."""
    spec = rules.usage_source(source)
    key = lookup.key if lookup is not None else ID
    section: str | tuple[str, ...] = (
        "usage" if source == USAGE and USAGE not in rules.sources
        else ("sources", source, "columns"))
    shown = Path(f"table:{table}")
    names = list(columns)
    rename = rename_map(names, spec.columns, shown, rules, section, required=(key, TIMESTAMP))
    problems = []
    for internal in (key, TIMESTAMP):
        header = spec.columns.get(internal, internal)
        if header not in names:
            problems.append(Problem(
                f"the table '{table}' has no column '{header}' (the usage's {internal})",
                column=header, file=getattr(rules.source, "file", None),
                hint=(did_you_mean(header, names) or "columns: " + ", ".join(names[:20]))
                + "; map it in the rules' columns"))
    if problems:
        raise DataError(problems)
    hidden = set(shadowed(names, spec.columns, rename))
    schema = {rename.get(n, n): t for n, t in columns.items() if n not in hidden}
    schema[TIMESTAMP] = pl.Datetime("us")
    if lookup is not None:
        schema[key] = pl.String()
    else:
        schema[ID] = id_dtype
    rows = pl.LazyFrame(schema=schema)
    usage = Usage(paths=[], rows=rows, schema={}, name=source, lookup=lookup,
                  columns=dict(spec.columns), table=table)
    usage.schema = dict(usage.frame.collect_schema())
    return usage


BAD_TIMESTAMP = "__bad_timestamp"


def _spill_csv(lf: pl.LazyFrame, path: Path, rules: Rules, column: str,
               header_line: int) -> pl.LazyFrame:
    """The CSV's rows parsed once, into a temporary Parquet file that every later pass
    reads: timestamps parsed (their format taken from a sample), every other column
    converted. Parquet lets the passes read only their columns and skip the row groups
    outside their window; parsing the text again in each pass cost five times more
    (bench/README.md). Raise the error listing timestamps that are not ISO."""
    raw, present, attempts = _timestamp_formats(lf)
    target = tmp_dir() / (path.name + ".parquet")
    order = lf.collect_schema().names()
    for attempt in attempts:
        parsed = parse_datetime_text(raw, rules.timezone, attempt)
        # parsed once; a text that did not parse is kept (blank ones are told apart below)
        spill = lf.with_columns(parsed.alias(BAD_TIMESTAMP)).select(
            *[pl.col(BAD_TIMESTAMP).alias(TIMESTAMP) if c == TIMESTAMP else c for c in order],
            pl.when(pl.col(BAD_TIMESTAMP).is_null()).then(pl.col(TIMESTAMP))
            .alias(BAD_TIMESTAMP))
        try:
            spill.sink_parquet(target, compression="lz4")
        except OSError as err:
            raise DataError(Problem(
                f"cannot write a temporary copy of the file to {target.parent}: "
                f"{err.strerror or err}", file=str(path),
                hint="set TMPDIR to a folder on a disk with room for it")) from None
        except pl.exceptions.PolarsError as err:
            raise unreadable(path, err) from None
        spilled = pl.scan_parquet(target)
        unparsed_text = pl.col(BAD_TIMESTAMP).str.strip_chars()
        if not spilled.select((unparsed_text != "").sum()).collect().item():
            return spilled.drop(BAD_TIMESTAMP)
    raise _not_iso(lf.with_row_index("__i").filter(present & parsed.is_null()), path, column,
                   header_line)


def _timestamp_parser(lf: pl.LazyFrame, path: Path, rules: Rules, column: str,
                      header_line: int) -> pl.Expr:
    """How to read this file's text timestamps; an error lists those that are not ISO.

    The format is taken from a sample, so that each pass over a large CSV parses one
    format; a file that mixes formats falls back to trying each. Blank timestamps are
    not an error here: they are dropped and counted later.
    """
    raw, present, attempts = _timestamp_formats(lf)
    for attempt in attempts:
        parsed = parse_datetime_text(raw, rules.timezone, attempt)
        bad = lf.with_row_index("__i").filter(present & parsed.is_null())
        if bad.select("__i").head(1).collect().height == 0:
            return parsed
    raise _not_iso(bad, path, column, header_line)


def _timestamp_formats(lf: pl.LazyFrame) -> tuple[pl.Expr, pl.Expr, tuple[str | None, ...]]:
    """The text timestamps (stripped), which of them are not blank, and the formats to try
    in turn: the one a sample follows, then all of them (a file that mixes formats)."""
    raw = pl.col(TIMESTAMP).cast(pl.String).str.strip_chars()
    present = raw.is_not_null() & (raw != "")
    sample = lf.select(raw.filter(present).head(1_000)).collect().to_series()
    fmt = detect_datetime_format(sample)
    return raw, present, (fmt, None) if fmt is not None else (None,)


def _not_iso(bad: pl.LazyFrame, path: Path, column: str, header_line: int) -> DataError:
    """The error listing the rows of ``bad`` (with their index "__i"): timestamps that are
    not ISO."""
    found = bad.select("__i", TIMESTAMP).head(5).collect()
    total = bad.select(pl.len()).collect().item()
    return unparsed(path, column, found, total, "ISO dates or datetimes",
                    "write timestamps as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS", header_line)
