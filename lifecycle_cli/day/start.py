"""Where a day starts: the export's stages, the state's, and which one wins.

A day starts from the customers export (the CRM, where people change stages
by hand) and, with a state folder, from the stage table the state holds for
the day before (where the tool's own moves are). They disagree every night
the CRM is not updated from our outputs, so the state remembers, per
customer, what the export said last time (``export_stage``,
``export_entered_at``) and only a *change in the export* counts as a hand
edit. With ``prefer="export"``:

- the state fills what the export leaves empty (no stage in the export);
- a customer the state doesn't know takes the export's stage and date;
- a stage in the export that differs from the state's and that the export
  changed since its previous value is a hand edit: it wins. Its date is the
  export's when the export changed that too, else the as-of date (the day
  the change was seen);
- the same stage with a ``stage_entered_at`` the export changed since its
  previous value (and that differs from the state's) is a hand edit of the
  date: it wins;
- anything the export did not change since last time is the CRM lagging
  behind the tool: the state wins, stage and date. Stages that differ this
  way are counted (``lagging``);
- ``prefer="state"`` makes the state win always; hand edits are still recorded.

Hand edits are recorded in the overrides table. A state written before the
export's date was remembered has no ``export_entered_at``: its dates count
as unchanged, except that a stage edit takes the export's date when it has one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from ..columns import (
    CTA_SCHEMA,
    ENTERED,
    EXPORT_ENTERED,
    EXPORT_STAGE,
    ID,
    OVERRIDE_SCHEMA,
    SEEN,
    STAGE,
    STAGE_TABLE_SCHEMA,
)

PREFER = ("export", "state")


@dataclass(frozen=True)
class Start:
    """What a day starts from besides the exports: the state's records before it.

    ``stages``: the state's stage table after ``base`` (None: no state, or an empty
    one). ``ctas``: the CTAs after ``base`` that a run needs, and ``tasks`` the open
    CTAs' tasks then: the state's CTA snapshot (see `lifecycle_cli.ctas.snapshot`; None:
    no CTA history, so nothing closes and every CTA is new). ``archived``: the CTAs the
    state archived before, by visit (given customer_id, stage, stage_entered_at), for a
    day that resumes an old visit; None when ``ctas`` holds every CTA. ``actions``: the
    hand actions the state holds for the day itself (a re-run of a date applies them
    again after its run; see `lifecycle_cli.ctas.actions`). ``use_export_stages=False``:
    the export's stage columns don't speak for this day (a backfill replays past days
    with today's export); they are still remembered in the next stage table.
    ``previous``: ``customer_id`` (text) and the values at ``base`` of the names that
    the rules' ``previous()`` reads (see :func:`carried_values`; None: no previous run).
    ``totals``: per customer and stage, the visits that ended up to ``base``
    (`TOTALS_SCHEMA`, for ``history_columns``; None: none).
    """

    stages: pl.DataFrame | None = None
    ctas: pl.DataFrame | None = None
    base: dt.date | None = None
    prefer: str = "export"
    use_export_stages: bool = True
    tasks: pl.DataFrame | None = None
    actions: pl.DataFrame | None = None
    archived: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    previous: pl.DataFrame | None = None
    totals: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.prefer not in PREFER:
            raise ValueError(f"prefer must be one of {PREFER}, not {self.prefer!r}")


@dataclass(frozen=True)
class Merged:
    """The customers with the stages the day starts from, and what the merge found."""

    typed: pl.DataFrame  # the export's customers, STAGE and ENTERED replaced
    overrides: pl.DataFrame  # OVERRIDE_SCHEMA: hand edits of the export
    lagging: int  # customers whose export stage lags the state's: the state's was kept


def carried_values(metrics: pl.DataFrame | None, values: pl.DataFrame | None,
                   names: Sequence[str]) -> pl.DataFrame | None:
    """What ``previous()`` reads from a day's records: ``customer_id`` and each of ``names``
    that the day's ``metrics`` or ``values`` table holds (a name missing from both was not
    kept that day). None when the day kept neither table."""
    frames = [f for f in (metrics, values) if f is not None]
    if not frames:
        return None
    carried = frames[0].select("customer_id", *[n for n in names if n in frames[0].columns])
    for frame in frames[1:]:
        more = [n for n in names if n in frame.columns and n not in carried.columns]
        carried = carried.join(frame.select("customer_id", *more), on="customer_id", how="full",
                               coalesce=True, maintain_order="left_right")
    return carried


def empty_overrides() -> pl.DataFrame:
    return pl.DataFrame(schema=OVERRIDE_SCHEMA)


def empty_ctas() -> pl.DataFrame:
    return pl.DataFrame(schema=CTA_SCHEMA)


def _export_stages(typed: pl.DataFrame, use: bool) -> tuple[pl.Expr, pl.Expr]:
    if use:
        return pl.col(STAGE), pl.col(ENTERED)
    return pl.lit(None, dtype=pl.String), pl.lit(None, dtype=pl.Date)


def merge_start(typed: pl.DataFrame, start: Start, as_of: dt.date) -> Merged:
    """The stages a day starts from: the export's and the state's, by the rules above.

    ``typed`` holds the export's customers (ID, STAGE, ENTERED, attributes).
    """
    e_stage, e_entered = _export_stages(typed, start.use_export_stages)
    previous = start.stages
    if previous is None or previous.height == 0:
        merged = typed.with_columns(e_stage.alias(STAGE), e_entered.alias(ENTERED))
        return Merged(merged, empty_overrides(), 0)
    key = "__state_key"
    s_stage, s_entered, p_stage, p_entered = (
        "__state_stage", "__state_entered", "__export_stage", "__export_entered")
    dates_known = EXPORT_ENTERED in previous.columns  # states of older versions lack it
    last_stage = (pl.col(EXPORT_STAGE) if EXPORT_STAGE in previous.columns
                  else pl.lit(None, dtype=pl.String))
    last_entered = pl.col(EXPORT_ENTERED) if dates_known else pl.lit(None, dtype=pl.Date)
    joined = typed.with_columns(
        e_stage.alias("__e_stage"), e_entered.alias("__e_entered"),
        pl.col(ID).cast(pl.String).alias(key),
    ).join(
        previous.select(
            pl.col("customer_id").alias(key),
            pl.col("stage").alias(s_stage),
            pl.col("stage_entered_at").alias(s_entered),
            last_stage.alias(p_stage),
            last_entered.alias(p_entered),
        ),
        on=key,
        how="left",
        maintain_order="left",
    )
    export_stage, export_entered = pl.col("__e_stage"), pl.col("__e_entered")
    state_stage, state_entered = pl.col(s_stage), pl.col(s_entered)
    day = pl.lit(as_of, dtype=pl.Date)
    known = state_stage.is_not_null()
    # what the export changed since its own previous value
    stage_changed = export_stage.is_not_null() & ~export_stage.eq_missing(pl.col(p_stage))
    date_changed = export_entered.is_not_null() & ~export_entered.eq_missing(pl.col(p_entered))
    stage_edit = known & stage_changed & (export_stage != state_stage)
    date_edit = known & (export_stage == state_stage) & date_changed \
        & export_entered.ne_missing(state_entered)
    if not dates_known:
        date_edit = pl.lit(False)
        # a stage edit takes the export's date when it has one: we can't tell it changed
        date_changed = export_entered.is_not_null()
    lagging = known & export_stage.is_not_null() & (export_stage != state_stage) & ~stage_changed
    if start.prefer == "state":
        stage = pl.coalesce(state_stage, export_stage)
        entered = pl.when(known).then(state_entered).otherwise(export_entered)
    else:
        stage = pl.when(stage_edit).then(export_stage).otherwise(
            pl.coalesce(state_stage, export_stage))
        entered = (
            pl.when(stage_edit).then(pl.when(date_changed).then(export_entered).otherwise(day))
            .when(date_edit).then(export_entered)
            .when(known).then(state_entered)
            .otherwise(export_entered)
        )
    overrides = joined.filter(stage_edit.fill_null(False) | date_edit.fill_null(False)).select(
        day.alias("as_of"),
        pl.col(key).alias("customer_id"),
        state_stage.alias("state_stage"),
        state_entered.alias("state_entered_at"),
        export_stage.alias("export_stage"),
        export_entered.alias("export_entered_at"),
        pl.lit(start.prefer).alias("kept"),
    )
    lagging_count = int(joined.select(lagging.fill_null(False).sum()).item())
    merged = joined.with_columns(stage.alias(STAGE), entered.alias(ENTERED))
    helpers = [key, s_stage, s_entered, p_stage, p_entered, "__e_stage", "__e_entered"]
    return Merged(merged.drop(helpers), overrides, lagging_count)


def stage_table(
    final: pl.DataFrame,
    previous: pl.DataFrame | None,
    as_of: dt.date,
    export: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The stage table after a day: every customer of the day (ID, STAGE, ENTERED of
    ``final``), then those of ``previous`` that this export did not list, kept as they
    were (a customer missing from one export keeps its stage).

    ``export`` (ID, STAGE, ENTERED) holds what the export gave, remembered to tell the
    CRM's own changes from its lag next time (see `merge_start`).
    """
    today = final.select(
        pl.col(ID).cast(pl.String).alias("customer_id"),
        pl.col(STAGE).alias("stage"),
        pl.col(ENTERED).alias("stage_entered_at"),
        pl.lit(as_of, dtype=pl.Date).alias(SEEN),
    )
    if export is None:
        today = today.with_columns(pl.lit(None, dtype=pl.String).alias(EXPORT_STAGE),
                                   pl.lit(None, dtype=pl.Date).alias(EXPORT_ENTERED))
    else:
        given = export.select(pl.col(ID).cast(pl.String).alias("customer_id"),
                              pl.col(STAGE).alias(EXPORT_STAGE),
                              pl.col(ENTERED).alias(EXPORT_ENTERED))
        today = today.join(given, on="customer_id", how="left", maintain_order="left")
    if previous is None or previous.height == 0:
        return today.select(pl.col(c).cast(t) for c, t in STAGE_TABLE_SCHEMA.items())
    missing = previous.join(today.select("customer_id"), on="customer_id", how="anti")
    missing = missing.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in STAGE_TABLE_SCHEMA.items()
        if c not in missing.columns)
    return pl.concat([today, missing.select(list(STAGE_TABLE_SCHEMA))], how="vertical_relaxed")
