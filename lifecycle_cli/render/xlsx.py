"""Workbooks that look right in Excel and LibreOffice: a number format per column kind,
column widths measured on the formatted text, and a page setup that prints.

A column's kind says how its values read:

=========  ========================  ==========================================
kind       number format             shown as
=========  ========================  ==========================================
integer    ``#,##0``                 12,345 (counts, days, whole amounts)
decimal    ``#,##0.00####``          29.85, 1,889.50, 0.125 (money and measures)
share      ``0.0%``                  55.4% (a fraction 0-1, as the terminal shows)
date       ``yyyy-mm-dd``            2026-11-01
datetime   ``yyyy-mm-dd hh:mm:ss``   2026-11-01 09:30:00
boolean    ``"TRUE";"TRUE";"FALSE"`` TRUE / FALSE (LibreOffice shows 1/0 without)
text       General                   as written (ids stay text)
=========  ========================  ==========================================

The kind comes from the column's type, except where the writer is told: a share is
never guessed (0.55 in an export is a number, not 55%), and ids stay text. Money is
not guessed from a column's name (``arr``, ``mrr``, ``revenue``...): a decimal column
shows two decimals, and more only where a value has them, so amounts read as money
(29.85, 1,889.50) and a ratio keeps its digits (0.125); whole amounts (an ARR of
12000 in the export) show as whole numbers with thousands separators (12,000).

Widths are measured with Polars on what each kind displays (12,345.60 is 9 characters,
not the 7 of 12345.6), so no number shows as ``###``. Every sheet prints landscape, one
page wide, with the header row on every page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ..inputs.types import infer_types

if TYPE_CHECKING:
    from xlsxwriter.worksheet import Worksheet


class Kind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    SHARE = "share"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


NUMBER_FORMATS: dict[Kind, str] = {
    Kind.INTEGER: "#,##0",
    Kind.DECIMAL: "#,##0.00####",
    Kind.SHARE: "0.0%",
    Kind.DATE: "yyyy-mm-dd",
    Kind.DATETIME: "yyyy-mm-dd hh:mm:ss",
    # Excel shows a boolean cell as TRUE/FALSE whatever its format; LibreOffice needs this
    Kind.BOOLEAN: '"TRUE";"TRUE";"FALSE"',
}
FIXED_WIDTHS = {Kind.DATE: 10, Kind.DATETIME: 19, Kind.BOOLEAN: 5}
OTHER_WIDTH = 20  # text of another type (a duration, a time of day, a list): not measured
MAX_DECIMALS = 6  # what DECIMAL shows at most
MAX_TEXT_WIDTH = 60  # longer text is cut off on screen (the cell keeps it whole)
FILTER_BUTTON = 3  # the header's filter button takes about this many characters
CHAR_PX, PAD_PX = 7, 5  # a character of Calibri 11 and a cell's padding, in pixels


def kind_of(dtype: pl.DataType, declared: Kind | None = None) -> Kind:
    """The kind of a column of ``dtype``; ``declared`` where the producer knows better
    (a share, or text such as an id), when the type allows it."""
    if declared is Kind.TEXT:
        return Kind.TEXT
    if declared is Kind.SHARE and dtype.is_numeric():
        return Kind.SHARE
    if dtype == pl.Boolean:
        return Kind.BOOLEAN
    if dtype == pl.Date:
        return Kind.DATE
    if isinstance(dtype, pl.Datetime):
        return Kind.DATETIME
    if dtype.is_integer():
        return Kind.INTEGER
    if dtype.is_numeric():
        return Kind.DECIMAL
    return Kind.TEXT


def column_kinds(frame: pl.DataFrame, declared: Mapping[str, Kind] | None = None
                 ) -> dict[str, Kind]:
    """Every column's kind."""
    declared = declared or {}
    return {c: kind_of(t, declared.get(c)) for c, t in frame.schema.items()}


def _finite(column: str) -> pl.Expr:
    value = pl.col(column).cast(pl.Float64)
    return value.filter(value.is_finite())


def _decimals(column: str) -> list[pl.Expr]:
    """Per number of decimals d from 2 to MAX_DECIMALS - 1: whether every value shows
    with d decimals as it does with MAX_DECIMALS (true: no value needs more)."""
    value = _finite(column)
    return [
        ((value.round(d) - value.round(MAX_DECIMALS)).abs().max().fill_null(0) <= 1e-9)
        .alias(f"{column}\0d{d}")
        for d in range(2, MAX_DECIMALS)
    ]


def text_widths(frame: pl.DataFrame, kinds: Mapping[str, Kind]) -> dict[str, int]:
    """The length of the longest value of each column as its kind displays it (the header
    not included), measured in one pass over the frame."""
    aggs: list[pl.Expr] = []
    schema = frame.schema
    textual = {c for c, t in schema.items()
               if t in (pl.String, pl.Null) or isinstance(t, pl.Categorical | pl.Enum)}
    for column, kind in kinds.items():
        if kind in FIXED_WIDTHS or (kind is Kind.TEXT and column not in textual):
            continue
        if kind is Kind.TEXT:
            aggs.append(pl.col(column).cast(pl.String).str.len_chars().max()
                        .alias(f"{column}\0len"))
            continue
        value = _finite(column)
        aggs += [value.abs().max().alias(f"{column}\0max"),
                 (value.min() < 0).fill_null(False).alias(f"{column}\0neg")]
        if kind is Kind.DECIMAL:
            aggs += _decimals(column)
    facts = frame.select(aggs).row(0, named=True) if aggs and frame.height else {}
    widths: dict[str, int] = {}
    for column, kind in kinds.items():
        if kind in FIXED_WIDTHS:
            widths[column] = FIXED_WIDTHS[kind] if frame.height else 0
            continue
        if kind is Kind.TEXT:
            measured = facts.get(f"{column}\0len") if column in textual else OTHER_WIDTH
            widths[column] = int(measured or 0) if frame.height else 0
            continue
        top = facts.get(f"{column}\0max")
        if top is None:
            widths[column] = 0
            continue
        sign = 1 if facts.get(f"{column}\0neg") else 0
        if kind is Kind.INTEGER:
            text = f"{round(top):,}"
        elif kind is Kind.SHARE:
            text = f"{top * 100:.1f}%"
        else:
            decimals = next((d for d in range(2, MAX_DECIMALS)
                             if facts.get(f"{column}\0d{d}")), MAX_DECIMALS)
            text = f"{top:,.{decimals}f}"
        widths[column] = len(text) + sign
    return widths


def column_widths(frame: pl.DataFrame, kinds: Mapping[str, Kind]) -> dict[str, float]:
    """Each column's width in characters: its longest formatted value or its header with
    the filter button, whichever is wider, and a little room. Text is given a tenth
    more (letters are wider than digits) and cut at MAX_TEXT_WIDTH."""
    widths = {}
    for column, n in text_widths(frame, kinds).items():
        header = len(column) * 1.1 + FILTER_BUTTON
        values = min(n * 1.1, MAX_TEXT_WIDTH) if kinds[column] is Kind.TEXT else float(n)
        widths[column] = round(max(header, values, 4.0) + 1.5, 1)
    return widths


def write_workbook(
    tables: dict[str, pl.DataFrame],
    path: Path,
    *,
    created: dt.date | None = None,
    text_columns: Iterable[str] = (),
    kinds: Mapping[str, Kind] | None = None,
) -> None:
    """One sheet per table: typed cells with a number format per kind, measured column
    widths, header filters, a frozen header, landscape pages one sheet wide; no formulas
    or links from data.

    Text read from a CSV export becomes a number, date or boolean cell when every value
    of its column is one (the same inference the rules see), so spreadsheets can sum and
    sort it; ``text_columns`` and values like 00123 stay text. ``kinds`` declares the
    kind of columns (by name, in every sheet) whose type does not tell: shares.
    """
    import xlsxwriter

    declared = dict(kinds or {}) | {c: Kind.TEXT for c in text_columns}
    # xlsxwriter's defaults turn "=..." text into live formulas and URLs into links.
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    stamp = dt.datetime.combine(created or dt.date(2000, 1, 1), dt.time())
    workbook.set_properties({"created": stamp, "title": "lifecycle"})
    try:
        for name, frame in tables.items():
            # NaN and infinities: empty cells (xlsxwriter refuses them, or makes formulas)
            floats = pl.col(pl.Float32, pl.Float64)
            frame = infer_types(frame, skip=set(text_columns)).with_columns(
                pl.when(floats.is_finite()).then(floats))
            sheet_kinds = column_kinds(frame, declared)
            widths = column_widths(frame, sheet_kinds)
            frame.write_excel(
                workbook=workbook,
                worksheet=name,
                autofilter=True,
                freeze_panes=(1, 0),
                column_formats={c: NUMBER_FORMATS[k] for c, k in sheet_kinds.items()
                                if k in NUMBER_FORMATS},
                column_widths={c: round(w * CHAR_PX + PAD_PX) for c, w in widths.items()},
                header_format={"bold": True},
                table_style=None,
            )
            sheet = workbook.get_worksheet_by_name(name)
            assert sheet is not None
            _page_setup(sheet)
    finally:
        workbook.close()


def _page_setup(sheet: Worksheet) -> None:
    """Landscape, one page wide (as many long as it takes), the header row on every page,
    and the sheet's name and page number in the footer."""
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    sheet.set_footer("&L&A&RPage &P of &N")
