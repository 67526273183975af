"""Reading files by their kind: which suffix is read how, and where a row is in a file.

Exports arrive as they come: CSV with or without a BOM, `,` `;` or tab
separated, gzipped, Parquet, XLSX. A format is a suffix registered with a
reader of the whole table (`read_table`) and a lazy scanner (`scan_table`);
adding a format is one `Format` in :data:`FORMATS`.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..errors import DataError, Problem
from .csvtext import check_rows, codec_name, transcode

# -- the formats ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """A kind of file the tool reads, by its suffixes."""

    name: str
    suffixes: tuple[str, ...]  # lower case, the longest first where one ends another
    # the whole table, every value as the file holds it (CSV: all text)
    read: Callable[[Path, str | None], pl.DataFrame]
    # lazily; ``text_columns`` are read as text (ids, timestamps to parse)
    scan: Callable[[Path, str | None, Sequence[str]], pl.LazyFrame]
    lines: bool = False  # a row is a line of text: messages name lines, not rows
    in_folders: bool = True  # a usage folder takes its files of this kind


def _read_csv(path: Path, encoding: str | None) -> pl.DataFrame:
    data, dialect = csv_source(path, encoding)
    return pl.read_csv(data, separator=dialect.separator, infer_schema=False,
                       truncate_ragged_lines=False, raise_if_empty=True)


def _scan_csv(path: Path, encoding: str | None, text_columns: Sequence[str]) -> pl.LazyFrame:
    data, dialect = csv_source(path, encoding)
    overrides = {c: pl.String for c in text_columns if c in dialect.header}
    return pl.scan_csv(data, separator=dialect.separator, schema_overrides=overrides,
                       infer_schema_length=10_000)


CSV = Format("CSV", (".csv.gz", ".tsv.gz", ".csv", ".tsv", ".txt"), _read_csv, _scan_csv,
             lines=True)
PARQUET = Format("Parquet", (".parquet", ".pq"), lambda path, _: pl.read_parquet(path),
                 lambda path, _, __: pl.scan_parquet(path))
EXCEL = Format("Excel", (".xlsx",), lambda path, _: pl.read_excel(path, infer_schema_length=0),
               lambda path, _, __: pl.read_excel(path).lazy(), in_folders=False)
FORMATS: list[Format] = [CSV, PARQUET, EXCEL]


def register(fmt: Format) -> Format:
    """Read files with these suffixes this way, from now on (customers, usage, folders)."""
    taken = {s for f in FORMATS for s in f.suffixes}
    if any(name == fmt.name for name in (f.name for f in FORMATS)) or taken & set(fmt.suffixes):
        raise ValueError(f"a format named {fmt.name!r} or with one of its suffixes exists")
    FORMATS.append(fmt)
    return fmt


def unregister(name: str) -> None:
    FORMATS[:] = [f for f in FORMATS if f.name != name]


def format_of(path: Path) -> Format | None:
    """The format of ``path`` by its suffix; None for a suffix no format has."""
    name = path.name.lower()
    return next((f for f in FORMATS if name.endswith(f.suffixes)), None)


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    for fmt in FORMATS:
        for suffix in fmt.suffixes:
            if name.endswith(suffix):
                return suffix
    return path.suffix.lower()


def unknown_format(path: Path) -> DataError:
    suffixes = ", ".join(s for f in FORMATS for s in f.suffixes if s != ".txt")
    return DataError(Problem(f"unknown file type '{suffix_of(path) or path.name}'",
                             file=str(path), hint=f"use {suffixes}"))


# -- where a row is ---------------------------------------------------------------------------


def line_of_row(path: Path, row: int) -> int | None:
    """The file line of 0-based data row ``row`` (header on line 1), for text files."""
    fmt = format_of(path)
    return row + 2 if fmt is not None and fmt.lines else None


def where(path: Path, row: int) -> str:
    line = line_of_row(path, row)
    return f"line {line}" if line else f"row {row + 1}"


def rows_text(path: Path, rows: list[int], total: int | None = None, limit: int = 5) -> str:
    """``line 2, line 7 ...``: where the first few of ``total`` rows are."""
    total = len(rows) if total is None else total
    return ", ".join(where(path, r) for r in rows[:limit]) + (" ..." if total > limit else "")


def unreadable(path: Path, err: Exception) -> DataError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DataError(Problem(f"cannot read the file: {first}", file=str(path)))


def unparsed(
    path: Path, column: str, found: pl.DataFrame, total: int, what: str, hint: str
) -> DataError:
    """Values that are not ``what``: ``found`` holds (row, value) of the first few."""
    examples = ", ".join(f"{where(path, row)}: {value!r}" for row, value in found.iter_rows())
    return DataError(
        Problem(
            f"{total} value(s) are not {what}: {examples}"
            + (" ..." if total > found.height else ""),
            file=str(path),
            line=line_of_row(path, found.item(0, 0)),
            column=column,
            hint=hint,
        )
    )


# -- CSV sniffing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvDialect:
    separator: str
    header: list[str]


def sniff_csv(path: Path, shown: Path | None = None) -> CsvDialect:
    """Separator and header of a CSV file; clear errors for files we cannot read as text.

    ``shown`` is the file named in messages when ``path`` is a transcoded copy.
    """
    shown = shown or path
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as err:
        raise DataError(
            Problem(f"cannot read the file: {err.strerror or err}", file=str(shown))
        ) from None
    if not head.strip():
        raise DataError(
            Problem("the file is empty: expected a header row and data", file=str(shown))
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            Problem(
                "the file is UTF-16 text; lifecycle reads UTF-8",
                file=str(shown),
                hint="pass --encoding utf-16, or save it as 'CSV UTF-8' in Excel",
            )
        )
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            Problem(
                f"the header is not UTF-8 text (byte {err.start + 1})",
                file=str(shown),
                line=1,
                hint="exports from Excel on Windows are usually cp1252: pass --encoding "
                "cp1252, or save the file as 'CSV UTF-8'",
            )
        ) from None
    if "\x00" in text:
        raise DataError(
            Problem(
                "the file contains NUL bytes: it is not a text export, or it is UTF-16",
                file=str(shown),
                line=1,
                hint="save it as 'CSV UTF-8', or pass --encoding utf-16 if it is UTF-16",
            )
        )
    if path.name.lower().endswith((".tsv", ".tsv.gz")):
        separator = "\t"
    else:
        counts = {sep: _count_outside_quotes(text, sep) for sep in (",", ";", "\t", "|")}
        separator = max(counts, key=lambda s: (counts[s], s == ","))
    header = next(csv.reader(io.StringIO(text), delimiter=separator), [])
    return CsvDialect(separator, header)


def _count_outside_quotes(line: str, sep: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            count += 1
    return count


def _check_header(path: Path, header: list[str]) -> None:
    problems = []
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            problems.append(
                Problem(
                    f"duplicate column '{name}' (columns {seen[name] + 1} and {i + 1})",
                    file=str(path),
                    line=1,
                    hint="rename one of them in the export",
                )
            )
        seen.setdefault(name, i)
        if not name.strip():
            problems.append(Problem(f"column {i + 1} has an empty header", file=str(path), line=1))
    if problems:
        raise DataError(problems)


def csv_source(path: Path, encoding: str | None = None) -> tuple[Path, CsvDialect]:
    """The UTF-8 file to read for the CSV ``path`` and its dialect, after every text check.

    With an ``encoding`` other than UTF-8 that file is a transcoded temporary copy;
    messages still name ``path``. Rows must have as many fields as the header.
    """
    codec = codec_name(encoding)
    data = transcode(path, codec) if codec else path
    dialect = sniff_csv(data, shown=path)
    _check_header(path, dialect.header)
    check_rows(data, dialect.separator, len(dialect.header), shown=path)
    return data, dialect


def read_table(path: Path, encoding: str | None = None) -> pl.DataFrame:
    """Read a whole table as it is (CSV as text), with clear errors.

    ``encoding`` (a Python codec name) applies to CSV files; the default is UTF-8.
    """
    if not path.exists():
        raise DataError(Problem("file not found", file=str(path)))
    if path.is_dir():
        raise DataError(Problem("expected a file, found a folder", file=str(path)))
    fmt = format_of(path)
    if fmt is None:
        raise unknown_format(path)
    try:
        frame = fmt.read(path, encoding)
    except DataError:
        raise
    except pl.exceptions.NoDataError:
        raise DataError(
            Problem("the file is empty: expected a header row and data", file=str(path))
        ) from None
    except (pl.exceptions.PolarsError, OSError, ValueError) as err:
        raise unreadable(path, err) from None
    # trailing blank lines come back as all-null rows
    if frame.width and frame.height:
        frame = frame.filter(~pl.all_horizontal(pl.all().is_null()))
    return frame




def scan_table(path: Path, encoding: str | None = None,
               text_columns: Sequence[str] = ()) -> pl.LazyFrame:
    """Scan a table lazily, with clear errors; ``text_columns`` are read as text."""
    fmt = format_of(path)
    if fmt is None:
        raise unknown_format(path)
    try:
        return fmt.scan(path, encoding, text_columns)
    except DataError:
        raise
    except (pl.exceptions.PolarsError, OSError) as err:
        raise unreadable(path, err) from None
