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
from . import excel
from .csvtext import check_rows, codec_name, transcode
from .options import ReadOptions

# -- the formats ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """A kind of file the tool reads, by its suffixes."""

    name: str
    suffixes: tuple[str, ...]  # lower case, the longest first where one ends another
    # the whole table, every value as the file holds it (CSV: all text)
    read: Callable[[Path, ReadOptions], pl.DataFrame]
    # lazily; ``text_columns`` are read as text (ids, timestamps to parse)
    scan: Callable[[Path, ReadOptions, Sequence[str]], pl.LazyFrame]
    lines: bool = False  # a row is a line of text: messages name lines, not rows
    in_folders: bool = True  # a usage folder takes its files of this kind
    sheets: bool = False  # a workbook: `sheet`, and a header found below a title
    title_lines: bool = False  # `header_row` moves the header below title lines


def _read_csv(path: Path, options: ReadOptions) -> pl.DataFrame:
    data, dialect = csv_source(path, options)
    return pl.read_csv(data, separator=dialect.separator, infer_schema=False,
                       truncate_ragged_lines=False, raise_if_empty=True,
                       skip_rows=options.header_line - 1)


def _scan_csv(path: Path, options: ReadOptions, text_columns: Sequence[str]) -> pl.LazyFrame:
    data, dialect = csv_source(path, options)
    overrides = {c: pl.String for c in text_columns if c in dialect.header}
    return pl.scan_csv(data, separator=dialect.separator, schema_overrides=overrides,
                       infer_schema_length=10_000, skip_rows=options.header_line - 1)


CSV = Format("CSV", (".csv.gz", ".tsv.gz", ".csv", ".tsv", ".txt"), _read_csv, _scan_csv,
             lines=True, title_lines=True)
PARQUET = Format("Parquet", (".parquet", ".pq"), lambda path, _: pl.read_parquet(path),
                 lambda path, _, __: pl.scan_parquet(path))
EXCEL = Format("Excel", (".xlsx",), excel.read, excel.scan, in_folders=False, sheets=True)
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


def line_of_row(path: Path, row: int, header_line: int = 1) -> int | None:
    """The file line of 0-based data row ``row`` (the header on ``header_line``), for text
    files."""
    fmt = format_of(path)
    return row + header_line + 1 if fmt is not None and fmt.lines else None


def where(path: Path, row: int, header_line: int = 1) -> str:
    line = line_of_row(path, row, header_line)
    return f"line {line}" if line else f"row {row + 1}"


def rows_text(path: Path, rows: list[int], total: int | None = None, limit: int = 5,
              header_line: int = 1) -> str:
    """``line 2, line 7 ...``: where the first few of ``total`` rows are."""
    total = len(rows) if total is None else total
    return ", ".join(where(path, r, header_line) for r in rows[:limit]) + (
        " ..." if total > limit else "")


def unreadable(path: Path, err: Exception) -> DataError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DataError(Problem(f"cannot read the file: {first}", file=str(path)))


def unparsed(
    path: Path, column: str, found: pl.DataFrame, total: int, what: str, hint: str,
    header_line: int = 1,
) -> DataError:
    """Values that are not ``what``: ``found`` holds (row, value) of the first few."""
    examples = ", ".join(f"{where(path, row, header_line)}: {value!r}"
                         for row, value in found.iter_rows())
    return DataError(
        Problem(
            f"{total} value(s) are not {what}: {examples}"
            + (" ..." if total > found.height else ""),
            file=str(path),
            line=line_of_row(path, found.item(0, 0), header_line),
            column=column,
            hint=hint,
        )
    )


# -- CSV sniffing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvDialect:
    separator: str
    header: list[str]


def sniff_csv(path: Path, shown: Path | None = None, header_line: int = 1) -> CsvDialect:
    """Separator and header of a CSV file; clear errors for files we cannot read as text.

    ``shown`` is the file named in messages when ``path`` is a transcoded copy; the header
    is on ``header_line``.
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
    head_lines = head.split(b"\n")
    if header_line > len(head_lines) - (0 if head.endswith(b"\n") else 1) and header_line > 1:
        raise DataError(Problem(f"the header_row {header_line} is past the file's first lines",
                                file=str(shown), hint="header_row counts the file's lines"))
    first_line = head_lines[header_line - 1].rstrip(b"\r")
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            Problem(
                f"the header is not UTF-8 text (byte {err.start + 1})",
                file=str(shown),
                line=header_line,
                hint="exports from Excel on Windows are usually cp1252: pass --encoding "
                "cp1252, or save the file as 'CSV UTF-8'",
            )
        ) from None
    if "\x00" in text:
        raise DataError(
            Problem(
                "the file contains NUL bytes: it is not a text export, or it is UTF-16",
                file=str(shown),
                line=header_line,
                hint="save it as 'CSV UTF-8', or pass --encoding utf-16 if it is UTF-16",
            )
        )
    return _dialect(path, text)


def _dialect(path: Path, line: str) -> CsvDialect:
    """The separator that splits this header line most, and its fields."""
    if path.name.lower().endswith((".tsv", ".tsv.gz")):
        separator = "\t"
    else:
        counts = {sep: _count_outside_quotes(line, sep) for sep in (",", ";", "\t", "|")}
        separator = max(counts, key=lambda s: (counts[s], s == ","))
    header = next(csv.reader(io.StringIO(line), delimiter=separator), [])
    return CsvDialect(separator, header)


def _title_lines(path: Path, shown: Path, required: Sequence[str], options: ReadOptions) -> None:
    """A header below title lines: say where it is, and how to tell the rules."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(1 << 16).removeprefix(b"\xef\xbb\xbf")
    for number, raw in enumerate(head.split(b"\n")[: excel.TITLE_ROWS], start=1):
        line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        fields = {f.strip() for f in _dialect(path, line).header}
        if number > 1 and set(required) <= fields:
            raise DataError(Problem(
                f"line 1 is not the header: the header ({', '.join(required)} ...) is on "
                f"line {number}, below what looks like a title", file=str(shown), line=1,
                hint=f"say where the header is, in the rules: "
                f"{options.rules_text('header_row', number)}; or delete the lines above it"))


def _count_outside_quotes(line: str, sep: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            count += 1
    return count


def _check_header(path: Path, header: list[str], line: int = 1) -> None:
    problems = []
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            problems.append(
                Problem(
                    f"duplicate column '{name}' (columns {seen[name] + 1} and {i + 1})",
                    file=str(path),
                    line=line,
                    hint="rename one of them in the export",
                )
            )
        seen.setdefault(name, i)
        if not name.strip():
            problems.append(Problem(f"column {i + 1} has an empty header", file=str(path),
                                    line=line))
    if problems:
        raise DataError(problems)


def csv_source(path: Path, options: ReadOptions | None = None) -> tuple[Path, CsvDialect]:
    """The UTF-8 file to read for the CSV ``path`` and its dialect, after every text check.

    With an ``encoding`` other than UTF-8 that file is a transcoded temporary copy;
    messages still name ``path``. Rows must have as many fields as the header. A header
    below title lines (``header_row`` not given) is an error that says where it is.
    """
    options = options or ReadOptions()
    codec = codec_name(options.encoding)
    data = transcode(path, codec) if codec else path
    dialect = sniff_csv(data, shown=path, header_line=options.header_line)
    if (options.required and options.header_row is None
            and not set(options.required) <= {h.strip() for h in dialect.header}):
        _title_lines(data, path, options.required, options)
    _check_header(path, dialect.header, options.header_line)
    check_rows(data, dialect.separator, len(dialect.header), shown=path,
               skip=options.header_line - 1)
    return data, dialect


def _layout_problem(path: Path, fmt: Format, options: ReadOptions) -> None:
    """A sheet or header row asked of a file that has none."""
    if options.sheet is not None and not fmt.sheets:
        raise DataError(Problem(
            f"a sheet ('{options.sheet}') was chosen, but a {fmt.name} file has no sheets",
            file=str(path), hint="sheets are for Excel workbooks (.xlsx)"))
    if options.header_row is not None and not (fmt.sheets or fmt.title_lines):
        raise DataError(Problem(
            f"header_row applies to CSV and Excel files, not to {fmt.name}", file=str(path)))


def read_table(path: Path, options: ReadOptions | None = None) -> pl.DataFrame:
    """Read a whole table as it is (CSV as text), with clear errors.

    ``options``: the encoding of CSV files (default UTF-8), a workbook's sheet, the header
    row (see :class:`ReadOptions`).
    """
    options = options or ReadOptions()
    if not path.exists():
        raise DataError(Problem("file not found", file=str(path)))
    if path.is_dir():
        raise DataError(Problem("expected a file, found a folder", file=str(path)))
    fmt = format_of(path)
    if fmt is None:
        raise unknown_format(path)
    _layout_problem(path, fmt, options)
    try:
        frame = fmt.read(path, options)
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




def scan_table(path: Path, options: ReadOptions | None = None,
               text_columns: Sequence[str] = ()) -> pl.LazyFrame:
    """Scan a table lazily, with clear errors; ``text_columns`` are read as text."""
    options = options or ReadOptions()
    fmt = format_of(path)
    if fmt is None:
        raise unknown_format(path)
    _layout_problem(path, fmt, options)
    try:
        return fmt.scan(path, options, text_columns)
    except DataError:
        raise
    except (pl.exceptions.PolarsError, OSError) as err:
        raise unreadable(path, err) from None
