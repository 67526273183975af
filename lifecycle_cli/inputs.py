"""Reading the customers and usage exports.

Exports arrive as they come: CSV with or without a BOM, `,` `;` or tab
separated, gzipped, Parquet, XLSX. Customers are read eagerly (one row per
customer) and kept twice: ``raw``, exactly as read, for the output, and
``typed``, under the rules' column names with inferred types, for the rules.
Usage is only ever scanned lazily, so it can be larger than memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .csvtext import check_rows, codec_name, transcode
from .errors import DataError, Problem
from .rules import Rules, did_you_mean

ROW = "__row"  # 0-based input row index kept alongside the customers
ID = "customer_id"
STAGE = "stage"
ENTERED = "stage_entered_at"
TIMESTAMP = "timestamp"
OPTIONAL_COLUMNS = (STAGE, ENTERED)

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx",)

_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_BOOL_TEXT = {"true": True, "false": False}
_INT_RE = r"^[+-]?(0|[1-9][0-9]*)$"
_FLOAT_RE = r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES, *EXCEL_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def line_of_row(path: Path, row: int) -> int | None:
    """The file line of 0-based data row ``row`` (header on line 1), for text files."""
    return row + 2 if suffix_of(path) in CSV_SUFFIXES else None


def _where(path: Path, row: int) -> str:
    line = line_of_row(path, row)
    return f"line {line}" if line else f"row {row + 1}"


def _rows_text(path: Path, rows: list[int], total: int | None = None, limit: int = 5) -> str:
    """``line 2, line 7 ...``: where the first few of ``total`` rows are."""
    total = len(rows) if total is None else total
    return ", ".join(_where(path, r) for r in rows[:limit]) + (" ..." if total > limit else "")


def _unreadable(path: Path, err: Exception) -> DataError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return DataError(Problem(f"cannot read the file: {first}", file=str(path)))


def _unparsed(
    path: Path, column: str, found: pl.DataFrame, total: int, what: str, hint: str
) -> DataError:
    """Values that are not ``what``: ``found`` holds (row, value) of the first few."""
    examples = ", ".join(f"{_where(path, row)}: {value!r}" for row, value in found.iter_rows())
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


# -- customers ------------------------------------------------------------------------------


@dataclass
class Customers:
    """The customers export, as read and as the rules see it."""

    path: Path
    raw: pl.DataFrame  # exactly as read: the export's own columns and values
    typed: pl.DataFrame  # rules' names, inferred types, ROW; stage as text, entered as date
    external: dict[str, str] = field(default_factory=dict)  # rules name -> export header
    warnings: list[str] = field(default_factory=list)  # what reading the export decided

    @property
    def id_dtype(self) -> pl.DataType:
        return self.typed.schema[ID]

    def where(self, row: int) -> str:
        return _where(self.path, row)


def read_table(path: Path, encoding: str | None = None) -> pl.DataFrame:
    """Read a whole table as it is (CSV as text), with clear errors.

    ``encoding`` (a Python codec name) applies to CSV files; the default is UTF-8.
    """
    if not path.exists():
        raise DataError(Problem("file not found", file=str(path)))
    if path.is_dir():
        raise DataError(Problem("expected a file, found a folder", file=str(path)))
    suffix = suffix_of(path)
    try:
        if suffix in CSV_SUFFIXES:
            data, dialect = csv_source(path, encoding)
            frame = pl.read_csv(
                data,
                separator=dialect.separator,
                infer_schema=False,
                truncate_ragged_lines=False,
                raise_if_empty=True,
            )
        elif suffix in PARQUET_SUFFIXES:
            frame = pl.read_parquet(path)
        elif suffix in EXCEL_SUFFIXES:
            frame = pl.read_excel(path, infer_schema_length=0)
        else:
            raise DataError(
                Problem(
                    f"unknown file type '{suffix or path.name}'",
                    file=str(path),
                    hint="use .csv, .tsv, .csv.gz, .parquet or .xlsx",
                )
            )
    except DataError:
        raise
    except pl.exceptions.NoDataError:
        raise DataError(
            Problem("the file is empty: expected a header row and data", file=str(path))
        ) from None
    except (pl.exceptions.PolarsError, OSError, ValueError) as err:
        raise _unreadable(path, err) from None
    # trailing blank lines come back as all-null rows
    if frame.width and frame.height:
        frame = frame.filter(~pl.all_horizontal(pl.all().is_null()))
    return frame


def _rename_map(
    frame_columns: list[str], mapping: dict[str, str], path: Path, rules: Rules, section: str
) -> dict[str, str]:
    """export header -> rules name; error for mapped headers that are missing."""
    problems = []
    rename: dict[str, str] = {}
    for internal, external in mapping.items():
        if internal == external:
            continue
        if external not in frame_columns:
            if internal in OPTIONAL_COLUMNS or internal in (ID, TIMESTAMP):
                continue  # absent optional columns are appended; required ones reported later
            problems.append(
                rules.problem(
                    f"column '{external}' (mapped to '{internal}') is not in {path}",
                    "columns",
                    section,
                    internal,
                    hint=did_you_mean(external, frame_columns)
                    or "columns in the file: " + ", ".join(frame_columns[:20]),
                )
            )
        else:
            rename[external] = internal
    if problems:
        raise DataError(problems)
    return rename


_SAMPLE = 2_000

# Cells that spreadsheets and exports write for "no value". In a column that is
# otherwise numeric, boolean or a date they count as NULL for the rules.
NULL_MARKERS = ("n/a", "na", "#n/a", "null", "none", "nan", "-")
_SLASHED_DATE_RE = r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$"
DAY_FIRST, MONTH_FIRST = "%d/%m/%Y", "%m/%d/%Y"
_KINDS = ("bool", "int", "float", "date", "format", "day_first", "month_first", "datetime")


@dataclass(frozen=True)
class TypeNote:
    """Something :func:`infer_types` decided that the user should hear about."""

    column: str
    kind: str  # "null_markers" | "ambiguous_dates" | "day_first" | "month_first"
    count: int = 0
    example: str | None = None


def is_null_marker(v: pl.Expr) -> pl.Expr:
    return v.str.to_lowercase().is_in(list(NULL_MARKERS))


def slashed_date(v: pl.Expr, fmt: str) -> pl.Expr:
    """``03/04/2024``, ``3.4.2024`` or ``03-04-2024`` read with ``fmt`` (DAY_FIRST or
    MONTH_FIRST); NULL where the value is not such a date or does not fit ``fmt``."""
    return (
        pl.when(v.str.contains(_SLASHED_DATE_RE))
        .then(v.str.replace_all(r"[.-]", "/"))
        .str.to_date(fmt, strict=False)
    )


def _type_probes(v: pl.Expr, date_format: str | None = None) -> dict[str, pl.Expr]:
    """For each candidate type, whether a non-blank text value reads as it."""
    probes = {
        "bool": v.str.to_lowercase().is_in(list(_BOOL_TEXT)),
        "int": v.str.contains(_INT_RE),
        "float": v.str.contains(_FLOAT_RE),
        "date": v.str.contains(_DATE_RE) & v.str.to_date("%Y-%m-%d", strict=False).is_not_null(),
        "datetime": v.str.contains(_DATETIME_RE),
    }
    if date_format is None:
        probes["day_first"] = slashed_date(v, DAY_FIRST).is_not_null()
        probes["month_first"] = slashed_date(v, MONTH_FIRST).is_not_null()
    else:
        probes["format"] = v.str.to_date(date_format, strict=False).is_not_null()
    return probes


def infer_types(
    frame: pl.DataFrame,
    skip: set[str],
    timezone: str = "UTC",
    *,
    null_markers: bool = False,
    local_dates: bool = False,
    date_format: str | None = None,
    notes: list[TypeNote] | None = None,
) -> pl.DataFrame:
    """Give text columns their natural type when every value agrees.

    Blank cells are NULL. A column is boolean when all values are true/false
    in any case, integer when all are integers without leading zeros (so ids
    and zip codes like 00123 stay text), then float, ISO date, ISO datetime.
    A sample of each column picks the candidate types first, so that free
    text (names, notes) costs one look at a few rows, not a scan.

    For exports (not our own outputs), three more things:
    with ``null_markers``, cells like ``N/A`` or ``-`` count as blank in a column
    that is otherwise typed (a text column keeps them); with ``local_dates``, a
    column of ``DD/MM/YYYY`` or ``MM/DD/YYYY`` dates is a date column when only one
    reading fits every value (both fitting is noted as ``ambiguous_dates`` and the
    column stays text); ``date_format`` (strftime) replaces that guess.
    ``notes`` receives what was decided, for warnings and errors.
    """
    text_cols = [c for c, t in frame.schema.items() if t == pl.String and c not in skip]
    if not text_cols:
        return frame
    local_dates = local_dates or date_format is not None

    def probes(v: pl.Expr) -> dict[str, pl.Expr]:
        found = _type_probes(v, date_format)
        if not local_dates:
            for kind in ("day_first", "month_first", "format"):
                found.pop(kind, None)
        return found

    def usable(stripped: pl.Expr) -> pl.Expr:
        keep = stripped != ""
        return keep & ~is_null_marker(stripped) if null_markers else keep

    def present(expr: pl.Expr) -> pl.Expr:
        stripped = expr.str.strip_chars()
        return stripped.filter(usable(stripped))

    sampled = frame.select(
        [
            probe.all().alias(f"{c}\x00{kind}")
            for c in text_cols
            for kind, probe in probes(present(pl.col(c).head(_SAMPLE))).items()
        ]
    ).row(0, named=True)
    candidates = {
        c: [k for k in _KINDS if sampled.get(f"{c}\x00{k}")] for c in text_cols
    }
    full_probes = [
        probes(present(pl.col(c)))[kind].all().alias(f"{c}\x00{kind}")
        for c in text_cols
        for kind in candidates[c]
    ] + [present(pl.col(c)).len().alias(f"{c}\x00n") for c in text_cols if candidates[c]]
    if null_markers:
        full_probes += [
            is_null_marker(pl.col(c).str.strip_chars()).sum().alias(f"{c}\x00markers")
            for c in text_cols
            if candidates[c]
        ]
    full = frame.select(full_probes).row(0, named=True) if full_probes else {}
    casts = []
    for c in text_cols:
        kinds = [k for k in candidates[c] if full[f"{c}\x00{k}"]]
        if "day_first" in kinds and "month_first" in kinds:
            # 03/04/2024 could be either; it matters only if some day and month differ
            v = present(pl.col(c))
            differ = frame.select(
                (slashed_date(v, DAY_FIRST) != slashed_date(v, MONTH_FIRST)).any()
            ).item()
            if differ:
                if notes is not None:
                    notes.append(TypeNote(c, "ambiguous_dates"))
                continue  # text stays as it is
            kinds.remove("month_first")
        kind = kinds[0] if kinds else None
        stripped = pl.col(c).str.strip_chars()
        v = pl.when(usable(stripped)).then(stripped)
        if kind is None:
            continue  # text stays as it is
        markers = full.get(f"{c}\x00markers", 0)
        if full[f"{c}\x00n"] == 0:
            if markers:
                continue  # nothing but N/A and the like: text, not an empty column
            casts.append(pl.lit(None).alias(c))  # every cell blank: no type to speak of
            continue
        if markers and notes is not None:
            example = frame.select(pl.col(c).filter(is_null_marker(stripped)).first()).item()
            notes.append(TypeNote(c, "null_markers", markers, example))
        if kind in ("day_first", "month_first") and notes is not None:
            notes.append(TypeNote(c, kind))
        if kind == "bool":
            casts.append(
                v.str.to_lowercase()
                .replace_strict(_BOOL_TEXT, default=None, return_dtype=pl.Boolean)
                .alias(c)
            )
        elif kind == "int":
            casts.append(v.cast(pl.Int64, strict=False).alias(c))
        elif kind == "float":
            casts.append(v.cast(pl.Float64, strict=False).alias(c))
        elif kind == "date":
            casts.append(v.str.to_date("%Y-%m-%d", strict=False).alias(c))
        elif kind == "format":
            casts.append(v.str.to_date(str(date_format), strict=False).alias(c))
        elif kind in ("day_first", "month_first"):
            fmt = DAY_FIRST if kind == "day_first" else MONTH_FIRST
            casts.append(slashed_date(v, fmt).alias(c))
        else:
            casts.append(parse_datetime_text(v, timezone).alias(c))
    return frame.with_columns(casts) if casts else frame


def parse_datetime_text(expr: pl.Expr, timezone: str, fmt: str | None = None) -> pl.Expr:
    """Text -> naive datetime in ``timezone``: ISO dates and datetimes, with or without a zone.

    With ``fmt`` (one of the ISO formats, see :func:`detect_datetime_format`) only that
    format is tried, which is several times faster than trying them all.
    """
    if fmt in _ZONED_FORMATS:
        zoned_one = expr.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
        return zoned_one.dt.convert_time_zone(timezone).dt.replace_time_zone(None)
    if fmt is not None:
        return expr.str.to_datetime(fmt, strict=False, time_unit="us")
    naive = pl.coalesce(
        [expr.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS]
    )
    zoned = pl.coalesce(
        [
            expr.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
            for f in _ZONED_FORMATS
        ]
    )
    return pl.coalesce([naive, zoned.dt.convert_time_zone(timezone).dt.replace_time_zone(None)])


def detect_datetime_format(sample: pl.Series) -> str | None:
    """The one ISO format every value of ``sample`` (stripped, non-blank text) follows."""
    for fmt in (*_NAIVE_FORMATS, *_ZONED_FORMATS):
        parsed = sample.to_frame("v").select(parse_datetime_text(pl.col("v"), "UTC", fmt))
        if parsed.to_series().null_count() == 0:
            return fmt
    return None


def to_local_naive(expr: pl.Expr, dtype: pl.DataType, timezone: str) -> pl.Expr:
    """A datetime column in the rules' time zone, without zone; text is parsed."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            return (
                expr.dt.convert_time_zone(timezone)
                .dt.replace_time_zone(None)
                .dt.cast_time_unit("us")
            )
        return expr.dt.cast_time_unit("us")
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("us"))
    if dtype == pl.String:
        return parse_datetime_text(expr.str.strip_chars(), timezone)
    return expr.cast(pl.Datetime("us"), strict=False)


def _check_parsed(
    typed: pl.DataFrame,
    source: str,
    parsed: pl.Series,
    path: Path,
    column: str,
    what: str,
    hint: str,
) -> None:
    """Raise for values of ``source`` that are there but did not parse (``parsed`` is NULL)."""
    raw = typed[source]
    if parsed.null_count() == raw.null_count():
        return  # every value that was there parsed
    text = raw.cast(pl.String).str.strip_chars()
    bad = typed.filter(
        raw.is_not_null() & (text != "") & ~text.str.to_lowercase().is_in(NULL_MARKERS)
        & parsed.is_null()
    )
    if bad.height:
        raise _unparsed(path, column, bad.select(ROW, source).head(5), bad.height, what, hint)


def read_customers(
    path: str | Path,
    rules: Rules,
    *,
    problems_out: list[Problem] | None = None,
    encoding: str | None = None,
    keep_unknown_stages: bool = False,
) -> Customers:
    """Read and check the customers export; raise :class:`DataError` listing what is wrong.

    ``keep_unknown_stages``: a stage the rules don't name is kept as it is instead of
    being an error (`check` reports those customers).

    With ``problems_out``, problems in the rows (ids, stages, dates) are added
    to that list instead and the customers are returned as far as they could
    be read, so that `validate` can go on and report everything at once.
    ``encoding`` (a Python codec name such as ``cp1252``) applies to CSV files.
    """
    path = Path(path)
    raw = read_table(path, encoding)
    if raw.height == 0:
        raise DataError(Problem("the file has a header but no customers", file=str(path)))
    mapping = rules.columns.customers
    rename = _rename_map(raw.columns, mapping, path, rules, "customers")
    external = {
        ID: rules.customer_column(ID),
        STAGE: rules.customer_column(STAGE),
        ENTERED: rules.customer_column(ENTERED),
    }
    if external[ID] not in raw.columns:
        raise DataError(
            Problem(
                f"the required column '{external[ID]}' is missing",
                file=str(path),
                line=1,
                column=external[ID],
                hint=(
                    did_you_mean(external[ID], raw.columns)
                    or _id_like(raw.columns)
                    or "columns: " + ", ".join(raw.columns[:20])
                )
                + "; or map your id column in the rules: "
                'columns: {customers: {customer_id: "..."}}',
            )
        )
    # a column named like a rules name that the mapping gives to another column is hidden
    shadowed = [c for c in raw.columns if mapping.get(c, c) != c and c not in rename]
    typed = raw.drop(shadowed).rename(rename)
    notes: list[TypeNote] = []
    typed = infer_types(
        typed,
        skip={ID, STAGE, ENTERED},
        timezone=rules.timezone,
        null_markers=True,
        local_dates=True,
        date_format=rules.date_format,
        notes=notes,
    )
    # datetimes with a zone are read in the rules' zone, like usage timestamps
    typed = typed.with_columns(
        to_local_naive(pl.col(c), t, rules.timezone).alias(c)
        for c, t in typed.schema.items()
        if isinstance(t, pl.Datetime) and t.time_zone and c != ENTERED
    )
    typed = typed.with_row_index(ROW)
    problems: list[Problem] = []
    warnings: list[str] = []
    for note in notes:
        column = next((e for e, i in rename.items() if i == note.column), note.column)
        if note.kind == "ambiguous_dates":
            problems.append(_ambiguous_dates(typed, note.column, path, column))
        elif note.kind == "null_markers":
            warnings.append(
                f"column '{column}': {note.count:,} value(s) such as {note.example!r} "
                "read as empty (NULL); the output keeps them as they are"
            )
        else:
            order = "DD/MM/YYYY" if note.kind == "day_first" else "MM/DD/YYYY"
            warnings.append(f"column '{column}': dates read as {order}, the only reading "
                            "that fits every value")

    ids = typed[ID]
    if ids.dtype == pl.String:
        ids_blank = ids.is_null() | (ids.str.strip_chars() == "")
    else:
        ids_blank = ids.is_null()
    if ids_blank.any():
        rows = typed.filter(ids_blank)[ROW].to_list()
        problems.append(
            Problem(
                f"{len(rows)} customer(s) have an empty id: {_rows_text(path, rows)}",
                file=str(path),
                line=line_of_row(path, rows[0]),
                column=external[ID],
                hint="every customer needs a unique id",
            )
        )
    present_ids = typed.filter(~ids_blank)
    unique = present_ids[ID].n_unique() == present_ids.height  # cheap; details only if not
    dupes = (
        pl.DataFrame()
        if unique
        else (
            present_ids.group_by(ID)
            .agg(pl.col(ROW).sort().alias("rows"), pl.len())
            .filter(pl.col("len") > 1)
            .sort(pl.col("rows").list.first())
        )
    )
    if dupes.height:
        shown = "; ".join(
            f"{cid!r} on {_rows_text(path, rows, limit=3)}"
            for cid, rows in dupes.select(ID, "rows").head(5).iter_rows()
        )
        problems.append(
            Problem(
                f"{dupes.height} customer id(s) appear more than once: {shown}"
                + (" ..." if dupes.height > 5 else ""),
                file=str(path),
                line=line_of_row(path, dupes["rows"][0][0]),
                column=external[ID],
                hint="remove the duplicate rows from the export",
            )
        )

    # stage: text, blank means none
    if STAGE in typed.columns:
        stage = pl.col(STAGE).cast(pl.String).str.strip_chars()
        typed = typed.with_columns(pl.when(stage != "").then(stage).alias(STAGE))
        if not keep_unknown_stages:
            problems += _unknown_stages(typed, rules, path, external[STAGE])
    else:
        typed = typed.with_columns(pl.lit(None, dtype=pl.String).alias(STAGE))

    # stage_entered_at: a date
    if ENTERED in typed.columns:
        known = len(problems)
        parsed = _entered_dates(typed, rules, path, external[ENTERED], problems, warnings)
        if len(problems) == known:  # after "ambiguous dates", "not dates" would be noise
            try:
                _check_parsed(
                    typed,
                    ENTERED,
                    parsed,
                    path,
                    external[ENTERED],
                    "dates",
                    "write dates as YYYY-MM-DD, or set date_format in the rules",
                )
            except DataError as err:
                problems += err.problems
        typed = typed.with_columns(parsed)
    else:
        typed = typed.with_columns(pl.lit(None, dtype=pl.Date).alias(ENTERED))

    if problems and problems_out is None:
        raise DataError(problems)
    if problems_out is not None:
        problems_out.extend(problems)
    return Customers(
        path=path,
        raw=raw,
        typed=typed,
        external=external,
        warnings=warnings,
    )


# Excel stores dates as days since 1899-12-30; 20000..73050 is 1954-10-03..2099-12-31.
EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_SERIALS = (20_000, 73_050)


def _entered_dates(
    typed: pl.DataFrame,
    rules: Rules,
    path: Path,
    column: str,
    problems: list[Problem],
    warnings: list[str],
) -> pl.Series:
    """``stage_entered_at`` as dates. Text may be ISO, the rules' ``date_format``,
    DD/MM/YYYY or MM/DD/YYYY when only one of them fits every such value, or an
    Excel serial day number; N/A and the like are empty. Values that are none of
    these stay NULL here and :func:`_check_parsed` reports them."""
    dtype = typed.schema[ENTERED]
    if dtype != pl.String:
        entered = to_local_naive(pl.col(ENTERED), dtype, rules.timezone).dt.date()
        return typed.select(entered.alias(ENTERED))[ENTERED]
    stripped = pl.col(ENTERED).str.strip_chars()
    text = pl.when(stripped != "").then(stripped)
    iso = parse_datetime_text(text, rules.timezone).dt.date()
    first = typed.select(iso.alias(ENTERED), (text.is_not_null() & iso.is_null()).alias("odd"))
    if not first["odd"].any():
        return first[ENTERED]  # the usual case: ISO dates, or blank
    marker = is_null_marker(stripped)
    markers = typed.filter(marker)[ENTERED]
    if markers.len():
        warnings.append(
            f"column '{column}': {markers.len():,} value(s) such as {markers[0]!r} read as empty"
        )
    text = pl.when((stripped != "") & ~marker).then(stripped)
    readings = [iso]
    if rules.date_format:
        readings.append(text.str.to_date(rules.date_format, strict=False))
    else:
        day, month = slashed_date(text, DAY_FIRST), slashed_date(text, MONTH_FIRST)
        slashed = text.str.contains(_SLASHED_DATE_RE)
        stats = typed.select(
            slashed.sum().alias("n"),
            (slashed & day.is_null()).any().alias("not_day"),
            (slashed & month.is_null()).any().alias("not_month"),
            (day != month).any().alias("differ"),
        ).row(0, named=True)
        if stats["n"] and not stats["not_day"] and not stats["not_month"] and stats["differ"]:
            problems.append(_ambiguous_dates(typed, ENTERED, path, column))
        elif stats["n"] and not stats["not_day"]:
            readings.append(day)
        elif stats["n"] and not stats["not_month"]:
            readings.append(month)
    serial = (
        pl.when(text.str.contains(r"^\d{5}(\.0+)?$"))
        .then(text.cast(pl.Float64, strict=False).cast(pl.Int64))
    )
    serial = pl.when(serial.is_between(*_EXCEL_SERIALS)).then(serial)
    readings.append(pl.lit(EXCEL_EPOCH) + pl.duration(days=serial))
    parsed = pl.coalesce(readings).alias(ENTERED)
    from_serial = typed.select(
        (pl.coalesce(readings[:-1]).is_null() & serial.is_not_null()).sum()
    ).item()
    if from_serial:
        example = typed.filter(serial.is_not_null()).select(ENTERED, parsed.alias("d")).row(0)
        warnings.append(
            f"column '{column}': {from_serial:,} value(s) are Excel serial day numbers, read "
            f"as dates counted from 1899-12-30 (e.g. {example[0].strip()} = {example[1]})"
        )
    return typed.select(parsed)[ENTERED]


def _ambiguous_dates(typed: pl.DataFrame, name: str, path: Path, column: str) -> Problem:
    """Dates that read both as DD/MM/YYYY and MM/DD/YYYY, with a few examples."""
    text = pl.col(name).cast(pl.String).str.strip_chars()
    differ = slashed_date(text, DAY_FIRST) != slashed_date(text, MONTH_FIRST)
    found = typed.filter(differ.fill_null(False))
    examples = ", ".join(
        f"{_where(path, row)}: {value!r}"
        for row, value in found.select(ROW, name).head(5).iter_rows()
    )
    return Problem(
        f"{found.height} date(s) can be read day first or month first: {examples}"
        + (" ..." if found.height > 5 else "")
        + "; every value fits both readings",
        file=str(path),
        line=line_of_row(path, found.item(0, ROW)),
        column=column,
        hint='set the format in the rules, e.g. date_format: "%d/%m/%Y" (25/12/2024) '
        'or "%m/%d/%Y" (12/25/2024); or write dates as YYYY-MM-DD',
    )


def _id_like(columns: list[str]) -> str | None:
    likely = [
        c for c in columns if "id" in c.lower().replace("_", " ").split() or c.lower() == "id"
    ]
    return f"is it '{likely[0]}'?" if likely else None


def _unknown_stages(typed: pl.DataFrame, rules: Rules, path: Path, column: str) -> list[Problem]:
    names = rules.stage_names
    unknown = (
        typed.filter(pl.col(STAGE).is_not_null() & ~pl.col(STAGE).is_in(names))
        .group_by(STAGE)
        .agg(pl.len(), pl.col(ROW).min())
        .sort(ROW)
    )
    problems = []
    for value, count, first_row in unknown.iter_rows():
        problems.append(
            Problem(
                f"unknown stage '{value}' on {count} customer(s), "
                f"first on {_where(path, first_row)}",
                file=str(path),
                line=line_of_row(path, first_row),
                column=column,
                hint=did_you_mean(value, names) or "stages in the rules: " + ", ".join(names),
            )
        )
    return problems


# -- usage ----------------------------------------------------------------------------------


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
                and suffix_of(p) in (*PARQUET_SUFFIXES, *CSV_SUFFIXES)
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
    suffix = suffix_of(path)
    id_col, ts_col = rules.usage_column(ID), rules.usage_column(TIMESTAMP)
    try:
        if suffix in CSV_SUFFIXES:
            data, dialect = csv_source(path, encoding)
            overrides = {c: pl.String for c in (id_col, ts_col) if c in dialect.header}
            return pl.scan_csv(
                data,
                separator=dialect.separator,
                schema_overrides=overrides,
                infer_schema_length=10_000,
            )
        if suffix in PARQUET_SUFFIXES:
            return pl.scan_parquet(path)
        if suffix in EXCEL_SUFFIXES:
            return pl.read_excel(path).lazy()
    except DataError:
        raise
    except (pl.exceptions.PolarsError, OSError) as err:
        raise _unreadable(path, err) from None
    raise DataError(
        Problem(
            f"unknown file type '{suffix or path.name}'",
            file=str(path),
            hint="use .csv, .tsv, .csv.gz, .parquet or .xlsx",
        )
    )


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
        if suffix_of(path) in PARQUET_SUFFIXES:
            try:
                schema = pl.read_parquet_schema(path)
            except (pl.exceptions.PolarsError, OSError) as err:
                raise _unreadable(path, err) from None
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
            problems += _unreadable(path, err).problems
            continue
        columns = list(schema)
        try:
            rename = _rename_map(columns, rules.columns.usage, path, rules, "usage")
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
    raise _unparsed(
        path,
        rules.usage_column(TIMESTAMP),
        found,
        total,
        "ISO dates or datetimes",
        "write timestamps as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
    )
