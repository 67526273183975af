"""Splitting reports, findings and the worklist by a customer column (``--by COLUMN``).

A customer's *group* is its value of the column, as text (``(none)`` when it has no
value). The group is one value per customer, taken where the customers stand: at a
report's end date, on a check's as-of date, on the worklist's date. Everything the
customer did is counted in that group.

The split is a join and a ``group_by`` over the group column, never a loop over customers.
A column with more than :data:`MAX_GROUPS` values (a customer id, an amount) is refused
with the columns that would do, as a table of a million groups side by side helps nobody.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import polars as pl

from ..columns import ID, WORKLIST_SCHEMA
from ..ctas.worklist import Worklist
from ..errors import OptionError, Problem
from ..inputs.formats import read_table
from ..inputs.options import ReadOptions
from ..state.view import StateView
from ..suggest import did_you_mean

NONE = "(none)"  # the group of a customer with no value in the column
MAX_GROUPS = 50
GROUP = "__group"  # the group column while tables are built; named after the column at the end


def find_column(wanted: str, columns: Sequence[str], *, headers: dict[str, str] | None = None,
                where: str = "the customers", option: str = "--by",
                more: str | None = None, lacking: str | None = None) -> str:
    """The column ``wanted`` names among ``columns`` (or the export header of one, by
    ``headers``: header -> column); an OptionError listing them, with did-you-mean (and
    ``more``: where else to look). ``lacking``: the error's words (default: ``where``
    have no such column)."""
    if wanted in columns:
        return wanted
    if headers and wanted in headers:
        return headers[wanted]
    shown = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
    hint = did_you_mean(wanted, list(columns))
    raise OptionError(Problem(
        f"{option} {wanted}: {lacking or where + ' have no such column'}",
        hint=(f"{hint} " if hint else "") + f"columns: {shown or '(none)'}"
             + (f"; {more}" if more else "")))


def as_group(column: str) -> pl.Expr:
    """The column's values as group names: text, ``(none)`` for a missing or blank value."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text.is_null() | (text == "")).then(pl.lit(NONE)).otherwise(text) \
        .alias(column)


def group_map(values: pl.DataFrame, column: str, *, key: str = ID) -> pl.DataFrame:
    """``key`` (as text) and :data:`GROUP`: each customer's group, from ``values``' column."""
    return values.select(pl.col(key).cast(pl.String), as_group(column).alias(GROUP)) \
        .unique(key, keep="first", maintain_order=True)


def attach(frame: pl.DataFrame, groups: pl.DataFrame, *, key: str = ID) -> pl.DataFrame:
    """``frame`` with :data:`GROUP` (from `group_map`) first; ``(none)`` where unknown."""
    joined = frame.join(groups.rename({key: "__key"}),
                        left_on=pl.col(key).cast(pl.String), right_on="__key", how="left",
                        maintain_order="left")
    return joined.select(pl.col(GROUP).fill_null(NONE), pl.exclude(GROUP, "__key"))


def group_names(groups: pl.DataFrame, column: str, *, source: pl.DataFrame | None = None,
                avoid: Collection[str] = (), option: str = "--by",
                limit: int | None = MAX_GROUPS, first: Sequence[str] = ()) -> list[str]:
    """The groups of a `group_map`: those of ``first`` in its order (the rules' segments),
    then the others sorted, ``(none)`` last; an OptionError above :data:`MAX_GROUPS`,
    naming the columns of ``source`` (but ``avoid``) with few enough values."""
    names = groups.select(pl.col(GROUP).unique())[GROUP].to_list()
    if limit is not None and len(names) > limit:
        fit: list[str] = []
        if source is not None and source.width:
            counts = source.select(pl.all().n_unique()).row(0, named=True)
            fit = [c for c, n in counts.items()
                   if c not in (ID, column, *avoid) and 1 < n <= MAX_GROUPS]
        raise OptionError(Problem(
            f"{option} {column}: it has {len(names):,} different values; a split shows at "
            f"most {MAX_GROUPS} groups side by side",
            hint="choose a column with few values"
                 + (f", such as {', '.join(fit[:10])}" if fit else " (a segment, a plan)")))
    known = [n for n in first if n in names]
    rest = sorted(n for n in names if n != NONE and n not in known)
    return known + rest + ([NONE] if NONE in names else [])


def check_free(column: str, taken: Collection[str], what: str, option: str = "--by") -> None:
    """An OptionError when the group's column name is a column of the output already."""
    if column in taken:
        raise OptionError(Problem(
            f"{option} {column}: {what} have a column '{column}' of their own",
            hint=f"split by another column; the tables already show {column}"))


def order(groups: Sequence[str], column: str = GROUP) -> pl.Expr:
    """A sort key putting the groups in the order of ``groups``."""
    return pl.col(column).replace_strict({g: i for i, g in enumerate(groups)},
                                         default=len(groups), return_dtype=pl.Int64)


# the worklist's own columns a list can be grouped by: each CTA's (its tasks share them)
WORKLIST_OWN = ("type", "priority", "stage")


def customer_columns(path: str | Path, *, headers: Mapping[str, str] | None = None,
                     encoding: str | None = None, sheet: str | None = None) -> pl.DataFrame:
    """A customers export read as text, ``customer_id`` first; ``headers`` (the rules'
    ``columns: customers``: name -> the export's header) give the rules' names."""
    frame = read_table(Path(path), ReadOptions(encoding=encoding, sheet=sheet))
    renames = {h: n for n, h in (headers or {}).items() if h in frame.columns and h != n}
    frame = frame.rename(renames)
    if ID not in frame.columns:
        header = (headers or {}).get(ID, ID)
        raise OptionError(Problem(
            f"the customers export has no '{header}' column to match the state's customers",
            file=str(path), hint="give --rules, whose columns: customers: names its id column"
            if headers is None else did_you_mean(header, frame.columns)))
    return frame.select(pl.col(ID).cast(pl.String), pl.exclude(ID))


def split_worklist(wl: Worklist, by: str, view: StateView,
                   customers: pl.DataFrame | None = None) -> Worklist:
    """The worklist grouped by ``by``: the groups in order, within a group as before (by
    owner, the most urgent first). ``by`` is one of the items' own columns (a CTA's type,
    priority, stage), else a column of ``customers`` (`customer_columns`), else a value the
    state kept for the worklist's date (its ``values`` and ``metrics`` tables); that column
    comes first in the items. A customer with no value is in ``(none)``."""
    if wl.as_of is None:
        return wl
    items = wl.items
    if by in WORKLIST_OWN:
        grouped = items.with_columns(as_group(by).alias(GROUP))
        column = by
    else:
        sources = [] if customers is None else [customers]
        for table in ("values", "metrics"):
            kept = view.table(table, wl.as_of)
            if kept is not None:
                sources.append(kept)
        column = next((by for s in sources if by in s.columns), "")
        if not column:
            names = list(dict.fromkeys(
                [*WORKLIST_OWN, *(c for s in sources for c in s.columns if c != ID)]))
            where = ("the worklist, the customers export and the values the state kept"
                     if customers is not None else "the worklist and the values the state kept")
            find_column(by, names, where=f"{where} for {wl.as_of}",
                        more=None if customers is not None else
                        "--customers PATH gives the columns of a customers export")
        source = next(s for s in sources if by in s.columns)
        check_free(column, WORKLIST_SCHEMA, "the worklist's rows")
        grouped = attach(items, group_map(source, column))
    groups = group_names(grouped, column, limit=None)
    ordered = grouped.sort(order(groups), maintain_order=True)
    items = (ordered.drop(GROUP) if column in WORKLIST_OWN
             else ordered.rename({GROUP: column}))
    return dataclasses.replace(wl, items=items, by=column, groups=groups)
