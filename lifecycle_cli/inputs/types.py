"""Types for text cells: numbers, booleans, dates and datetimes, decided per column.

A column gets a type only when every value agrees with it, so ids with leading
zeros stay text; cells such as ``N/A`` can count as empty; local date orders
(DD/MM/YYYY, MM/DD/YYYY) are used only when one reading fits every value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..columns import ROW
from .formats import unparsed

_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
_ZONED_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_BOOL_TEXT = {"true": True, "false": False}
_BOOL_RE = "(?i)^(?:true|false)$"
_INT_RE = r"^[+-]?(0|[1-9][0-9]*)$"
_FLOAT_RE = r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME_RE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"


_SAMPLE = 2_000

# Cells that spreadsheets and exports write for "no value". In a column that is
# otherwise numeric, boolean or a date they count as NULL for the rules.
NULL_MARKERS = ("n/a", "na", "#n/a", "null", "none", "nan", "-")
SLASHED_DATE_RE = r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}$"
DAY_FIRST, MONTH_FIRST = "%d/%m/%Y", "%m/%d/%Y"
_KINDS = ("bool", "int", "float", "date", "format", "day_first", "month_first", "datetime")


@dataclass(frozen=True)
class TypeNote:
    """Something :func:`infer_types` decided that the user should hear about."""

    column: str
    kind: str  # "null_markers" | "ambiguous_dates" | "day_first" | "month_first"
    count: int = 0
    example: str | None = None


def _any_of_re(words: Iterable[str]) -> str:
    return "(?i)^(?:" + "|".join(re.escape(w) for w in words) + ")$"


# one anchored regex, not lowercasing every value then looking it up: four times faster
_NULL_MARKER_RE = _any_of_re(NULL_MARKERS)


def is_null_marker(v: pl.Expr) -> pl.Expr:
    """Whether text ``v`` is one of NULL_MARKERS, in any case."""
    return v.str.contains(_NULL_MARKER_RE)


def slashed_date(v: pl.Expr, fmt: str) -> pl.Expr:
    """``03/04/2024``, ``3.4.2024`` or ``03-04-2024`` read with ``fmt`` (DAY_FIRST or
    MONTH_FIRST); NULL where the value is not such a date or does not fit ``fmt``."""
    return (
        pl.when(v.str.contains(SLASHED_DATE_RE))
        .then(v.str.replace_all(r"[.-]", "/"))
        .str.to_date(fmt, strict=False)
    )


def _type_probes(v: pl.Expr, date_format: str | None = None) -> dict[str, pl.Expr]:
    """For each candidate type, whether a non-blank text value reads as it."""
    probes = {
        "bool": v.str.contains(_BOOL_RE),
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
    typed_cols = [c for c in text_cols if candidates[c]]
    # each candidate column stripped, blanks (and markers) NULL, once: every probe and the
    # cast read it (stripping in each probe was most of the time at a million rows)
    stripped = frame.select(pl.col(c).str.strip_chars() for c in typed_cols)
    values = stripped.select(pl.when(usable(pl.col(c))).then(pl.col(c)) for c in typed_cols)
    full = values.select(
        [
            (pl.col(c).is_null() | probes(pl.col(c))[kind]).all().alias(f"{c}\x00{kind}")
            for c in typed_cols
            for kind in candidates[c]
        ] + [pl.col(c).count().alias(f"{c}\x00n") for c in typed_cols]
    ).row(0, named=True) if typed_cols else {}
    if null_markers and typed_cols:  # the values not blank that `usable` made NULL
        not_blank = stripped.select((pl.col(c) != "").sum() for c in typed_cols).row(0)
        full |= {f"{c}\x00markers": n - full[f"{c}\x00n"]
                 for c, n in zip(typed_cols, not_blank, strict=True)}
    casts: list[pl.Expr] = []
    blank: list[str] = []
    for c in typed_cols:
        kinds = [k for k in candidates[c] if full[f"{c}\x00{k}"]]
        if "day_first" in kinds and "month_first" in kinds:
            # 03/04/2024 could be either; it matters only if some day and month differ
            v = pl.col(c).drop_nulls()
            differ = values.select(
                (slashed_date(v, DAY_FIRST) != slashed_date(v, MONTH_FIRST)).any()
            ).item()
            if differ:
                if notes is not None:
                    notes.append(TypeNote(c, "ambiguous_dates"))
                continue  # text stays as it is
            kinds.remove("month_first")
        kind = kinds[0] if kinds else None
        if kind is None:
            continue  # text stays as it is
        markers = full.get(f"{c}\x00markers", 0)
        if full[f"{c}\x00n"] == 0:
            if markers:
                continue  # nothing but N/A and the like: text, not an empty column
            blank.append(c)  # every cell blank: no type to speak of
            continue
        if markers and notes is not None:
            marker = is_null_marker(pl.col(c).str.strip_chars())
            example = frame.select(pl.col(c).filter(marker).first()).item()
            notes.append(TypeNote(c, "null_markers", markers, example))
        if kind in ("day_first", "month_first") and notes is not None:
            notes.append(TypeNote(c, kind))
        casts.append(_cast(pl.col(c), kind, timezone, date_format).alias(c))
    if not casts and not blank:
        return frame
    return frame.with_columns(*values.select(casts), *(pl.lit(None).alias(c) for c in blank))


def _cast(v: pl.Expr, kind: str, timezone: str, date_format: str | None) -> pl.Expr:
    """Stripped text values ``v`` (blanks NULL) read as ``kind`` (see :func:`infer_types`)."""
    if kind == "bool":
        return v.str.to_lowercase().replace_strict(_BOOL_TEXT, default=None,
                                                   return_dtype=pl.Boolean)
    if kind == "int":
        return v.cast(pl.Int64, strict=False)
    if kind == "float":
        return v.cast(pl.Float64, strict=False)
    if kind == "date":
        return v.str.to_date("%Y-%m-%d", strict=False)
    if kind == "format":
        return v.str.to_date(str(date_format), strict=False)
    if kind in ("day_first", "month_first"):
        return slashed_date(v, DAY_FIRST if kind == "day_first" else MONTH_FIRST)
    return parse_datetime_text(v, timezone)


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


def sampled_datetime_format(frame: pl.DataFrame, text: pl.Expr) -> str | None:
    """The one ISO format (see :func:`detect_datetime_format`) that a sample of ``text``'s
    non-NULL values follows, if any. Parsing a column with it alone is about 9 times faster
    than trying every format; where a value does not fit it, the caller parses again
    without a format, so the result and its problems stay the same."""
    sample = frame.select(text.drop_nulls().head(_SAMPLE).alias("v")).to_series()
    return detect_datetime_format(sample) if sample.len() else None


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


def check_parsed(
    typed: pl.DataFrame,
    source: str,
    parsed: pl.Series,
    path: Path,
    column: str,
    what: str,
    hint: str,
    header_line: int = 1,
) -> None:
    """Raise for values of ``source`` that are there but did not parse (``parsed`` is NULL)."""
    raw = typed[source]
    if parsed.null_count() == raw.null_count():
        return  # every value that was there parsed
    text = raw.cast(pl.String).str.strip_chars()
    bad = typed.filter(
        raw.is_not_null() & (text != "") & ~text.str.contains(_NULL_MARKER_RE)
        & parsed.is_null()
    )
    if bad.height:
        raise unparsed(path, column, bad.select(ROW, source).head(5), bad.height, what, hint,
                       header_line)


