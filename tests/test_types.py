"""Type inference of text columns against a small cell-by-cell reference.

`inputs.types.infer_types` decides each column with vectorised probes (a sample first,
then every value once). The reference below reads the rules of its docstring one cell
at a time: a column takes the first type in bool, int, float, ISO date, day-first or
month-first date, ISO datetime that every usable value (stripped, not blank, not a null
marker) fits; both local date orders fitting with some day and month differing leaves
it text; only markers leaves it text; only blanks makes it all NULL.
"""

from __future__ import annotations

import datetime as dt
import re

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle_cli.inputs.types import NULL_MARKERS, TypeNote, infer_types

CELLS = ["1", "-7", "+3", "007", "0", "2.5", ".5", "1e3", "true", "FALSE", "True ",
         "2026-01-02", "2026-02-30", "03/04/2026", "13/04/2026", "04/13/2026", "3.4.2026",
         "2026-01-02 10:00", "2026-01-02T10:00:00", "N/A", "na", "-", "NULL", "", "  ",
         None, "abc", "tr ue"]

_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SLASHED = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def _date(text: str, order: str) -> dt.date | None:
    if order == "iso":
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return None
        y, m, d = (int(p) for p in text.split("-"))
    else:
        found = _SLASHED.fullmatch(text)
        if not found:
            return None
        a, b, y = (int(p) for p in found.groups())
        d, m = (a, b) if order == "day" else (b, a)
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


FITS = {
    "bool": lambda v: v.lower() in ("true", "false"),
    "int": lambda v: bool(_INT.fullmatch(v)),
    "float": lambda v: bool(_FLOAT.fullmatch(v)),
    "date": lambda v: _date(v, "iso") is not None,
    "day_first": lambda v: _date(v, "day") is not None,
    "month_first": lambda v: _date(v, "month") is not None,
    "datetime": lambda v: bool(re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", v)),
}
CAST = {
    "bool": lambda v: v.lower() == "true",
    "int": int,
    "float": float,
    "date": lambda v: _date(v, "iso"),
    "day_first": lambda v: _date(v, "day"),
    "month_first": lambda v: _date(v, "month"),
}


def reference(cells: list[str | None]) -> tuple[str, list[object]]:
    """The kind a column of ``cells`` takes ("text", "null" or a FITS key) and its values
    (for the kinds CAST knows)."""
    stripped = [None if c is None else c.strip() for c in cells]
    usable = [c for c in stripped if c and c.lower() not in NULL_MARKERS]
    if not usable:
        markers = any(c and c.lower() in NULL_MARKERS for c in stripped)
        return ("text", cells) if markers else ("null", [None] * len(cells))
    kinds = [k for k, fits in FITS.items() if all(fits(v) for v in usable)]
    if "day_first" in kinds and "month_first" in kinds:
        if any(_date(v, "day") != _date(v, "month") for v in usable):
            return "text", cells
        kinds.remove("month_first")
    if not kinds:
        return "text", cells
    kind = kinds[0]
    cast = CAST.get(kind)
    values = [None if c is None or c not in usable else (cast(c) if cast else c)
              for c in stripped]
    return kind, values


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(CELLS), min_size=1, max_size=6), min_size=1,
                max_size=4).map(lambda cols: [c * (6 // len(c)) for c in cols]))
def test_inferred_types_match_the_cell_by_cell_reference(columns: list[list[str | None]]
                                                           ) -> None:
    height = min(len(c) for c in columns)
    frame = pl.DataFrame({f"c{i}": c[:height] for i, c in enumerate(columns)},
                         schema={f"c{i}": pl.String for i in range(len(columns))})
    notes: list[TypeNote] = []
    typed = infer_types(frame, skip=set(), null_markers=True, local_dates=True, notes=notes)
    for name in frame.columns:
        kind, values = reference(frame[name].to_list())
        got = typed[name]
        expected_dtype = {"text": pl.String, "null": pl.Null, "bool": pl.Boolean,
                          "int": pl.Int64, "float": pl.Float64, "date": pl.Date,
                          "day_first": pl.Date, "month_first": pl.Date,
                          "datetime": pl.Datetime("us")}[kind]
        assert got.dtype == expected_dtype, (name, frame[name].to_list(), kind)
        if kind in CAST or kind in ("text", "null"):
            assert got.to_list() == values, (name, frame[name].to_list(), kind)
        ambiguous = any(n.column == name and n.kind == "ambiguous_dates" for n in notes)
        assert ambiguous == (kind == "text" and any(
            FITS["day_first"](v) for v in (c.strip() for c in frame[name].to_list() if c)
            if v.lower() not in NULL_MARKERS) and _all_both_orders(frame[name].to_list()))


def _all_both_orders(cells: list[str | None]) -> bool:
    usable = [c.strip() for c in cells if c and c.strip() and c.strip().lower()
              not in NULL_MARKERS]
    return bool(usable) and all(FITS["day_first"](v) and FITS["month_first"](v)
                                for v in usable)
