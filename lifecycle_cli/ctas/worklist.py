"""The worklist: the open CTAs and their tasks, by owner, each CTA's tasks under it, as a CSM
opens it in the morning."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from ..columns import OPEN, WORKLIST_SCHEMA

_FIRST_DUE = "__first_due"


@dataclass
class Worklist:
    as_of: dt.date | None  # the state's date the list speaks for; None: the state is empty
    # WORKLIST_SCHEMA: by owner; then a CTA and its tasks under it (seq 0 first), the CTAs
    # by the earliest due date among their rows, then customer and id
    items: pl.DataFrame
    owners: list[str]  # every owner with an open CTA or task (before the --owner filter)
    # the open CTAs (each CTA's latest row) behind the items, for their names and owners
    ctas: pl.DataFrame = field(default_factory=pl.DataFrame)
    snoozed: int = 0  # open CTAs left out: snoozed until after the as-of date


def worklist(
    latest: pl.DataFrame,
    tasks: pl.DataFrame,
    as_of: dt.date | None,
    *,
    owner: str | None = None,
    overdue: bool = False,
) -> Worklist:
    """The open CTAs and their tasks on ``as_of``: ``latest`` holds each CTA's latest row
    (see `lifecycle_cli.state.view.StateView.ctas`), ``tasks`` the open CTAs' tasks.

    A CTA snoozed until after ``as_of`` is left out with its tasks, and so is a task
    marked done. ``owner`` keeps the rows of one owner (case and surrounding blanks
    ignored); ``overdue`` keeps the rows past their due date.
    """
    open_ctas = latest.filter(pl.col("status") == OPEN)
    if as_of is None or open_ctas.height == 0:
        return Worklist(as_of, pl.DataFrame(schema=WORKLIST_SCHEMA), [], open_ctas)
    day = pl.lit(as_of, dtype=pl.Date)
    mine = pl.lit(True)
    if owner is not None:
        mine = pl.col("owner").str.strip_chars().str.to_lowercase() == owner.strip().lower()
    if "snoozed_until" in open_ctas.columns:
        asleep = pl.col("snoozed_until").is_not_null() & (pl.col("snoozed_until") > day)
        snoozed = open_ctas.filter(asleep & mine).height
        open_ctas = open_ctas.filter(~asleep)
    else:
        snoozed = 0
    if "customer_name" not in open_ctas.columns:
        open_ctas = open_ctas.with_columns(pl.lit(None, dtype=pl.String).alias("customer_name"))
    if "done_on" in tasks.columns:
        tasks = tasks.filter(pl.col("done_on").is_null())
    # each row: who, when, what; then the CTA's context, on its tasks too
    context = ["type", "priority", "stage", "created_on", "reason"]
    who = [pl.col("customer_id").cast(pl.String), pl.col("customer_name").cast(pl.String)]
    frames = [open_ctas.select(
        "owner", "due_on", pl.lit("cta").alias("item"), *who,
        "cta_id", pl.lit(0, dtype=pl.Int64).alias("seq"), pl.col("name").alias("what"),
        *context,
    )]
    if tasks.height:
        frames.append(
            tasks.drop("customer_id")
            .join(open_ctas.select("cta_id", "customer_id", "customer_name", *context),
                  on="cta_id")
            .select("owner", "due_on", pl.lit("task").alias("item"), *who,
                    "cta_id", "seq", pl.col("task").alias("what"), *context))
    items = pl.concat(frames, how="vertical_relaxed").with_columns(
        (day - pl.col("due_on")).dt.total_days()
        .clip(lower_bound=0).cast(pl.Int64).alias("days_overdue")
    )
    owners = sorted(items["owner"].drop_nulls().unique().to_list())
    if owner is not None:
        items = items.filter(mine)
    if overdue:
        items = items.filter(pl.col("due_on") < as_of)
    # a CTA and its tasks stay together, the group with the most urgent row first
    items = items.with_columns(
        pl.col("due_on").min().over("owner", "cta_id").alias(_FIRST_DUE)
    ).sort(["owner", _FIRST_DUE, "customer_id", "cta_id", "seq"], nulls_last=True)
    return Worklist(as_of, items.select(list(WORKLIST_SCHEMA)), owners, open_ctas, snoozed)
