"""Excel workbooks as people make them: a sheet chosen by name, a title above the header.

A workbook's first sheet is often a README or a cover page, and a sheet often
starts with a title, a date or a blank row before the header. The sheet is
chosen by name (`--sheet`, or ``sheet:`` in the rules); the header is the
first row, within the first :data:`TITLE_ROWS`, that holds every column the
table needs (its customer id, its key), or the row ``header_row:`` names, as
the spreadsheet numbers it.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import polars as pl

from ..errors import DataError, Problem
from ..suggest import did_you_mean
from .options import ReadOptions

TITLE_ROWS = 20  # rows looked at for a header below a title


def sheet_names(path: Path) -> list[str]:
    """The workbook's sheets, in the workbook's order."""
    import fastexcel  # polars reads workbooks with it; only needed for workbooks

    try:
        return list(fastexcel.read_excel(str(path)).sheet_names)
    except Exception as err:  # fastexcel's errors are its own classes, not Polars'
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(Problem(
            f"cannot read the workbook: {first}", file=str(path),
            hint="is it an .xlsx workbook? Save it again from Excel as .xlsx, or export CSV"
        )) from None


def choose_sheet(path: Path, names: list[str], sheet: str | None, how: str) -> str:
    """The sheet to read: ``sheet``, or the first one. ``how`` says how to choose one
    (``--sheet NAME``, or a key of the rules), for the messages."""
    if not names:
        raise DataError(Problem("the workbook has no sheets", file=str(path)))
    if sheet is None:
        return names[0]
    if sheet in names:
        return sheet
    raise DataError(Problem(
        f"the workbook has no sheet '{sheet}'", file=str(path),
        hint=(did_you_mean(sheet, names) or "") + ("; " if did_you_mean(sheet, names) else "")
        + "its sheets: " + ", ".join(f"'{n}'" for n in names) + f"; choose one with {how}"))


def read_rows(path: Path, sheet: str) -> pl.DataFrame:
    """Every row of the sheet from its first cell with a value, as text, the header
    among them (columns ``column_0``, ``column_1``, ...); blank rows kept."""
    return pl.read_excel(path, sheet_name=sheet, has_header=False, infer_schema_length=0,
                         drop_empty_rows=False, drop_empty_cols=False, raise_if_empty=False)


def cells(row: Sequence[object]) -> list[str]:
    """A row's cells as the text of a header: blank for an empty cell."""
    return ["" if v is None else str(v).strip() for v in row]


def header_index(rows: pl.DataFrame, required: Sequence[str]) -> int | None:
    """The first of the first :data:`TITLE_ROWS` rows that holds every ``required`` name."""
    wanted = set(required)
    for i, row in enumerate(rows.head(TITLE_ROWS).iter_rows()):
        if wanted <= set(cells(row)):
            return i
    return None


def first_cell(path: Path, sheet: str) -> tuple[int, int]:
    """(row, column), 1-based as Excel numbers them, of the sheet's first cell with a
    value: where the rows and columns of :func:`read_rows` begin. (1, 1) when the
    workbook does not say."""
    try:
        with zipfile.ZipFile(path) as book:
            target = _sheet_part(book, sheet)
            if target is None:
                return 1, 1
            rows: list[int] = []
            columns: list[int] = []
            with book.open(target) as part:
                for _, element in ElementTree.iterparse(part):
                    if element.tag.endswith("}c") and any(
                            child.tag.endswith(("}v", "}is")) for child in element):
                        found = re.match(r"([A-Z]+)(\d+)$", element.get("r", ""))
                        if found:
                            columns.append(_column_number(found.group(1)))
                            rows.append(int(found.group(2)))
                        element.clear()
            return (min(rows), min(columns)) if rows else (1, 1)
    except (OSError, KeyError, zipfile.BadZipFile, ElementTree.ParseError):
        return 1, 1


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - ord("A") + 1
    return number


def column_letters(number: int) -> str:
    """Excel's name of the 1-based column ``number``: 1 -> A, 28 -> AB."""
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _sheet_part(book: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member that holds the sheet named ``sheet``."""
    rel_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    rid = next((s.get(rel_ns) for s in workbook.iter() if s.tag.endswith("}sheet")
                and s.get("name") == sheet), None)
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next((r.get("Target") for r in rels.iter() if r.get("Id") == rid), None)
    if rid is None or target is None:
        return None
    return target.lstrip("/") if target.startswith("/") else "xl/" + target


def table(path: Path, sheet: str, rows: pl.DataFrame, index: int) -> pl.DataFrame:
    """The table whose header is row ``index`` of ``rows``: the rows below it under the
    header's names. Columns with neither a header nor a value are dropped (a sheet's used
    range is often wider than its table); a header that is blank or said twice is an error."""
    header = cells(rows.row(index)) if rows.height > index else []
    body = rows.slice(index + 1)
    keep: list[int] = []
    problems = []
    seen: dict[str, int] = {}
    row, first_column = first_cell(path, sheet) if any(not h for h in header) or len(
        set(header)) < len(header) else (1, 1)

    def letter(i: int) -> str:
        return column_letters(first_column + i)

    if header and not any(header):
        raise DataError(Problem(
            f"the sheet '{sheet}' has an empty row where its header should be (row "
            f"{row + index})", file=str(path),
            hint="header_row counts rows as the spreadsheet numbers them"))
    for i, name in enumerate(header):
        column = body.to_series(i)
        if not name:
            if column.is_null().all():
                continue
            problems.append(Problem(
                f"sheet '{sheet}': column {letter(i)} has values but an empty header",
                file=str(path), hint="give the column a name in the header row"))
            continue
        if name in seen:
            problems.append(Problem(
                f"sheet '{sheet}': duplicate column '{name}' (columns {letter(seen[name])} "
                f"and {letter(i)})", file=str(path), hint="rename one of them in the sheet"))
            continue
        seen[name] = i
        keep.append(i)
    if problems:
        raise DataError(problems)
    return pl.DataFrame([body.to_series(i).alias(header[i]) for i in keep])


# -- reading a table: the `Format` of workbooks (lifecycle_cli.inputs.formats) --------------


def _sheet(path: Path, options: ReadOptions) -> str:
    """The sheet to read: the one named, or the first."""
    return choose_sheet(path, sheet_names(path), options.sheet, options.choose_sheet)


def _header(path: Path, sheet: str, rows: pl.DataFrame, options: ReadOptions) -> int:
    """Where the header is among the sheet's ``rows``: `header_row`, or the first row that
    holds the required columns, or the first row."""
    if rows.height == 0:
        others = ", ".join(f"'{n}'" for n in sheet_names(path) if n != sheet)
        raise DataError(Problem(
            f"the sheet '{sheet}' is empty: expected a header row and data", file=str(path),
            hint=f"the workbook's other sheets: {others}; choose one with "
            f"{options.choose_sheet}" if others else None))
    if options.header_row is not None:
        index = options.header_row - first_cell(path, sheet)[0]
        if not 0 <= index < rows.height:
            raise DataError(Problem(
                f"the sheet '{sheet}' has no row {options.header_row} (header_row)",
                file=str(path), hint="header_row counts rows as the spreadsheet numbers them"))
        return index
    found = header_index(rows, options.required) if options.required else None
    if found is None and options.required and options.sheet is None:
        _elsewhere(path, sheet, options)
    return found or 0


def _elsewhere(path: Path, sheet: str, options: ReadOptions) -> None:
    """The first sheet lacks the table's columns: name a sheet that has them."""
    for name in sheet_names(path):
        if name != sheet and header_index(read_rows(path, name),
                                                options.required) is not None:
            missing = ", ".join(f"'{c}'" for c in options.required)
            raise DataError(Problem(
                f"the first sheet '{sheet}' has no column {missing}; the sheet '{name}' has "
                "it", file=str(path),
                hint=f"choose that sheet: {options.choose_sheet.replace('NAME', repr(name))}"))


def read(path: Path, options: ReadOptions) -> pl.DataFrame:
    """The table of the chosen sheet, every cell as text."""
    sheet = _sheet(path, options)
    rows = read_rows(path, sheet)
    return table(path, sheet, rows, _header(path, sheet, rows, options))


def scan(path: Path, options: ReadOptions, text_columns: Sequence[str]) -> pl.LazyFrame:
    """The table of the chosen sheet with typed cells (a workbook is read whole)."""
    sheet = _sheet(path, options)
    if options.header_row is None:
        typed = pl.read_excel(path, sheet_name=sheet, raise_if_empty=False)
        if typed.height and set(options.required) <= set(typed.columns):
            return typed.lazy()  # the header is on the first row: the usual case
    rows = read_rows(path, sheet)
    index = _header(path, sheet, rows, options)
    # typed cells, as a sheet with the header on its first row gives them
    return pl.read_excel(path, sheet_name=sheet, read_options={"header_row": index},
                         drop_empty_rows=True).lazy()
