"""How a report's values read as text, the same in the terminal, the HTML and the charts:
thousands separated, shares as percentages, ISO dates, a dash for nothing."""

from __future__ import annotations

import datetime as dt

import polars as pl

EMPTY = "—"
SHARE_COLUMNS = {"share", "conversion", "over_expected", "overdue_share", "survival"}


def is_share(column: str) -> bool:
    """Whether a report column holds a share (0-1), shown as a percentage."""
    return column in SHARE_COLUMNS or column.endswith("_share")


def share_columns(tables: dict[str, pl.DataFrame]) -> list[str]:
    """The columns of ``tables`` that hold shares (for a workbook's percent format)."""
    return sorted({c for t in tables.values() for c, d in t.schema.items()
                   if is_share(c) and d.is_numeric()})


def number(value: float | int | None) -> str:
    """12,345 or 12.3: thousands separated, at most one decimal (two below 10)."""
    if value is None:
        return EMPTY
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def percent(share: float | None) -> str:
    return EMPTY if share is None else f"{share * 100:.1f}%"


def cell(value: object, column: str) -> str:
    """One table cell as text (not escaped: the renderer escapes for its medium)."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return percent(value) if is_share(column) else number(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
