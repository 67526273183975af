"""A report split by a column (``--by``), its groups side by side: the terminal and the
HTML page show the distribution, the funnel and the time in stage as one row per stage and
one column per group; the files keep the long tables (the group as the first column)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from ..report.build import Report
from .cells import EMPTY, number, percent


def side_by_side(frame: pl.DataFrame, by: str, groups: Sequence[str], index: Sequence[str],
                 text: Callable[[dict[str, Any]], str]) -> pl.DataFrame:
    """A table split by ``by`` (the group first), turned so that the groups stand side by
    side: one row per ``index`` value (a stage), one text column per group, each cell
    ``text(row)``. At most a few dozen groups of a few stages: laid out row by row."""
    names = {g: g if g not in index else f"{by}={g}" for g in groups}
    rows: dict[tuple[Any, ...], dict[str, str]] = {}
    for row in frame.iter_rows(named=True):
        key = tuple(row[c] for c in index)
        rows.setdefault(key, {})[names[row[by]]] = text(row)
    columns: dict[str, list[Any]] = {c: [k[i] for k in rows] for i, c in enumerate(index)}
    columns |= {names[g]: [cells.get(names[g], EMPTY) for cells in rows.values()]
                for g in groups}
    return pl.DataFrame(columns, schema={**{c: frame.schema[c] for c in index},
                                         **dict.fromkeys(names.values(), pl.String)})


def _customers(row: dict[str, Any]) -> str:
    return f"{number(row['customers'])} ({percent(row['share'])})"


def _conversion(row: dict[str, Any]) -> str:
    if row["next_stage"] is None:
        return number(row["customers"])
    return f"{number(row['to_next'])}/{number(row['customers'])} ({percent(row['conversion'])})"


def _days(row: dict[str, Any]) -> str:
    if row["median_days"] is None:
        return f"{EMPTY} {row['note']}" if row["note"] else EMPTY
    p90 = f"{row['p90_days']}d" if row["p90_days"] is not None else EMPTY
    return f"{row['median_days']}d / {p90}"


def views(report: Report) -> dict[str, tuple[str, pl.DataFrame]]:
    """The side-by-side views of a split report by table name: a title and the table.
    Empty for a report that is not split."""
    by, groups = report.by, report.groups
    if by is None:
        return {}
    out = {
        "distribution": (f"Customers by stage and {by} on {report.end} (share of the group)",
                         side_by_side(report.distribution, by, groups, ["stage"], _customers)),
    }
    if report.main_path:
        out["funnel"] = (
            f"Funnel by {by}: moved on to the next stage / customers in the stage "
            "(conversion)",
            side_by_side(report.funnel, by, groups, ["stage", "next_stage"], _conversion))
    out["time_in_stage"] = (
        f"Time in stage by {by}: median / p90 days (Kaplan-Meier)",
        side_by_side(report.time_in_stage, by, groups, ["stage"], _days))
    return out
