"""The outcomes file of a backtest: what really happened to customers, and when.

One row per event: a customer id, an outcome (``churned``, ``downgraded``...)
and its date. Any format `inputs.formats` reads (CSV, XLSX, Parquet). Its
columns are mapped like the other inputs' (``columns: outcomes:`` in the
rules); the id column defaults to ``customer_id``, else the customers
export's own id header (a churn export usually names the id as the CRM
does). A file without an outcome column is one kind of event (a
``churn_events.csv``): every row counts as the outcome the caller names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import ID, OUTCOME, OUTCOME_DATE, ROW
from ..errors import DataError, Problem
from ..rules.model import Rules
from ..suggest import did_you_mean
from .formats import ReadOptions, line_of_row, read_table, rows_text
from .types import parse_datetime_text

OUTCOME_KEYS = (ID, OUTCOME, OUTCOME_DATE)  # the rules' names of the file's columns


@dataclass(frozen=True)
class Outcomes:
    """The outcomes file as read: ``table`` holds ``customer_id`` (text), ``outcome`` (text),
    ``date`` and ``row`` (the file's 0-based data row), one row per distinct event."""

    path: Path
    table: pl.DataFrame
    # the last day the file speaks for: flags whose horizon ends after it are unresolved
    observed_until: dt.date
    fixed: str | None = None  # the outcome every row counts as (the file has no such column)
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The outcomes the file holds, sorted."""
        return sorted(self.table[OUTCOME].unique().to_list())


def read_outcomes(path: str | Path, rules: Rules, *, outcome: str | None = None,
                  override: bool = False, observed_until: dt.date | None = None,
                  encoding: str | None = None) -> Outcomes:
    """Read and check the outcomes file; raise :class:`DataError` naming the file, line and
    column of what is wrong. ``outcome``: what every row counts as when the file has no
    outcome column, or with ``override``, whatever it has. ``observed_until``: the last day
    the file covers (default: its latest date); later events are left out."""
    path = Path(path)
    mapping = rules.columns.outcomes
    options = ReadOptions(encoding=encoding, rules_key=("columns", "outcomes"))
    raw = read_table(path, options)
    header = options.header_line

    def column_of(key: str) -> str | None:
        if key in mapping:
            return mapping[key] if mapping[key] in raw.columns else None
        if key in raw.columns:
            return key
        customers_id = rules.customer_column(ID)
        if key == ID and customers_id in raw.columns:
            return customers_id
        return None

    found = {key: column_of(key) for key in OUTCOME_KEYS}
    if override:
        found[OUTCOME] = None
    problems = []
    for key in OUTCOME_KEYS:
        if found[key] is not None or (key == OUTCOME and outcome is not None):
            continue
        wanted = mapping.get(key, key)
        tip = did_you_mean(wanted, raw.columns) or "columns: " + ", ".join(raw.columns[:20])
        tip += f"; map it in the rules: columns: {{outcomes: {{{key}: ...}}}}"
        if key == OUTCOME:
            tip += ", or pass --outcome NAME when every row is one outcome"
        problems.append(Problem(f"the outcomes file has no column '{wanted}' (the {key})",
                                file=str(path), line=header, column=wanted, hint=tip))
    if problems:
        raise DataError(problems)
    if raw.height == 0:
        raise DataError(Problem("the outcomes file has no rows", file=str(path), line=header,
                                hint="export the events with a header row and one row each"))

    def text(key: str) -> pl.Expr:
        name = found[key]
        assert name is not None
        value = pl.col(name).cast(pl.String).str.strip_chars()
        return pl.when(value != "").then(value)

    date_name = found[OUTCOME_DATE]
    assert date_name is not None
    frame = raw.with_row_index(ROW).select(
        pl.col(ROW),
        text(ID).alias(ID),
        (text(OUTCOME) if found[OUTCOME] is not None else pl.lit(outcome)).alias(OUTCOME),
        _date(raw.schema[date_name], date_name, rules).alias(OUTCOME_DATE),
        text(OUTCOME_DATE).alias("__given"),
    )
    for key, what, given in ((ID, "no customer id", ID), (OUTCOME, "no outcome", OUTCOME),
                             (OUTCOME_DATE, "no date", "__given")):
        blank = frame.filter(pl.col(given).is_null())
        if blank.height:
            problems.append(Problem(
                f"{blank.height:,} row(s) of the outcomes file have {what}: "
                + rows_text(path, blank[ROW].to_list(), header_line=header),
                file=str(path), line=line_of_row(path, blank[ROW][0], header),
                column=found[key] or key, hint="fill them in, or remove those rows"))
    bad = frame.filter(pl.col(OUTCOME_DATE).is_null() & pl.col("__given").is_not_null())
    if bad.height:
        shown = ", ".join(f"{rows_text(path, [r], header_line=header)}: {v!r}"
                          for r, v in bad.select(ROW, "__given").head(3).iter_rows())
        problems.append(Problem(
            f"{bad.height:,} date(s) of the outcomes file are not dates: {shown}"
            + (" ..." if bad.height > 3 else ""),
            file=str(path), line=line_of_row(path, bad[ROW][0], header), column=date_name,
            hint="write dates as YYYY-MM-DD (a time after them is fine)"
            + ("" if rules.date_format else ", or set date_format in the rules")))
    if problems:
        raise DataError(sorted(problems, key=lambda p: p.line or 0))
    frame = frame.drop("__given")
    last = frame[OUTCOME_DATE].max()
    assert isinstance(last, dt.date)
    until = observed_until or last
    warnings = []
    later = frame.filter(pl.col(OUTCOME_DATE) > until).height
    if later:
        warnings.append(f"{later:,} event(s) of {path} are after {until} (the last day it "
                        "is said to cover): they are left out")
    frame = frame.filter(pl.col(OUTCOME_DATE) <= until)
    # the same event exported twice is one event
    table = frame.unique(subset=[ID, OUTCOME, OUTCOME_DATE], keep="first",
                         maintain_order=True)
    return Outcomes(path, table, until, None if found[OUTCOME] is not None else outcome,
                    warnings)


def _date(dtype: pl.DataType, name: str, rules: Rules) -> pl.Expr:
    """The column as dates: a typed date or datetime as it is, text parsed (ISO dates and
    datetimes, or the rules' ``date_format``)."""
    value = pl.col(name)
    if dtype == pl.Date:
        return value
    if isinstance(dtype, pl.Datetime):
        return value.dt.date()
    given = value.cast(pl.String).str.strip_chars()
    parsed = [parse_datetime_text(given, rules.timezone).dt.date()]
    if rules.date_format:
        parsed.append(given.str.to_date(rules.date_format, strict=False))
    return pl.coalesce(parsed)
