"""Reading the customers export: one row per customer, read eagerly.

Customers are kept twice: ``raw``, exactly as read, for the output, and
``typed``, under the rules' column names with inferred types, for the rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import ENTERED, ID, ROW, STAGE
from ..errors import DataError, Problem
from ..rules.model import Rules
from ..suggest import did_you_mean
from .formats import ReadOptions, line_of_row, read_table, rows_text, where
from .mapping import rename_map, shadowed
from .types import (
    DAY_FIRST,
    MONTH_FIRST,
    SLASHED_DATE_RE,
    TypeNote,
    check_parsed,
    infer_types,
    is_null_marker,
    parse_datetime_text,
    sampled_datetime_format,
    slashed_date,
    to_local_naive,
)


@dataclass
class Customers:
    """The customers export, as read and as the rules see it."""

    path: Path
    raw: pl.DataFrame  # exactly as read: the export's own columns and values
    typed: pl.DataFrame  # rules' names, inferred types, ROW; stage as text, entered as date
    external: dict[str, str] = field(default_factory=dict)  # rules name -> export header
    warnings: list[str] = field(default_factory=list)  # what reading the export decided
    header_line: int = 1  # the CSV line of the header (`header_row`)
    # columns that attribute tables added to ``typed``: column -> table name
    attribute_columns: dict[str, str] = field(default_factory=dict)

    @property
    def id_dtype(self) -> pl.DataType:
        return self.typed.schema[ID]

    def where(self, row: int) -> str:
        return where(self.path, row, self.header_line)


def read_customers(
    path: str | Path,
    rules: Rules,
    *,
    problems_out: list[Problem] | None = None,
    encoding: str | None = None,
    keep_unknown_stages: bool = False,
    sheet: str | None = None,
) -> Customers:
    """Read and check the customers export; raise :class:`DataError` listing what is wrong.

    ``keep_unknown_stages``: a stage the rules don't name is kept as it is instead of
    being an error (`check` reports those customers).

    With ``problems_out``, problems in the rows (ids, stages, dates) are added
    to that list instead and the customers are returned as far as they could
    be read, so that `validate` can go on and report everything at once.
    ``encoding`` (a Python codec name such as ``cp1252``) applies to CSV files; ``sheet``
    picks a workbook's sheet (default: the rules' ``customers: sheet``, else the first).
    """
    path = Path(path)
    mapping = rules.columns.customers
    options = ReadOptions(encoding=encoding, sheet=sheet or rules.customers.sheet,
                          header_row=rules.customers.header_row,
                          required=(rules.customer_column(ID),), rules_key=("customers",),
                          sheet_option="--sheet")
    raw = read_table(path, options)
    hl = options.header_line
    if raw.height == 0:
        sheet_name = f"the sheet '{options.sheet}'" if options.sheet else "the file"
        raise DataError(Problem(f"{sheet_name} has a header but no customers", file=str(path)))
    rename = rename_map(raw.columns, mapping, path, rules, "customers")
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
    typed = raw.drop(shadowed(raw.columns, mapping, rename)).rename(rename)
    typed, problems, warnings = typed_columns(typed, rules, path, rename, {ID, STAGE, ENTERED},
                                              hl)

    ids = typed[ID]
    if ids.dtype == pl.String:
        ids_blank = ids.is_null() | (ids.str.strip_chars() == "")
    else:
        ids_blank = ids.is_null()
    if ids_blank.any():
        rows = typed.filter(ids_blank)[ROW].to_list()
        problems.append(
            Problem(
                f"{len(rows)} customer(s) have an empty id: "
                + rows_text(path, rows, header_line=hl),
                file=str(path),
                line=line_of_row(path, rows[0], hl),
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
            f"{cid!r} on {rows_text(path, rows, limit=3, header_line=hl)}"
            for cid, rows in dupes.select(ID, "rows").head(5).iter_rows()
        )
        problems.append(
            Problem(
                f"{dupes.height} customer id(s) appear more than once: {shown}"
                + (" ..." if dupes.height > 5 else ""),
                file=str(path),
                line=line_of_row(path, dupes["rows"][0][0], hl),
                column=external[ID],
                hint="remove the duplicate rows from the export",
            )
        )

    # stage: text, blank means none
    if STAGE in typed.columns:
        stage = pl.col(STAGE).cast(pl.String).str.strip_chars()
        typed = typed.with_columns(pl.when(stage != "").then(stage).alias(STAGE))
        if not keep_unknown_stages:
            problems += _unknown_stages(typed, rules, path, external[STAGE], hl)
    else:
        typed = typed.with_columns(pl.lit(None, dtype=pl.String).alias(STAGE))

    # stage_entered_at: a date
    if ENTERED in typed.columns:
        known = len(problems)
        parsed = _entered_dates(typed, rules, path, external[ENTERED], problems, warnings, hl)
        if len(problems) == known:  # after "ambiguous dates", "not dates" would be noise
            try:
                check_parsed(
                    typed,
                    ENTERED,
                    parsed,
                    path,
                    external[ENTERED],
                    "dates",
                    "write dates as YYYY-MM-DD, or set date_format in the rules",
                    hl,
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
        header_line=hl,
    )


def typed_columns(
    frame: pl.DataFrame, rules: Rules, path: Path, rename: dict[str, str], skip: set[str],
    header_line: int = 1,
) -> tuple[pl.DataFrame, list[Problem], list[str]]:
    """An export's text columns (under the rules' names) with their inferred types and ROW,
    the problems (ambiguous dates) and warnings (N/A read as empty, day-first dates)."""
    notes: list[TypeNote] = []
    typed = infer_types(
        frame,
        skip=skip,
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
            problems.append(_ambiguous_dates(typed, note.column, path, column, header_line))
        elif note.kind == "null_markers":
            warnings.append(
                f"column '{column}': {note.count:,} value(s) such as {note.example!r} "
                "read as empty (NULL); the output keeps them as they are"
            )
        else:
            order = "DD/MM/YYYY" if note.kind == "day_first" else "MM/DD/YYYY"
            warnings.append(f"column '{column}': dates read as {order}, the only reading "
                            "that fits every value")
    return typed, problems, warnings


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
    header_line: int = 1,
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
    fmt = sampled_datetime_format(typed, text)
    if fmt is not None:  # the usual case: one ISO format, or blank
        one = parse_datetime_text(text, rules.timezone, fmt).dt.date()
        quick = typed.select(one.alias(ENTERED), (text.is_not_null() & one.is_null()).alias("odd"))
        if not quick["odd"].any():
            return quick[ENTERED]
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
        slashed = text.str.contains(SLASHED_DATE_RE)
        stats = typed.select(
            slashed.sum().alias("n"),
            (slashed & day.is_null()).any().alias("not_day"),
            (slashed & month.is_null()).any().alias("not_month"),
            (day != month).any().alias("differ"),
        ).row(0, named=True)
        if stats["n"] and not stats["not_day"] and not stats["not_month"] and stats["differ"]:
            problems.append(_ambiguous_dates(typed, ENTERED, path, column, header_line))
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


def _ambiguous_dates(typed: pl.DataFrame, name: str, path: Path, column: str,
                     header_line: int = 1) -> Problem:
    """Dates that read both as DD/MM/YYYY and MM/DD/YYYY, with a few examples."""
    text = pl.col(name).cast(pl.String).str.strip_chars()
    differ = slashed_date(text, DAY_FIRST) != slashed_date(text, MONTH_FIRST)
    found = typed.filter(differ.fill_null(False))
    examples = ", ".join(
        f"{where(path, row, header_line)}: {value!r}"
        for row, value in found.select(ROW, name).head(5).iter_rows()
    )
    return Problem(
        f"{found.height} date(s) can be read day first or month first: {examples}"
        + (" ..." if found.height > 5 else "")
        + "; every value fits both readings",
        file=str(path),
        line=line_of_row(path, found.item(0, ROW), header_line),
        column=column,
        hint='set the format in the rules, e.g. date_format: "%d/%m/%Y" (25/12/2024) '
        'or "%m/%d/%Y" (12/25/2024); or write dates as YYYY-MM-DD',
    )


def _id_like(columns: list[str]) -> str | None:
    likely = [
        c for c in columns if "id" in c.lower().replace("_", " ").split() or c.lower() == "id"
    ]
    return f"is it '{likely[0]}'?" if likely else None


def _unknown_stages(typed: pl.DataFrame, rules: Rules, path: Path, column: str,
                    header_line: int = 1) -> list[Problem]:
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
                f"first on {where(path, first_row, header_line)}",
                file=str(path),
                line=line_of_row(path, first_row, header_line),
                column=column,
                hint=did_you_mean(value, names) or "stages in the rules: " + ", ".join(names),
            )
        )
    return problems


