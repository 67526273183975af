"""The worklist: the open CTAs and their tasks, by owner and due date, as a CSM opens it
in the morning."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from ..columns import OPEN, WORKLIST_SCHEMA


@dataclass
class Worklist:
    as_of: dt.date | None  # the state's date the list speaks for; None: the state is empty
    items: pl.DataFrame  # WORKLIST_SCHEMA, by owner, due date, customer, CTA, seq
    owners: list[str]  # every owner with an open CTA or task (before the --owner filter)


def worklist(
    latest: pl.DataFrame,
    tasks: pl.DataFrame,
    as_of: dt.date | None,
    *,
    owner: str | None = None,
    overdue: bool = False,
) -> Worklist:
    """The open CTAs and their tasks on ``as_of``: ``latest`` holds each CTA's latest row
    (see `lifecycle_cli.state.view.StateView.ctas`), ``tasks`` the CTAs' playbook tasks.

    ``owner`` keeps the rows of one owner (case and surrounding blanks ignored);
    ``overdue`` keeps the rows past their due date.
    """
    open_ctas = latest.filter(pl.col("status") == OPEN)
    if as_of is None or open_ctas.height == 0:
        return Worklist(as_of, pl.DataFrame(schema=WORKLIST_SCHEMA), [])
    # each row: who, when, what; then the CTA's context, on its tasks too
    context = ["type", "priority", "stage", "created_on", "reason"]
    frames = [open_ctas.select(
        "owner", "due_on", pl.lit("cta").alias("item"), pl.col("customer_id").cast(pl.String),
        "cta_id", pl.lit(0, dtype=pl.Int64).alias("seq"), pl.col("name").alias("what"),
        *context,
    )]
    if tasks.height:
        frames.append(tasks.join(open_ctas.select("cta_id", *context), on="cta_id").select(
            "owner", "due_on", pl.lit("task").alias("item"), pl.col("customer_id").cast(pl.String),
            "cta_id", "seq", pl.col("task").alias("what"), *context,
        ))
    items = pl.concat(frames, how="vertical_relaxed").with_columns(
        (pl.lit(as_of, dtype=pl.Date) - pl.col("due_on")).dt.total_days()
        .clip(lower_bound=0).cast(pl.Int64).alias("days_overdue")
    )
    owners = sorted(items["owner"].drop_nulls().unique().to_list())
    if owner is not None:
        wanted = owner.strip().lower()
        items = items.filter(pl.col("owner").str.strip_chars().str.to_lowercase() == wanted)
    if overdue:
        items = items.filter(pl.col("due_on") < as_of)
    items = items.sort(["owner", "due_on", "customer_id", "cta_id", "seq"],
                       nulls_last=True).select(list(WORKLIST_SCHEMA))
    return Worklist(as_of, items, owners)
