"""Workbooks that look right: a number format per column kind, widths measured on the
formatted text, landscape pages one sheet wide (read back with openpyxl; LibreOffice's
rendering is in test_workbooks.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from openpyxl.utils import get_column_letter

from lifecycle_cli.render.tables import write_tables
from lifecycle_cli.render.xlsx import NUMBER_FORMATS, Kind, column_kinds, text_widths


def frame() -> pl.DataFrame:
    return pl.DataFrame({
        "customer_id": ["0001", "0002", "0003"],
        "monthly_charges": [29.85, 1889.5, None],
        "ratio": [0.125, 0.5, 1.0],
        "arr": [12000, 1234567, -5],
        "conversion": [0.554, 0.1, None],
        "renewal": [dt.date(2026, 1, 1), None, dt.date(2027, 12, 31)],
        "seen": [dt.datetime(2026, 1, 1, 9, 30)] * 3,
        "churned": [True, False, None],
        "plan": ["Starter", "Enterprise Plus Annual", None],
        "n": pl.Series([None, None, None], dtype=pl.Int64),
    })


def test_a_column_kind_comes_from_its_type_and_shares_are_declared() -> None:
    kinds = column_kinds(frame(), {"conversion": Kind.SHARE, "plan": Kind.SHARE,
                                   "arr": Kind.TEXT})
    assert kinds == {
        "customer_id": Kind.TEXT, "monthly_charges": Kind.DECIMAL, "ratio": Kind.DECIMAL,
        "arr": Kind.TEXT, "conversion": Kind.SHARE, "renewal": Kind.DATE,
        "seen": Kind.DATETIME, "churned": Kind.BOOLEAN,
        "plan": Kind.TEXT,  # a share must be a number
        "n": Kind.INTEGER}
    # never guessed: a fraction in the data is a decimal, not a share
    assert column_kinds(frame())["conversion"] is Kind.DECIMAL


def test_widths_are_measured_on_the_text_each_kind_shows() -> None:
    data = frame()
    widths = text_widths(data, column_kinds(data, {"conversion": Kind.SHARE}))
    assert widths == {
        "customer_id": 4,
        "monthly_charges": len("1,889.50"),  # not the 6 of 1889.5
        "ratio": len("0.125"),  # a third decimal where a value has one
        "arr": len("-1,234,567"),  # the sign of the smallest, the digits of the largest
        "conversion": len("55.4%"),
        "renewal": 10,
        "seen": 19,
        "churned": len("FALSE"),
        "plan": len("Enterprise Plus Annual"),
        "n": 0,
    }
    assert text_widths(data.head(0), column_kinds(data))["renewal"] == 0
    noisy = pl.DataFrame({"sum": [0.1 + 0.2, 12345.600000000002]})  # float sums
    assert text_widths(noisy, column_kinds(noisy)) == {"sum": len("12,345.60")}


def sheet_of(tmp_path: Path, data: pl.DataFrame, **kwargs: object):
    [path] = write_tables({"t": data}, tmp_path, "xlsx", **kwargs)  # type: ignore[arg-type]
    return openpyxl.load_workbook(path)["t"]


def test_every_column_has_the_number_format_of_its_kind(tmp_path: Path) -> None:
    sheet = sheet_of(tmp_path, frame(), text_columns=["customer_id"],
                     kinds={"conversion": Kind.SHARE})
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, sheet[2], strict=True))
    assert row["monthly_charges"].number_format == "#,##0.00####"
    assert row["arr"].number_format == "#,##0"
    assert row["conversion"].number_format == "0.0%" and row["conversion"].value == 0.554
    assert row["renewal"].number_format == "yyyy-mm-dd" and row["renewal"].is_date
    assert row["seen"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert row["churned"].number_format == NUMBER_FORMATS[Kind.BOOLEAN]
    assert row["churned"].value is True and row["churned"].data_type == "b"
    assert row["customer_id"].value == "0001" and row["customer_id"].data_type == "s"
    assert row["plan"].number_format == "General"


def test_columns_are_wide_enough_for_their_formatted_values_and_header(tmp_path: Path
                                                                       ) -> None:
    data = frame()
    sheet = sheet_of(tmp_path, data, kinds={"conversion": Kind.SHARE})
    measured = text_widths(data, column_kinds(data, {"conversion": Kind.SHARE}))
    for i, column in enumerate(data.columns, start=1):
        width = sheet.column_dimensions[get_column_letter(i)].width
        # room for the header and its filter button, and for the longest value as shown
        assert width >= len(column) + 3, column
        assert width >= measured[column] + 1, column
        assert width < max(len(column) * 1.1 + 3, measured[column] * 1.1) + 4, column


def test_long_text_is_cut_at_a_readable_width(tmp_path: Path) -> None:
    sheet = sheet_of(tmp_path, pl.DataFrame({"note": ["x" * 500]}))
    assert sheet.column_dimensions["A"].width < 70
    assert sheet["A2"].value == "x" * 500  # the cell keeps it whole


def test_every_sheet_prints_landscape_one_page_wide_with_its_header(tmp_path: Path) -> None:
    [path] = write_tables({"a": frame(), "b": frame().head(1)}, tmp_path, "xlsx")
    book = openpyxl.load_workbook(path)
    for sheet in book.worksheets:
        assert sheet.page_setup.orientation == "landscape"
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        # one page wide (1 is the default, left out of the file), as many long as it takes
        assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0)
        assert sheet.print_title_rows == "$1:$1"  # the header row on every page
        assert "&A" in sheet.oddFooter.left.text and "&P" in sheet.oddFooter.right.text
        assert sheet.freeze_panes == "A2"
        [table] = sheet.tables.values()
        assert table.autoFilter is not None


@pytest.mark.parametrize("height", [0, 1])
def test_empty_and_all_null_columns_still_write(tmp_path: Path, height: int) -> None:
    sheet = sheet_of(tmp_path, frame().head(height))
    assert [c.value for c in sheet[1]] == frame().columns


def test_odd_types_and_non_finite_numbers_still_write(tmp_path: Path) -> None:
    """A Parquet export may hold durations, times of day, categories or NaN: the workbook
    is written all the same; NaN and infinities are empty cells, never formulas."""
    odd = pl.DataFrame({
        "wait": pl.Series([dt.timedelta(days=1), None]),
        "at": [dt.time(9, 30), None],
        "tier": pl.Series(["gold", "silver"], dtype=pl.Categorical),
        "price": pl.Series([1.5, 2.25]).cast(pl.Decimal(10, 2)),
        "score": [float("nan"), float("-inf")],
        "ratio": [0.5, float("inf")],
    })
    sheet = sheet_of(tmp_path, odd)
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
    assert [r[2:] for r in rows] == [["gold", 1.5, None, 0.5], ["silver", 2.25, None, None]]
    assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)  # no formula
    assert sheet.column_dimensions["C"].width >= len("silver")
