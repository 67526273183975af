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

from collections.abc import Collection, Sequence

import polars as pl

from ..columns import ID
from ..errors import OptionError, Problem
from ..suggest import did_you_mean

NONE = "(none)"  # the group of a customer with no value in the column
MAX_GROUPS = 50
GROUP = "__group"  # the group column while tables are built; named after the column at the end


def find_column(wanted: str, columns: Sequence[str], *, headers: dict[str, str] | None = None,
                where: str = "the customers", option: str = "--by") -> str:
    """The column ``wanted`` names among ``columns`` (or the export header of one, by
    ``headers``: header -> column); an OptionError listing them, with did-you-mean."""
    if wanted in columns:
        return wanted
    if headers and wanted in headers:
        return headers[wanted]
    shown = ", ".join(columns[:30]) + (" ..." if len(columns) > 30 else "")
    hint = did_you_mean(wanted, list(columns))
    raise OptionError(Problem(
        f"{option} {wanted}: {where} have no such column",
        hint=(f"{hint} " if hint else "") + f"columns: {shown or '(none)'}"))


def as_group(column: str) -> pl.Expr:
    """The column's values as group names: text, ``(none)`` for a missing or blank value."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text.is_null() | (text == "")).then(pl.lit(NONE)).otherwise(text)


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
                avoid: Collection[str] = (), option: str = "--by") -> list[str]:
    """The groups of a `group_map`, sorted, ``(none)`` last; an OptionError above
    :data:`MAX_GROUPS`, naming the columns of ``source`` (but ``avoid``) with few enough
    values."""
    names = groups.select(pl.col(GROUP).unique())[GROUP].to_list()
    if len(names) > MAX_GROUPS:
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
    return sorted(n for n in names if n != NONE) + ([NONE] if NONE in names else [])


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
