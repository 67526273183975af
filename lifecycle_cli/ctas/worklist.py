"""The worklist: the open CTAs and their tasks, by owner, each CTA's tasks under it, as a CSM
opens it in the morning."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from ..columns import OPEN, WORKLIST_SCHEMA

_FIRST_DUE = "__first_due"
CONTEXT = ["type", "priority", "stage", "created_on", "reason"]  # the CTA's, on its tasks too


@dataclass
class Worklist:
    as_of: dt.date | None  # the state's date the list speaks for; None: the state is empty
    # WORKLIST_SCHEMA: by owner; then a CTA and its tasks under it (seq 0 first), the CTAs
    # by the earliest due date among their rows, then customer and id
    items: pl.DataFrame
    owners: list[str]  # every owner with an open CTA or task (before the --owner filter)
    # the open CTAs (each CTA's latest row) whose CTA or tasks are in the items
    ctas: pl.DataFrame = field(default_factory=pl.DataFrame)
    snoozed: int = 0  # open CTAs of the owner left out: snoozed until after the as-of date
    # --by: the column the items are grouped by (their first column, unless it is one of
    # the items' own), and its values in order (see `lifecycle_cli.report.groups`)
    by: str | None = None
    groups: list[str] = field(default_factory=list)


def worklist(
    latest: pl.DataFrame | pl.LazyFrame,
    tasks: pl.DataFrame | pl.LazyFrame,
    as_of: dt.date | None,
    *,
    owner: str | None = None,
    overdue: bool = False,
) -> Worklist:
    """The open CTAs and their tasks on ``as_of``: ``latest`` holds each CTA's latest row
    (see `lifecycle_cli.state.view.StateView.ctas`), ``tasks`` the open CTAs' tasks; both
    may be lazy scans, which are read only for what the list needs.

    A CTA snoozed until after ``as_of`` is left out with its tasks, and so is a task
    marked done. ``owner`` keeps the rows of one owner (case and surrounding blanks
    ignored); ``overdue`` keeps the rows past their due date.
    """
    if as_of is None:
        return Worklist(as_of, pl.DataFrame(schema=WORKLIST_SCHEMA), [])
    open_ctas = latest.lazy().filter(pl.col("status") == OPEN)
    have = open_ctas.collect_schema()
    if "customer_name" not in have:
        open_ctas = open_ctas.with_columns(pl.lit(None, dtype=pl.String).alias("customer_name"))
    task_rows = tasks.lazy()
    if "done_on" in task_rows.collect_schema():
        task_rows = task_rows.filter(pl.col("done_on").is_null())
    day = pl.lit(as_of, dtype=pl.Date)
    mine = pl.lit(True)
    if owner is not None:
        mine = pl.col("owner").str.strip_chars().str.to_lowercase() == owner.strip().lower()
    asleep = (pl.col("snoozed_until").is_not_null() & (pl.col("snoozed_until") > day)
              if "snoozed_until" in have else pl.lit(False))
    awake = open_ctas.filter(~asleep)
    # each row: who, when, what; then the CTA's context
    who = [pl.col("customer_id").cast(pl.String), pl.col("customer_name").cast(pl.String)]
    cta_items = awake.filter(mine).select(
        "owner", "due_on", pl.lit("cta").alias("item"), *who,
        "cta_id", pl.lit(0, dtype=pl.Int64).alias("seq"), pl.col("name").alias("what"),
        *CONTEXT,
    )
    task_items = (
        task_rows.filter(mine).drop("customer_id")
        .join(awake.select("cta_id", "customer_id", "customer_name", *CONTEXT), on="cta_id")
        .select("owner", "due_on", pl.lit("task").alias("item"), *who,
                "cta_id", "seq", pl.col("task").alias("what"), *CONTEXT)
    )
    items = pl.concat([cta_items, task_items], how="vertical_relaxed").with_columns(
        (day - pl.col("due_on")).dt.total_days()
        .clip(lower_bound=0).cast(pl.Int64).alias("days_overdue")
    )
    if overdue:
        items = items.filter(pl.col("due_on") < as_of)
    # a CTA and its tasks stay together, the group with the most urgent row first
    items = items.with_columns(
        pl.col("due_on").min().over("owner", "cta_id").alias(_FIRST_DUE)
    ).sort(["owner", _FIRST_DUE, "customer_id", "cta_id", "seq"], nulls_last=True)
    owners = pl.concat([open_ctas.select("owner"), task_rows.select("owner")]).unique()
    snoozed = open_ctas.filter(asleep & mine).select(pl.len())
    found, owner_names, asleep_count = pl.collect_all([
        items.select(list(WORKLIST_SCHEMA)), owners, snoozed])
    behind = awake.join(found.select("cta_id").unique().lazy(), on="cta_id", how="semi")
    return Worklist(as_of, found, sorted(owner_names["owner"].drop_nulls().to_list()),
                    behind.collect(), int(asleep_count.item()))
